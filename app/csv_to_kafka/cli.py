"""The command line: ``csv-to-kafka run | check | verify | status``.

Builds the Config once (a flag beats its environment variable, which beats the default), sets
up logging (a progress bar on a terminal, one JSON object per line otherwise), turns SIGTERM and
SIGINT into a clean stop, and maps every outcome to its exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from . import __version__
from .config import (
    AUTH_MODES,
    DEFAULT_KEY_SEPARATOR,
    DEFAULT_MAX_BAD_ROWS,
    ENV,
    KAFKA_CLIENTS,
    Config,
    Secret,
    parse_kafka_properties,
    parse_source_uri,
)
from .decompress import INPUT_COMPRESSIONS
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_CONFIG,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_SIGINT,
    ConfigError,
    CsvToKafkaError,
    exit_code_for,
)
from .objects import SOURCE_SEPARATOR
from .schema import DEFAULT_SAMPLE_ROWS

logger = logging.getLogger("csv_to_kafka")

EXIT_CODES_HELP = """\
exit codes:
  0    done (also when the job was already complete: a rerun adds nothing)
  1    verify found a difference (or an unexpected internal error)
  2    usage or configuration error (not retryable)
  3    bad input data: the message names the line and byte offset (not retryable)
  4    Kafka, S3 or DynamoDB kept failing after retries (retryable: a rerun resumes)
  130  stopped by SIGINT after a clean checkpoint (retryable)
  143  stopped by SIGTERM after a clean checkpoint (retryable)
