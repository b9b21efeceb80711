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
    "ENV",
    "KAFKA_CLIENTS",
    "Config",
    "Secret",
    "SourceUri",
    "parse_kafka_properties",
    "parse_source_uri",
]

KafkaClient = Literal["confluent", "kafka-python"]
KAFKA_CLIENTS: tuple[KafkaClient, ...] = ("confluent", "kafka-python")
AuthMode = Literal["none", "tls", "scram-sha-256", "scram-sha-512", "iam"]
AUTH_MODES: tuple[AuthMode, ...] = ("none", "tls", "scram-sha-256", "scram-sha-512", "iam")

# Option name (as in Config) -> environment variable. The one place these names are spelled.
ENV: Mapping[str, str] = MappingProxyType(
    {
        "source": "CSV_TO_KAFKA_SOURCE",
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
    plan: str | None = None  # run/verify one part (or every part) of a plan (plan.py)
    part: int | None = None  # the part to run; from AWS_BATCH_JOB_ARRAY_INDEX when None
    # Not options: set from the plan. The partition this job writes (and reads back), and the
    # partitions the topic needs (created with, refused with fewer).
    partition: int = 0
    partitions: int = 1

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
        if self.part is not None and self.part < 0:
            raise ConfigError(f"--part must be 0 or more, got {self.part}")

    @property
    def transactional_id(self) -> str:
        """Derived from the job id, so that a second instance of the job fences the first."""
        return f"csv-to-kafka-{self.job_id}"
