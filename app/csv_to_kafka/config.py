"""The run's configuration: one frozen dataclass, built once by the CLI.

Every option can come from a flag or from the environment variable named in ``ENV``; a flag wins.
AWS endpoints, region and credentials are not options: boto3 reads them from the standard AWS
configuration (AWS_ENDPOINT_URL, AWS_REGION, profiles, instance roles).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from .decompress import INPUT_COMPRESSIONS
from .errors import ConfigError

__all__ = [
    "AUTH_MODES",
    "DEFAULT_KEY_SEPARATOR",
    "DEFAULT_MAX_BAD_ROWS",
    "ENV",
    "ERRORS_TOLERANCES",
    "KAFKA_CLIENTS",
    "Config",
    "Secret",
    "SourceUri",
    "parse_kafka_properties",
    "parse_source_uri",
]

DEFAULT_KEY_SEPARATOR = "|"
MAX_PARTITIONS = 10_000

KafkaClient = Literal["confluent", "kafka-python"]
KAFKA_CLIENTS: tuple[KafkaClient, ...] = ("confluent", "kafka-python")
AuthMode = Literal["none", "tls", "scram-sha-256", "scram-sha-512", "iam"]
AUTH_MODES: tuple[AuthMode, ...] = ("none", "tls", "scram-sha-256", "scram-sha-512", "iam")
ErrorsTolerance = Literal["none", "all"]  # Kafka Connect's errors.tolerance
ERRORS_TOLERANCES: tuple[ErrorsTolerance, ...] = ("none", "all")
# --max-bad-rows' default: sparse damage passes, a wrong file (every row bad) stops early.
DEFAULT_MAX_BAD_ROWS = 1000

# Option name (as in Config) -> environment variable. The one place these names are spelled.
ENV: Mapping[str, str] = MappingProxyType(
    {
        "source": "CSV_TO_KAFKA_SOURCE",
        "source_manifest": "CSV_TO_KAFKA_SOURCE_MANIFEST",
        "no_header": "CSV_TO_KAFKA_NO_HEADER",
        "columns": "CSV_TO_KAFKA_COLUMNS",
        "topic": "CSV_TO_KAFKA_TOPIC",
        "bootstrap_servers": "CSV_TO_KAFKA_BOOTSTRAP_SERVERS",
        "job_id": "CSV_TO_KAFKA_JOB_ID",
        "checkpoint_table": "CSV_TO_KAFKA_CHECKPOINT_TABLE",
        "checkpoint_every": "CSV_TO_KAFKA_CHECKPOINT_EVERY",
        "checkpoint_seconds": "CSV_TO_KAFKA_CHECKPOINT_SECONDS",
        "kafka_client": "CSV_TO_KAFKA_KAFKA_CLIENT",
        "kafka_properties": "CSV_TO_KAFKA_KAFKA_PROPERTIES",
        "compression": "CSV_TO_KAFKA_COMPRESSION",
        "input_compression": "CSV_TO_KAFKA_INPUT_COMPRESSION",
        "create_topic": "CSV_TO_KAFKA_CREATE_TOPIC",
        "allow_multiple_partitions": "CSV_TO_KAFKA_ALLOW_MULTIPLE_PARTITIONS",
        "create_table": "CSV_TO_KAFKA_CREATE_TABLE",
        "parse_process": "CSV_TO_KAFKA_PARSE_PROCESS",
        "delimiter": "CSV_TO_KAFKA_DELIMITER",
        "quotechar": "CSV_TO_KAFKA_QUOTECHAR",
        "encoding": "CSV_TO_KAFKA_ENCODING",
        "metrics_namespace": "CSV_TO_KAFKA_METRICS_NAMESPACE",
        "metrics_interval": "CSV_TO_KAFKA_METRICS_INTERVAL",
        "retry_seconds": "CSV_TO_KAFKA_RETRY_SECONDS",
        "auth": "CSV_TO_KAFKA_AUTH",
        "sasl_username": "CSV_TO_KAFKA_SASL_USERNAME",
        "sasl_password": "CSV_TO_KAFKA_SASL_PASSWORD",
        "ssl_ca_location": "CSV_TO_KAFKA_SSL_CA_LOCATION",
        "progress": "CSV_TO_KAFKA_PROGRESS",
        "log_level": "CSV_TO_KAFKA_LOG_LEVEL",
        "key_columns": "CSV_TO_KAFKA_KEY_COLUMNS",
        "key_separator": "CSV_TO_KAFKA_KEY_SEPARATOR",
        "partitions": "CSV_TO_KAFKA_PARTITIONS",
        "schema": "CSV_TO_KAFKA_SCHEMA",
        "null_values": "CSV_TO_KAFKA_NULL_VALUES",
        "errors_tolerance": "CSV_TO_KAFKA_ERRORS_TOLERANCE",
        "dlq_topic": "CSV_TO_KAFKA_DLQ_TOPIC",
        "skip_bad_rows": "CSV_TO_KAFKA_SKIP_BAD_ROWS",
        "max_bad_rows": "CSV_TO_KAFKA_MAX_BAD_ROWS",
        "plan": "CSV_TO_KAFKA_PLAN",
        "part": "CSV_TO_KAFKA_PART",
    }
)


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class SourceUri:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_source_uri(uri: str) -> SourceUri:
    """``s3://bucket/key`` -> SourceUri, or a ConfigError that shows the expected form."""
    if not uri.startswith("s3://"):
        raise ConfigError(f"--source must look like s3://BUCKET/KEY, got {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ConfigError(f"--source must name a bucket and a key (s3://BUCKET/KEY), got {uri!r}")
    return SourceUri(bucket, key)


def parse_kafka_properties(items: list[str]) -> dict[str, str]:
    """``["linger.ms=5", ...]`` -> ``{"linger.ms": "5"}``; a ConfigError names a bad item."""
    props: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"-X expects kafka.property=value, got {item!r}")
        props[name] = value
    return props


@dataclass(frozen=True)
class Config:
    """Everything one ``csv-to-kafka run`` needs. Built once in cli.py; never mutated."""

    source: SourceUri
    topic: str
    bootstrap_servers: str
    job_id: str
    checkpoint_table: str
    checkpoint_every: int = 10_000
    checkpoint_seconds: float = 5.0
    kafka_client: KafkaClient = "confluent"
    kafka_properties: Mapping[str, str] = field(default_factory=dict)
    compression: str = "zstd"  # Kafka's
    input_compression: str = "auto"  # the object's (decompress.INPUT_COMPRESSIONS)
    create_topic: bool = True
    allow_multiple_partitions: bool = False
    create_table: bool = True
    parse_process: bool = True  # read, parse and encode in a second process (if 2+ CPUs)
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    metrics_namespace: str = "CsvToKafka"
    metrics_interval: float = 60.0
    retry_seconds: float = 300.0
    auth: AuthMode = "none"
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_ca_location: str | None = None
    progress: Literal["auto", "bar", "json", "none"] = "auto"
    log_level: str = "INFO"
    # Message keys (partitioning.py): the key is these columns' fields joined by key_separator,
    # and its partition murmur2(key) % the topic's partitions, as the Java client picks it.
    key_columns: tuple[str, ...] = ()
    key_separator: str = DEFAULT_KEY_SEPARATOR
    partitions: int | None = None  # a created topic's partitions (None: 1); checked if it exists
    # Typed values (schema.py): a JSON Schema file or s3:// URL, and the null tokens
    schema: str | None = None
    null_values: tuple[str, ...] = ()
    errors_tolerance: ErrorsTolerance = "none"  # all: bad rows go on (dead letters)
    dlq_topic: str | None = None  # where bad rows go with errors_tolerance all
    skip_bad_rows: bool = False  # all without a dead-letter topic: bad rows dropped
    max_bad_rows: int = DEFAULT_MAX_BAD_ROWS  # past this in the job: exit 3
    # Many objects (objects.py): the --source options after the first, in the order given;
    # source_manifest: ``source`` is a manifest object listing the sources, one per line.
    more_sources: tuple[SourceUri, ...] = ()
    source_manifest: bool = False
    no_header: bool = False  # every object's line 1 is data; ``columns`` names the fields
    columns: tuple[str, ...] = ()
    plan: str | None = None  # run/verify one part (or every part) of a plan (plan.py)
    part: int | None = None  # the part to run; from AWS_BATCH_JOB_ARRAY_INDEX when None
    # Not options: set from the plan. The partition this job writes (and reads back), and the
    # partitions the topic needs (created with, refused with fewer).
    partition: int = 0
    plan_partitions: int = 1

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1:
            raise ConfigError(f"--checkpoint-every must be at least 1, got {self.checkpoint_every}")
        if self.checkpoint_seconds <= 0:
            raise ConfigError("--checkpoint-seconds must be positive")
        if self.kafka_client not in KAFKA_CLIENTS:
            choices = ", ".join(KAFKA_CLIENTS)
            raise ConfigError(f"--kafka-client must be one of {choices}, got {self.kafka_client!r}")
        if self.auth not in AUTH_MODES:
            raise ConfigError(f"--auth must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}")
        if self.auth.startswith("scram") and not (self.sasl_username and self.sasl_password):
            raise ConfigError(
                f"--auth {self.auth} needs --sasl-username and a password "
                f"({ENV['sasl_password']}; a flag would show it in the process list)"
            )
        if len(self.delimiter) != 1 or len(self.quotechar) != 1:
            raise ConfigError("--delimiter and --quotechar must each be one character")
        if not self.job_id or len(self.job_id) > 200:
            raise ConfigError("--job-id must be 1 to 200 characters")
        if self.input_compression not in INPUT_COMPRESSIONS:
            raise ConfigError(
                f"--input-compression must be one of {', '.join(INPUT_COMPRESSIONS)}, "
                f"got {self.input_compression!r}"
            )
        if self.retry_seconds < 0:
            raise ConfigError("--retry-seconds must not be negative")
        if self.partitions is not None and not 1 <= self.partitions <= MAX_PARTITIONS:
            raise ConfigError(f"--partitions must be 1 to {MAX_PARTITIONS}, got {self.partitions}")
        if len(set(self.key_columns)) != len(self.key_columns) or "" in self.key_columns:
            raise ConfigError(
                f"--key-column names must be distinct and not empty, got {list(self.key_columns)}"
            )
        multiple = self.partitions is not None and self.partitions > 1
        if multiple and not self.key_columns and not self.allow_multiple_partitions:
            raise ConfigError(
                f"--partitions {self.partitions} without --key-column: records without a "
                "key all go to partition 0. Name the key with --key-column"
            )
        self._check_errors_tolerance()
        self._check_objects()
        self._check_plan()

    def _check_plan(self) -> None:
        if self.part is not None and self.part < 0:
            raise ConfigError(f"--part must be 0 or more, got {self.part}")
        if self.plan is None:
            return
        if self.key_columns:
            raise ConfigError(
                "--key-column and --plan cannot go together: two parts can hold rows of the "
                "same key, which would break the order per key. Copy keyed data with one run"
            )
        if self.multi_object:
            raise ConfigError("--plan copies one object: give one --source, not a list or prefix")

    def _check_errors_tolerance(self) -> None:
        if self.errors_tolerance not in ERRORS_TOLERANCES:
            raise ConfigError(
                f"--errors-tolerance must be none or all, got {self.errors_tolerance!r}"
            )
        if self.max_bad_rows < 0:
            raise ConfigError(f"--max-bad-rows must not be negative, got {self.max_bad_rows}")
        if self.errors_tolerance == "none":
            if self.dlq_topic or self.skip_bad_rows:
                raise ConfigError(
                    "--dlq-topic and --skip-bad-rows need --errors-tolerance all (with none, "
                    "the first bad row stops the copy)"
                )
            return
        if self.dlq_topic and self.skip_bad_rows:
            raise ConfigError("--dlq-topic and --skip-bad-rows: choose one (send or drop)")
        if not self.dlq_topic and not self.skip_bad_rows:
            raise ConfigError(
                "--errors-tolerance all needs --dlq-topic TOPIC for the bad rows, or "
                "--skip-bad-rows to drop them (counted and logged)"
            )
        if self.dlq_topic == self.topic:
            raise ConfigError("--dlq-topic must not be the --topic the good rows go to")

    def _check_objects(self) -> None:
        if "#objects" in self.job_id:
            raise ConfigError("--job-id must not contain '#objects' (the job's object list)")
        if self.no_header != bool(self.columns):
            raise ConfigError("--no-header and --columns a,b,c go together (line 1 is then data)")
        if any(not name for name in self.columns) or len(set(self.columns)) != len(self.columns):
            raise ConfigError(f"--columns needs distinct non-empty names, got {self.columns!r}")
        if self.source_manifest and self.more_sources:
            raise ConfigError("give either --source (repeatable) or --source-manifest, not both")

    @property
    def sources(self) -> tuple[SourceUri, ...]:
        """Every --source in order (not the manifest's: objects.read_manifest reads those)."""
        return (self.source, *self.more_sources)

    @property
    def multi_object(self) -> bool:
        """A job over a list of objects (prefix, several sources, manifest), not one object."""
        return bool(self.more_sources) or self.source_manifest or self.source.key.endswith("/")

    @property
    def source_label(self) -> str:
        """What the job copies, as its checkpoint names it."""
        if self.source_manifest:
            return f"{self.source} (manifest)"
        return "\n".join(str(source) for source in self.sources)

    @property
    def transactional_id(self) -> str:
        """Derived from the job id, so that a second instance of the job fences the first."""
        return f"csv-to-kafka-{self.job_id}"