"""

_TRUE = {"1", "true", "yes", "on"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_FALSE = {"0", "false", "no", "off"}


def _env_help(*names: str) -> str:
    return "environment variables: " + ", ".join(ENV[name] for name in names)


def _bool_env(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{ENV[name]} must be true or false, got {value!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with the usage, as argparse does, but ours
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def _common_kafka(parser: argparse.ArgumentParser) -> None:
    _sources(parser)
    parser.add_argument(
        "--topic",
        help="the Kafka topic (records go to partition 0; with --key-column, to their key's)",
    )
    parser.add_argument(
        "--bootstrap-servers", metavar="HOST:PORT[,HOST:PORT]", help="Kafka brokers"
    )
    parser.add_argument(
        "--kafka-client", choices=KAFKA_CLIENTS, help="Kafka client library (default: confluent)"
    )
    parser.add_argument(
        "-X",
        dest="kafka_properties",
        action="append",
        metavar="PROP=VALUE",
        help="a Kafka client property, e.g. -X linger.ms=20 (repeatable; wins "
        "over the built-in settings)",
    )
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        help="how to authenticate to Kafka (default: none); iam uses the standard AWS credentials",
    )
    parser.add_argument(
        "--sasl-username",
        help="user for --auth scram-sha-256|scram-sha-512; "
        f"the password comes only from {ENV['sasl_password']}",
    )
    parser.add_argument("--ssl-ca-location", metavar="FILE", help="CA bundle for TLS")
    _dialect(parser)
    parser.add_argument(
        "--retry-seconds",
        type=float,
        help="how long to retry a failing Kafka, S3 or DynamoDB call before exit 4 (default 300)",
    )
    parser.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, help="default INFO (any case)"
    )


def _sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        action="append",
        metavar="s3://BUCKET/KEY",
        help="the CSV object; s3://BUCKET/PREFIX/ (ending in /): every object under the prefix "
        "in S3's listing order, zero-byte objects and folder markers skipped; repeat --source "
        "for several, copied in the order given (in the environment: one URL per line). One "
        "job, one ordered stream; the list is fixed at the job's first run",
    )
    parser.add_argument(
        "--source-manifest",
        metavar="s3://BUCKET/KEY",
        help="an object listing the sources, one s3:// URL (object or prefix) per line, for "
        "thousands of objects (instead of --source)",
    )


def _dialect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-header",
        action="store_true",
        default=None,
        help="the objects have no header row: line 1 is data (needs --columns)",
    )
    parser.add_argument(
        "--columns",
        metavar="a,b,c",
        help="the field names of objects without a header row (with --no-header)",
    )
    parser.add_argument("--delimiter", help="field delimiter (default ,)")
    parser.add_argument("--quotechar", help='quote character (default ")')
    parser.add_argument(
        "--encoding", help="text encoding, ASCII-compatible (default utf-8; a UTF-8 BOM is skipped)"
    )
    parser.add_argument(
        "--input-compression",
        choices=INPUT_COMPRESSIONS,
        help="how the object is compressed (default auto: from its first bytes, whatever its "
        "name: gzip, zstd, bzip2 or none); --compression is Kafka's",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="csv-to-kafka",
        description="Copy every data row of a CSV object in Amazon S3 into one Kafka topic "
        "partition: in file order, each row exactly once, across crashes, restarts "
        "and Spot interruptions.",
        epilog=EXIT_CODES_HELP + "\nAWS endpoints, region and credentials come from the "
        "standard AWS configuration (AWS_ENDPOINT_URL, AWS_REGION, profiles, roles).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="copy the CSV into the topic (resumes where the job left off)",
        description="Copy the CSV into the topic, resuming where the job left off. Each row "
        "becomes a JSON object of the header's names plus _source_line and "
        "_source_file, written to partition 0 (with --key-column: to the key's partition) in "
        "file order, in Kafka transactions "
        "of --checkpoint-every rows.",
        epilog="Every option can also be set with its environment variable (a flag wins):\n  "
        + "\n  ".join(
            f"{v:40s} --{k.replace('_', '-')}"
            for k, v in ENV.items()
            if k not in {"kafka_properties", "sasl_password"}
        )
        + f"\n  {ENV['kafka_properties']:40s} -X, comma-separated PROP=VALUE"
        + f"\n  {ENV['sasl_password']:40s} the SASL/SCRAM password (no flag)"
        + "\n\n"
        + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_kafka(run)
    run.add_argument("--job-id", help="names this copy; a rerun with the same id resumes it")
    run.add_argument("--checkpoint-table", help="DynamoDB table of checkpoints (key job_id)")
    run.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="rows per Kafka transaction and checkpoint (default 10000)",
    )
    run.add_argument(
        "--checkpoint-seconds",
        type=float,
        metavar="S",
        help="commit at least this often, whatever the row count (default 5)",
    )
    run.add_argument(
        "--compression",
        choices=["none", "gzip", "snappy", "lz4", "zstd"],
        help="Kafka compression (default zstd: half the bytes of lz4 at the same speed)",
    )
    run.add_argument(
        "--create-topic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="create the topic if it is absent, with --partitions (default one) (default yes)",
    )
    run.add_argument(
        "--allow-multiple-partitions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write to partition 0 of a topic with more partitions "
        "(default no: order holds only per partition)",
    )
    run.add_argument(
        "--create-table",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="create the checkpoint table if it is absent (default yes)",
    )
    run.add_argument(
        "--parse-process",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read, parse and encode the CSV in a second process, beside the one producing to "
        "Kafka (default yes when at least 2 CPUs are available, counting a container's CPU "
        "quota; on one CPU it only adds overhead)",
    )
    _key_options(run)
    _schema_options(run)
    run.add_argument("--metrics-namespace", help="CloudWatch namespace (default CsvToKafka)")
    run.add_argument(
        "--metrics-interval",
        type=float,
        metavar="S",
        help="seconds between CloudWatch sends (default 60)",
    )
    _errors_options(run)
    _progress_option(run)
    _plan_options(run, part=True)

    check = commands.add_parser(
        "check",
        help="read the whole CSV as run would, and report its rows or its first bad row",
        description="Read and parse the whole object exactly as run does (same parser, same "
        "record encoder, same limit on a record's size) without writing anything anywhere: "
        "no Kafka, no DynamoDB (with --job-id and --checkpoint-table it reads the job's "
        "pinned list of objects there). Exit 0 with the row count if run would copy every "
        "row; exit 3 with the first bad row's line and byte offset (the message run would "
        "stop with) if "
        "not. Use it before a long copy: run commits the rows before a bad one, and a fixed "
        "file is a new object, so a new job.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _sources(check)
    _dialect(check)
    check.add_argument(
        "-X",
        dest="kafka_properties",
        action="append",
        metavar="PROP=VALUE",
        help="Kafka client properties of the run to come; only message.max.bytes (the "
        "largest record, default 1000000) and, with kafka-python, max.request.size count",
    )
    check.add_argument(
        "--kafka-client", choices=KAFKA_CLIENTS, help="the client of the run to come (its limits)"
    )
    check.add_argument(
        "--errors-tolerance",
        choices=["none", "all"],
        help="all: list every bad row (line, byte offset, reason) as run --errors-tolerance all "
        "would send them to its dead-letter topic; exit 3 only past --max-bad-rows",
    )
    check.add_argument(
        "--max-bad-rows",
        type=int,
        metavar="N",
        help=f"with --errors-tolerance all: the run's limit (default {DEFAULT_MAX_BAD_ROWS})",
    )
    _s3_retry_option(check)
    _job_list_options(check)
    _schema_options(check)
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    _progress_option(check)
    check.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS)

    infer = commands.add_parser(
        "infer-schema",
        help="print a JSON Schema of the rows, inferred from the first rows, to edit",
        description="Read the header and the first --sample-rows data rows with run's parser "
        "(the same dialect, the same decoding of a compressed object) and print a JSON Schema "
        "(draft 2020-12) of the row object: each column the narrowest of integer, number, "
        "boolean (true/false) and string that fits every sampled field, nullable where a "
        "sampled field is empty; every column required, no other allowed: a starting point to "
        "edit, then give to run --schema. The sources are run's: over a prefix, several "
        "--source or a --source-manifest, it reads the first --sample-rows rows of each object "
        "(a few at a time) and widens each column's type over all of them (integers in one "
        "object, decimals in another: number); every object must have the first one's header "
        "(exit 3 naming the object otherwise), objects empty once decoded are skipped. Sends "
        "nothing anywhere.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _sources(infer)
    _dialect(infer)
    infer.add_argument(
        "--sample-rows",
        type=int,
        metavar="N",
        default=DEFAULT_SAMPLE_ROWS,
        help=f"data rows to read from each object (default {DEFAULT_SAMPLE_ROWS:,}; 0: every row)",
    )
    _s3_retry_option(infer)
    _job_list_options(infer)
    infer.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS)

    _verify_command(commands)

    _plan_command(commands)

    status = commands.add_parser(
        "status",
        help="show a job's checkpoint, percent done and ETA",
        description="Show the job's checkpoint from DynamoDB, with percent done and an ETA.",
    )
    status.add_argument("--job-id", help="the job")
    status.add_argument("--checkpoint-table", help="DynamoDB table of checkpoints")
    status.add_argument("--json", action="store_true", help="print the checkpoint as JSON")
    status.add_argument(
        "--plan",
        metavar="URL",
        help="the job's plan: every part is listed (also those not started) with its percent",
    )
    status.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS)
    return parser


def _key_options(parser: argparse.ArgumentParser) -> None:
    """--key-column, --key-separator, --partitions (issue 15)."""
    parser.add_argument(
        "--key-column",
        dest="key_columns",
        action="append",
        metavar="NAME",
        help="give each record a key: this column's field (repeat for a compound key, joined "
        "by --key-separator; an empty field is an empty part, an all-empty key is the empty "
        "key, which has a partition like any other). The record goes to partition "
        "murmur2(key) %% partitions, as the Java client's default partitioner puts it, in file "
        "order within each partition; one transaction spans all partitions. A column missing "
        "from the header is exit 3",
    )
    parser.add_argument(
        "--key-separator",
        metavar="TEXT",
        help=f"joins the fields of a compound key (default {DEFAULT_KEY_SEPARATOR!r})",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="partitions of the topic when it is created (default 1); an existing topic with "
        "another count is exit 2. A job keeps the count it started with (exit 3 if the topic's "
        "changes)",
    )


def _schema_options(parser: argparse.ArgumentParser) -> None:
    """--schema, --null-value (issue 15)."""
    parser.add_argument(
        "--schema",
        metavar="FILE|s3://BUCKET/KEY",
        help="a JSON Schema (draft 2020-12) of the row object, such as infer-schema prints: "
        "the columns it types as integer, number or boolean become JSON numbers and booleans, "
        'nullable ones ("type": [..., "null"]) null for an empty field or a --null-value; '
        "others stay strings. A field that does not fit is a bad row naming the column "
        "(exit 3, the rows before it copied); a schema that is not valid JSON, uses a keyword "
        "or type it does not support, requires a column the header lacks, or forbids one it "
        "has (additionalProperties false) is exit 2",
    )
    parser.add_argument(
        "--null-value",
        dest="null_values",
        action="append",
        metavar="TEXT",
        help="a field text that means null in a nullable column (repeatable; the empty field "
        "always does)",
    )


def _job_list_options(parser: Any) -> None:
    """--job-id and --checkpoint-table of check and infer-schema: a job's pinned list."""
    parser.add_argument(
        "--job-id",
        help="with --checkpoint-table, over many objects: read the list of objects the job "
        "pinned at its first run (objects added to a prefix since then are not part of it); "
        "without, or for a job that pinned none, the sources as listed now",
    )
    parser.add_argument(
        "--checkpoint-table", help="the job's DynamoDB table of checkpoints (read only)"
    )


def _verify_command(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="check that the topic holds exactly the CSV's rows, in order",
        description="Read the CSV and the whole partition (read_committed), independently of "
        "any checkpoint. Exit 0 only if the topic holds exactly the CSV's rows, in "
        "order, once each; otherwise exit 1 and name the first difference.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_kafka(verify)
    _key_options(verify)
    _schema_options(verify)
    verify.add_argument(
        "--dlq-topic",
        metavar="TOPIC",
        help="the run's dead-letter topic (--errors-tolerance all): the topic must then hold "
        "exactly the good rows, and TOPIC exactly the bad rows, in order, once each (with "
        "--plan: each part's, counted per part)",
    )
    verify.add_argument(
        "--job-id",
        help="with --checkpoint-table, over many objects: compare with the list of objects the "
        "job pinned at its first run (objects added to a prefix since then are not missing "
        "records); without, or for a job that pinned none, the sources as listed now",
    )
    verify.add_argument("--checkpoint-table", help="the job's DynamoDB table of checkpoints")
    _plan_options(verify, part=False)


def _plan_command(commands: Any) -> None:
    plan = commands.add_parser(
        "plan",
        help="split the CSV into N parts at row boundaries, to copy side by side",
        description="Read the whole object once, exactly as check does (same parser, same "
        "limits; exit 3 with check's message at a bad row, unless --errors-tolerance all), "
        "and write a plan: the object "
        "pinned (ETag, VersionId, size), its header, and for each of --parts N parts its "
        "first byte, end byte, first line, row count (good rows) and bad-row count. Every part "
        "starts at the first byte "
        "of a row, also when quoted fields hold newlines: the cuts are where the parser stood "
        "between two rows (batch ends of 1,000 rows, so a part may be empty when the object "
        "has fewer than N x 1,000 rows), never inside a bad row. Then run --plan URL --part I "
        "copies part I into "
        "partition I (an AWS Batch array child takes I from AWS_BATCH_JOB_ARRAY_INDEX), and "
        "verify --plan URL checks every partition. Compressed objects are refused (exit 2): "
        "copy them with run alone.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("--source", metavar="s3://BUCKET/KEY", help="the CSV object")
    plan.add_argument("--parts", type=int, required=True, metavar="N", help="how many parts")
    plan.add_argument(
        "--output",
        required=True,
        metavar="s3://BUCKET/KEY.json|-|FILE",
        help="where the plan goes: an S3 object, - for stdout, or a local file",
    )
    _dialect(plan)
    plan.add_argument(
        "-X",
        dest="kafka_properties",
        action="append",
        metavar="PROP=VALUE",
        help="Kafka client properties of the runs to come (their record size limit), as check",
    )
    plan.add_argument(
        "--kafka-client", choices=KAFKA_CLIENTS, help="the client of the runs to come (limits)"
    )
    plan.add_argument(
        "--errors-tolerance",
        choices=["none", "all"],
        help="all: go on past bad rows as check --errors-tolerance all does (listed, counted "
        "per part, recorded in the plan); run --plan of a plan with bad rows then needs "
        "--errors-tolerance all (else exit 2). A quote never closed or a lone CR still stop it",
    )
    plan.add_argument(
        "--max-bad-rows",
        type=int,
        metavar="N",
        help=f"with --errors-tolerance all: past N bad rows in the object, exit 3 as check "
        f"(default {DEFAULT_MAX_BAD_ROWS})",
    )
    _schema_options(plan)  # the runs' --schema: a field that does not fit is a bad row too
    _s3_retry_option(plan)
    _progress_option(plan)
    plan.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS)


def _plan_options(parser: argparse.ArgumentParser, *, part: bool) -> None:
    parser.add_argument(
        "--plan",
        metavar="s3://BUCKET/KEY.json|FILE",
        help="a plan made by csv-to-kafka plan; --source defaults to the plan's object",
    )
    if part:
        parser.add_argument(
            "--part",
            type=int,
            metavar="I",
            help="with --plan: copy part I (0-based) into partition I, as job JOB-ID.part-I "
            "(its own transactional id and checkpoint); default: AWS_BATCH_JOB_ARRAY_INDEX. "
            "Out of the plan's range: exit 2. A topic with fewer partitions than parts: exit 2; "
            "an absent one is created with one partition per part. A plan with bad rows "
            "(plan --errors-tolerance all) without --errors-tolerance all: exit 2. The object "
            "changed since the plan: exit 3",
        )


def _s3_retry_option(parser: argparse.ArgumentParser) -> None:
    """--retry-seconds of a command that reads only from S3 (check, infer-schema)."""
    parser.add_argument(
        "--retry-seconds",
        type=float,
        help="how long to retry a failing S3 call before exit 4 (default 300)",
    )


def _errors_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--errors-tolerance",
        choices=["none", "all"],
        help="none (default): the first bad row stops the copy (exit 3) after the rows before it "
        "are committed; all: a bad row (wrong field count, bytes invalid in the encoding, a "
        "record over the producer's limit) goes to --dlq-topic in the same transaction as the "
        "rows around it, and the copy goes on. A quote never closed, a lone CR or a bad header "
        "still stop it",
    )
    parser.add_argument(
        "--dlq-topic",
        metavar="TOPIC",
        help="with --errors-tolerance all: the dead-letter topic (created with one partition if "
        "absent); each bad row's bytes, with headers saying where it was and why. Every part "
        "of a --plan writes its dead letters to partition 0 of it, with header "
        "csv-to-kafka.part naming the part",
    )
    parser.add_argument(
        "--skip-bad-rows",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --errors-tolerance all and no --dlq-topic: drop bad rows (counted and logged)",
    )
    parser.add_argument(
        "--max-bad-rows",
        type=int,
        metavar="N",
        help=f"with --errors-tolerance all: past N bad rows in the job (resumed runs included) "
        f"the copy stops, exit 3, after committing what came before (default "
        f"{DEFAULT_MAX_BAD_ROWS}: a wrong file, every row bad, stops early). With --plan the "
        "limit is per part: each part is a job of its own (J.part-I) and counts its own bad "
        "rows; the other parts go on",
    )


def _progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "json", "none"],
        help="auto: a bar on a terminal, JSON log lines otherwise",
    )


def _resolve(
    args: argparse.Namespace, environ: dict[str, str], required: Sequence[str]
) -> dict[str, Any]:
    """Flag, else environment variable, else default (left out, so the dataclass supplies it)."""
    values: dict[str, Any] = {}
    for name, env in ENV.items():
        flag = getattr(args, name, None)
        if name == "kafka_properties":
            items = list(flag or [])
            if not items and environ.get(env):
                items = [item for item in environ[env].split(",") if item.strip()]
            if items:
                values[name] = parse_kafka_properties(items)
            continue
        if name == "sasl_password":
            if environ.get(env):
                values[name] = Secret(environ[env])
            continue
        if not hasattr(args, name) and name not in required:
            continue
        raw = flag if flag is not None else environ.get(env)
        if raw is None or raw == "":
            continue
        values[name] = raw
    missing = [name for name in required if name not in values]
    if missing:
        flags = ", ".join(f"--{n.replace('_', '-')} (or {ENV[n]})" for n in missing)
        raise ConfigError(f"missing {flags}")
    return values


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    converters: dict[str, Callable[[Any], Any]] = {
        "checkpoint_every": int,
        "checkpoint_seconds": float,
        "metrics_interval": float,
        "retry_seconds": float,
        "partitions": int,
        "max_bad_rows": int,
        "part": int,
    }
    out: dict[str, Any] = {}
    flags = {
        "create_topic",
        "allow_multiple_partitions",
        "create_table",
        "parse_process",
        "skip_bad_rows",
    }
    for name, raw in values.items():
        value = raw
        if name in converters and isinstance(raw, str):
            try:
                value = converters[name](raw)
            except ValueError as err:
                raise ConfigError(f"{ENV[name]} must be a number, got {raw!r}") from err
        elif name in flags and isinstance(raw, str):
            value = _bool_env(name, raw)
        elif name == "source":
            raws = raw if isinstance(raw, list) else raw.split(SOURCE_SEPARATOR)
            uris = [parse_source_uri(item.strip()) for item in raws if item.strip()]
            if not uris:
                raise ConfigError("--source names no object")
            value = uris[0]
            out["more_sources"] = tuple(uris[1:])
        elif name == "source_manifest":
            continue  # build_config turns it into the source
        elif name == "no_header" and isinstance(raw, str):
            value = _bool_env(name, raw)
        elif name == "columns":
            value = tuple(part.strip() for part in raw.split(","))
        elif name == "null_values":
            value = tuple(raw.split(",") if isinstance(raw, str) else raw)
        elif name == "key_columns":
            items = raw.split(",") if isinstance(raw, str) else raw
            value = tuple(item.strip() for item in items)
        out[name] = value
    return out


_RUN_REQUIRED = ("source", "topic", "bootstrap_servers", "job_id", "checkpoint_table")
_VERIFY_REQUIRED = ("source", "topic", "bootstrap_servers")
_CHECK_REQUIRED = ("source",)


def _with_manifest(
    args: argparse.Namespace, environ: dict[str, str], required: Sequence[str]
) -> dict[str, Any]:
    """_resolve, where a --source-manifest stands for --source."""
    manifest = getattr(args, "source_manifest", None) or environ.get(ENV["source_manifest"])
    if not manifest:
        return _typed(_resolve(args, environ, required))
    values = _typed(_resolve(args, environ, [name for name in required if name != "source"]))
    if "source" in values:
        raise ConfigError("give either --source or --source-manifest, not both")
    values["source"] = parse_source_uri(manifest)
    values["source_manifest"] = True
    return values


def _plan_source(args: argparse.Namespace, environ: dict[str, str]) -> None:
    """--plan without --source: the source is the plan's object."""
    plan_url = getattr(args, "plan", None) or environ.get(ENV["plan"])
    if plan_url and not (getattr(args, "source", None) or environ.get(ENV["source"])):
        from ._retry import RetryPolicy  # noqa: PLC0415
        from .plan import load_plan  # noqa: PLC0415

        args.source = load_plan(plan_url, RetryPolicy(total_seconds=60)).source


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ if environ is None else environ)
    if args.command in ("run", "verify"):
        _plan_source(args, environ)
    if args.command == "run":
        return Config(**_with_manifest(args, environ, _RUN_REQUIRED))
    check_like = ("check", "infer-schema", "plan")
    required = _CHECK_REQUIRED if args.command in check_like else _VERIFY_REQUIRED
    values = _with_manifest(args, environ, required)
    # What the command does not use: Config needs a value.
    values.setdefault("topic", "-")
    values.setdefault("bootstrap_servers", "-")
    values.setdefault("job_id", args.command)
    values.setdefault("checkpoint_table", "-")
    if args.command == "verify" and values.get("dlq_topic"):
        values["errors_tolerance"] = "all"  # the bad rows are expected in the DLQ
    if values.get("errors_tolerance") == "all" and not values.get("dlq_topic"):
        values["skip_bad_rows"] = True  # check lists the bad rows; nothing is sent anywhere
    return Config(**values)


# -- output -------------------------------------------------------------------------------------

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for CloudWatch Logs; ``extra=`` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class _BarAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Clears the progress bar's line before a log line, so the two never share a line."""

    bar: Progress | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.bar is not None:
            self.bar.clear()
        super().emit(record)


def setup_logging(level: str, json_lines: bool, stream: TextIO | None = None) -> None:
    handler = _BarAwareHandler(sys.stderr if stream is None else stream)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("csv_to_kafka").setLevel(level)


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return (
        f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        if hours
        else f"{rest // 60:02d}:{rest % 60:02d}"
    )


class Progress:
    """A progress bar on a terminal, or a JSON progress line every ``interval`` seconds."""

    def __init__(self, mode: str, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.mode = mode
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self.job_id = ""
        self.total = 0
        self.start_rows = 0
        self.start_offset = 0
        self.t0 = time.monotonic()
        self.last_shown = 0.0
        self.rows = 0
        self.byte_offset = 0
        self.drawn = False
        self.objects = 0  # a job over many objects: how many, and the one being copied (1-based)
        self.object = 0

    def object_started(self, index: int, count: int) -> None:
        """The copy is in object ``index`` (from 0) of ``count`` (processor, many objects)."""
        self.object, self.objects = index + 1, count

    def started(self, job_id: str, rows: int, byte_offset: int, total_bytes: int) -> None:
        self.job_id, self.total = job_id, total_bytes
        self.start_rows, self.start_offset = rows, byte_offset
        self.rows, self.byte_offset = rows, byte_offset
        self.t0 = time.monotonic()
        self.last_shown = 0.0

    def advanced(self, rows: int, byte_offset: int, *, committed: bool) -> None:
        self.rows, self.byte_offset = rows, byte_offset
        now = time.monotonic()
        wait = 0.2 if self.mode == "bar" else self.interval
        if now - self.last_shown < wait or self.mode == "none":
            return
        self.last_shown = now
        self._show(now)

    def _show(self, now: float) -> None:
        rows, byte_offset = self.rows, self.byte_offset
        elapsed = max(now - self.t0, 1e-9)
        rate = (rows - self.start_rows) / elapsed
        byte_rate = (byte_offset - self.start_offset) / elapsed
        percent = byte_offset / self.total * 100 if self.total else 100.0
        eta = (self.total - byte_offset) / byte_rate if byte_rate > 0 else None
        if self.mode == "bar":
            width = 30
            filled = int(width * percent / 100)
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:5.1f}%  {rows:,} rows  "
                f"{rate:,.0f} rows/s  ETA {_duration(eta)} "
                + (f" object {self.object}/{self.objects} " if self.objects else "")
            )
            self.stream.flush()
            self.drawn = True
        else:
            logger.info(
                "progress",
                extra={
                    "job_id": self.job_id,
                    "row": rows,
                    "byte_offset": byte_offset,
                    "percent": round(percent, 2),
                    "rate": round(rate, 1),
                    "eta_seconds": None if eta is None else round(eta, 1),
                    **(
                        {
                            "object": self.object,
                            "objects": self.objects,
                            "objects_done": self.object - 1,
                        }
                        if self.objects
                        else {}
                    ),
                },
            )

    def clear(self) -> None:
        """Erase the bar's line (a log line is about to be written)."""
        if self.drawn:
            self.stream.write("\r\033[K")
            self.drawn = False

    def close(self) -> None:
        """Draw the final state of the bar and end its line."""
        if self.mode == "bar" and self.last_shown:
            self._show(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


# -- commands -----------------------------------------------------------------------------------


def _cmd_run(config: Config) -> int:
    from .processor import Processor  # noqa: PLC0415 (keeps --help fast)

    progress = _progress(config)
    processor = Processor(config, progress=progress)

    def on_signal(signum: int, _frame: Any) -> None:
        if processor._stop.is_set():
            raise KeyboardInterrupt
        logger.warning(
            "received %s: committing what was sent, then stopping", signal.Signals(signum).name
        )
        processor.request_stop(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        result = processor.run()
    finally:
        progress.close()
    if result.already_complete:
        print(f"job {result.job_id} is already complete: {result.rows_total} rows; nothing to do")
    else:
        print(
            f"job {result.job_id} complete: {result.rows_total} rows in the topic, "
            f"{result.rows_this_run} sent in this run in {result.seconds:.1f}s "
            f"({result.rows_per_second:,.0f} rows/s)"
            + (
                f"; {result.bad_rows} BAD ROWS "
                + (f"in {config.dlq_topic}" if config.dlq_topic else "dropped")
                if result.bad_rows
                else ""
            )
        )
    return EXIT_OK


def _progress(config: Config) -> Progress:
    mode = config.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "json"
    progress = Progress(mode)
    if mode == "bar":
        for handler in logging.getLogger().handlers:
            if isinstance(handler, _BarAwareHandler):
                handler.bar = progress
    return progress


def _cmd_check(config: Config, *, as_json: bool) -> int:
    from .check import check  # noqa: PLC0415

    progress = _progress(config)
    if config.multi_object:
        from .check import check_objects, objects_json, objects_summary  # noqa: PLC0415

        try:
            reports = check_objects(config, progress=progress)
        finally:
            progress.close()
        print(json.dumps(objects_json(reports), indent=2) if as_json else objects_summary(reports))
        return EXIT_OK if all(report.ok for report in reports) else EXIT_BAD_INPUT
    try:
        report = check(config, progress=progress)
    finally:
        progress.close()
    print(json.dumps(report.to_json_dict(), indent=2) if as_json else report.summary())
    return EXIT_OK if report.ok else EXIT_BAD_INPUT


def _cmd_infer_schema(config: Config, sample_rows: int) -> int:
    from .infer import infer  # noqa: PLC0415 (keeps --help fast)

    if sample_rows < 0:
        raise ConfigError(f"--sample-rows must be 0 (every row) or more, got {sample_rows}")
    inferred = infer(config, sample_rows)
    print(json.dumps(inferred.schema, indent=2))
    if config.multi_object:
        logger.info(
            "schema of %s inferred from %d data rows of %d objects%s",
            config.source_label.replace("\n", ", "),
            inferred.rows,
            inferred.objects,
            f" ({inferred.empty} empty once decoded, skipped)" if inferred.empty else "",
        )
    else:
        logger.info("schema of %s inferred from %d data rows", config.source, inferred.rows)
    return EXIT_OK


def _cmd_plan(config: Config, parts: int, output: str) -> int:
    from ._retry import RetryPolicy  # noqa: PLC0415
    from .plan import make_plan, write_plan  # noqa: PLC0415

    progress = _progress(config)
    try:
        plan, report = make_plan(config, parts, progress=progress)
    finally:
        progress.close()
    write_plan(plan, output, RetryPolicy(total_seconds=config.retry_seconds))
    where = "stdout" if output == "-" else output
    stream = sys.stderr if output == "-" else sys.stdout
    print(
        f"plan of {plan.source}: {report.rows:,} rows in {len(plan.parts)} parts -> {where}"
        + (f"; {plan.bad_rows:,} BAD ROWS (dead letters)" if plan.bad_rows else ""),
        file=stream,
    )
    for part in plan.parts:
        print(
            f"  part {part.index}: {part.rows:,} rows from line {part.first_line:,}, bytes "
            f"{part.first_byte:,}-{part.end_byte:,}"
            + (f", {part.bad_rows:,} bad rows" if part.bad_rows else ""),
            file=stream,
        )
    for row in report.bad_rows:
        print(
            f"bad row at line {row['line']}, byte {row['byte_offset']} ({row['reason']}): "
            f"{row['message']}",
            file=stream,
        )
    return EXIT_OK


def _cmd_verify_plan(config: Config) -> int:
    from ._retry import RetryPolicy  # noqa: PLC0415
    from .plan import load_plan  # noqa: PLC0415
    from .verify import verify_plan  # noqa: PLC0415

    plan = load_plan(str(config.plan), RetryPolicy(total_seconds=config.retry_seconds))
    reports = verify_plan(config, plan)
    differences = 0
    for part, report in zip(plan.parts, reports, strict=True):
        print(f"part {part.index} (partition {part.index}): {report.summary()}")
        if not report.ok:
            differences += 1
            print(f"  first difference: {report.first_difference}")
    rows = sum(r.rows_in_csv for r in reports)
    records = sum(r.records_in_topic for r in reports)
    verdict = "OK" if not differences else f"MISMATCH in {differences} part(s)"
    dead = (
        f"; bad rows in CSV {sum(r.bad_rows_in_csv for r in reports)}, dead letters in "
        f"{config.dlq_topic} {sum(r.dead_letters for r in reports)}"
        if config.dlq_topic
        else ""
    )
    print(
        f"verify {verdict}: {len(reports)} parts, rows in CSV {rows}, records in topic "
        f"{records}{dead}"
    )
    return EXIT_MISMATCH if differences else EXIT_OK


def _cmd_verify(config: Config) -> int:
    from .verify import verify  # noqa: PLC0415

    if config.plan is not None:
        return _cmd_verify_plan(config)
    if config.multi_object:
        from .verify import verify_objects  # noqa: PLC0415

        report = verify_objects(config)
        for uri, ok in report.objects:
            print(f"  {'OK' if ok else 'MISMATCH'} {uri}")
    else:
        report = verify(config)
    print(report.summary())
    if not report.ok:
        print(f"first difference: {report.first_difference}")
        return EXIT_MISMATCH
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from ._retry import RetryPolicy  # noqa: PLC0415
    from .checkpoint import CheckpointStore  # noqa: PLC0415

    values = _resolve(args, dict(os.environ), ("job_id", "checkpoint_table"))
    store = CheckpointStore(values["checkpoint_table"], retry=RetryPolicy(total_seconds=30))
    checkpoint = store.load(values["job_id"])
    if checkpoint is None or values.get("plan"):
        from .plan import status_of_parts  # noqa: PLC0415

        lines = status_of_parts(store, values["job_id"], values.get("plan"), as_json=args.json)
        if lines is not None:
            print(lines)
            return EXIT_OK
    if checkpoint is None:
        raise ConfigError(
            f"no checkpoint for job {values['job_id']!r} in table {values['checkpoint_table']}"
        )
    if args.json:
        print(json.dumps(checkpoint.to_json_dict(), indent=2))
        return EXIT_OK
    print(
        f"job {checkpoint.job_id}: {checkpoint.status.value}, {checkpoint.percent_done:.1f}% "
        f"done, ETA {_duration(checkpoint.eta_seconds)}"
    )
    print(f"  {checkpoint.source} -> topic {checkpoint.topic}")
    if checkpoint.partitions:
        keys = f"key {checkpoint.key_columns}" if checkpoint.key_columns else "no key"
        print(f"  {checkpoint.partitions} partition(s), {keys}")
    if checkpoint.current_object is not None:
        print(
            f"  object {checkpoint.object_index + 1} of {checkpoint.object_count}: "
            f"{checkpoint.current_object}"
        )
    print(
        f"  rows committed {checkpoint.total_sent:,}, last line {checkpoint.last_line:,}, "
        f"byte {checkpoint.byte_offset:,} of {checkpoint.total_bytes:,}, Kafka offset "
        f"{checkpoint.kafka_offset}"
    )
    print(
        f"  rate {checkpoint.rows_per_second:,.0f} rows/s; started {checkpoint.started_at}, "
        f"updated {checkpoint.updated_at}"
    )
    if checkpoint.bad_rows:
        print(f"  BAD ROWS {checkpoint.bad_rows:,} (dead-letter topic or dropped)")
    if checkpoint.error:
        print(f"  last error: {checkpoint.error}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    # boto3 reads AWS_DEFAULT_REGION; containers on AWS often set only AWS_REGION.
    if os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]
    level = args.log_level or os.environ.get(ENV["log_level"], "").upper() or "INFO"
    if level not in LOG_LEVELS:
        parser.error(f"{ENV['log_level']}={level.lower()}: choose from {', '.join(LOG_LEVELS)}")
    setup_logging(level, json_lines=not sys.stderr.isatty())
    try:
        if args.command == "status":
            setup_logging(level, json_lines=False)
            return _cmd_status(args)
        config = build_config(args)
        json_lines = args.command in ("run", "check", "plan") and (
            config.progress == "json" or (config.progress == "auto" and not sys.stderr.isatty())
        )
        setup_logging(level, json_lines)
        if args.command == "verify":
            return _cmd_verify(config)
        if args.command == "check":
            return _cmd_check(config, as_json=args.json)
        if args.command == "infer-schema":
            return _cmd_infer_schema(config, args.sample_rows)
        if args.command == "plan":
            return _cmd_plan(config, args.parts, args.output)
        return _cmd_run(config)
    except CsvToKafkaError as err:
        logger.error("%s", err, extra={"exit_code": exit_code_for(err)})
        return exit_code_for(err)
    except KeyboardInterrupt:
        logger.error("interrupted")
        return EXIT_SIGINT


if __name__ == "__main__":
    sys.exit(main())
