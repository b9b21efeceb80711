"""The job's checkpoint in DynamoDB: where the copy stands, written after each Kafka commit.

Kafka transactions hold the truth of what was written; the checkpoint is the record operators and
``csv-to-kafka status`` read, and where a restarted job looks first. One item per job, keyed by
``job_id`` (S). Every write is conditional so that a checkpoint never moves backwards: see
``CheckpointStore.save``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
import botocore.config
import botocore.exceptions

from ._retry import RetryPolicy, retry_call
from .errors import ConfigError, InfrastructureError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["Checkpoint", "CheckpointStore", "Status", "utc_now_iso"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Error codes that mean "these credentials may not use this table": fix the role, not the code.
_ACCESS_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "IncompleteSignature",
    }
)
# DynamoDB items are limited to 400 KB; an error message is a summary, not a log.
_MAX_ERROR_CHARS = 2000
# How long to wait for a table this process created to become ACTIVE (delay x attempts).
_TABLE_WAIT_DELAY = 2
_TABLE_WAIT_ATTEMPTS = 60


class Status(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"


def utc_now_iso() -> str:
    """Now, as ISO-8601 UTC with a ``Z``, the form of ``started_at`` and ``updated_at``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Checkpoint:
    """Where one job stands, as of its last Kafka commit."""

    job_id: str
    status: Status
    source: str  # s3://bucket/key
    topic: str
    etag: str  # the pinned object version: ETag ...
    version_id: str | None  # ... plus VersionId when the bucket is versioned
    last_line: int  # 1-based line where the last committed row starts (0 = none yet)
    total_sent: int  # data rows committed to Kafka
    # byte in the object just after the last committed row; in a compressed object, how far
    # into the stored (compressed) object the reader had got then (progress only)
    byte_offset: int
    kafka_offset: int  # offset of the last committed record (-1 = none)
    total_bytes: int  # object size, for percent done
    rows_per_second: float  # recent rate, for the ETA
    bytes_per_second: float
    started_at: str  # ISO-8601 UTC of the job's first start
    updated_at: str  # ISO-8601 UTC of this write
    error: str | None = None  # last error message when FAILED/INTERRUPTED (never secrets)
    partitions: int = 0  # the topic's partitions when the job started (0: not recorded)
    key_columns: str = ""  # --key-column, comma-separated ("" for no keys)
    bad_rows: int = 0  # bad rows committed to the dead-letter topic or dropped (issue 14)
    # A job over many objects (objects.py): the object the copy is in (its index in the job's
    # list, from 0, and its URI) and how many the job has; etag, version_id and last_line are
    # that object's, byte_offset and total_bytes count over the whole job.
    object_index: int = 0
    object_count: int = 1
    current_object: str | None = None
    # --schema: the SHA-256 of its JSON (schema.schema_digest) and where the run read it; ""
    # for a job without one; None in items written before schemas were pinned (not checked).
    schema_sha256: str | None = None
    schema: str | None = None

    @property
    def percent_done(self) -> float:
        """Bytes committed as a share of the object, 0 to 100; 100 once COMPLETED or if empty."""
        if self.status is Status.COMPLETED or self.total_bytes <= 0:
            return 100.0
        return max(0.0, min(100.0, self.byte_offset / self.total_bytes * 100.0))

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the recent rate: 0 once COMPLETED, None when unknown.

        Unknown means no rate yet, or the job is not RUNNING (a stopped job has no finish time).
        """
        if self.status is Status.COMPLETED:
            return 0.0
        if self.status is not Status.RUNNING:
            return None
        remaining = max(0, self.total_bytes - self.byte_offset)
        if remaining == 0:
            return 0.0
        if not math.isfinite(self.bytes_per_second) or self.bytes_per_second <= 0:
            return None
        return remaining / self.bytes_per_second

    def to_json_dict(self) -> dict[str, Any]:
        """Every field plus ``percent_done`` and ``eta_seconds``, for ``status --json``."""
        data = asdict(self)
        data["status"] = self.status.value
        data["percent_done"] = self.percent_done
        data["eta_seconds"] = self.eta_seconds
        return data


# Attribute name -> how it is stored. The item's attribute names are the dataclass field names.
_INT_FIELDS = (
    "last_line",
    "total_sent",
    "byte_offset",
    "kafka_offset",
    "total_bytes",
    "partitions",
    "object_index",
    "object_count",
)
_FLOAT_FIELDS = ("rows_per_second", "bytes_per_second")
_STR_FIELDS = (
    "job_id",
    "status",
    "source",
    "topic",
    "etag",
    "started_at",
    "updated_at",
    "key_columns",
)
_OPTIONAL_STR_FIELDS = ("version_id", "error", "current_object", "schema_sha256", "schema")
# What a field missing from a stored item loads as (items written by older versions).
_DEFAULTS: Mapping[str, Any] = {
    "version_id": None,
    "error": None,
    "current_object": None,
    "schema_sha256": None,
    "schema": None,
    "object_index": 0,
    "object_count": 1,
    "last_line": 0,
    "total_sent": 0,
    "byte_offset": 0,
    "kafka_offset": -1,
    "total_bytes": 0,
    "rows_per_second": 0.0,
    "bytes_per_second": 0.0,
    "started_at": "",
    "updated_at": "",
    "etag": "",
    "partitions": 0,
    "key_columns": "",
}


def _number(value: float) -> str:
    # DynamoDB numbers have no NaN or infinity; an unknown rate is stored as 0.
    return repr(float(value)) if math.isfinite(value) else "0"


def _to_item(cp: Checkpoint) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {}
    for name in _STR_FIELDS:
        item[name] = {"S": str(getattr(cp, name))}
    for name in _INT_FIELDS:
        item[name] = {"N": str(int(getattr(cp, name)))}
    for name in _FLOAT_FIELDS:
        item[name] = {"N": _number(getattr(cp, name))}
    if cp.version_id is not None:
        item["version_id"] = {"S": cp.version_id}
    if cp.error is not None:
        item["error"] = {"S": cp.error[:_MAX_ERROR_CHARS]}
    if cp.bad_rows:  # (absent: none, as in items of jobs without --errors-tolerance all)
        item["bad_rows"] = {"N": str(cp.bad_rows)}
    if cp.current_object is not None:
        item["current_object"] = {"S": cp.current_object}
    if cp.schema_sha256 is not None:
        item["schema_sha256"] = {"S": cp.schema_sha256}
    if cp.schema is not None:
        item["schema"] = {"S": cp.schema}
    return item


def _from_item(item: Mapping[str, Any], table: str) -> Checkpoint:
    values: dict[str, Any] = dict(_DEFAULTS)
    try:
        for name in (*_STR_FIELDS, *_OPTIONAL_STR_FIELDS):
            if name in item:
                values[name] = item[name]["S"]
        for name in _INT_FIELDS:
            if name in item:
                values[name] = int(item[name]["N"])
        for name in _FLOAT_FIELDS:
            if name in item:
                values[name] = float(item[name]["N"])
        if "bad_rows" in item:
            values["bad_rows"] = int(item["bad_rows"]["N"])
        values["status"] = Status(values["status"])
        return Checkpoint(**values)
    except (KeyError, TypeError, ValueError) as err:
        job = item.get("job_id", {}).get("S", "?")
        raise ConfigError(
            f"DynamoDB table {table!r} holds an item for job {job!r} that is not a csv-to-kafka "
            f"checkpoint ({err!r}); use another --job-id or another --checkpoint-table"
        ) from err


def _default_client() -> DynamoDBClient:
    # Short timeouts so a dead endpoint fails into retry_call's budget instead of hanging;
    # endpoint, region and credentials come from the standard AWS configuration.
    config = botocore.config.Config(
        connect_timeout=5,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 3},
    )
    try:
        return boto3.client("dynamodb", config=config)
    except botocore.exceptions.NoRegionError as err:
        raise ConfigError(
            "no AWS region for DynamoDB: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile)"
        ) from err


def _code(err: botocore.exceptions.ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class CheckpointStore:
    """Reads and writes job checkpoints in one DynamoDB table (key ``job_id``, a string)."""

    def __init__(
        self,
        table: str,
        *,
        retry: RetryPolicy,
        client: DynamoDBClient | None = None,
        create_table: bool = False,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.table = table
        self._retry = retry
        self._client = client if client is not None else _default_client()
        self._create_table = create_table
        self._on_retry = on_retry

    @property
    def client(self) -> DynamoDBClient:
        """The boto3 client (the job's object list lives in the same table: objects.py)."""
        return self._client

    def load(self, job_id: str) -> Checkpoint | None:
        """The stored checkpoint of ``job_id`` (a strongly consistent read), or None."""

        def get() -> Mapping[str, Any] | None:
            response = self._client.get_item(
                TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
            )
            return response.get("Item")

        item = self._call(f"reading the checkpoint of job {job_id!r}", get)
        if item is None:
            return None
        return _from_item(item, self.table)

    def save(self, cp: Checkpoint) -> bool:
        """Store ``cp`` unless that would move the job's checkpoint backwards.

        Allowed: a first write; more rows sent; the same rows sent with any status, except that
        a COMPLETED checkpoint is only ever replaced by a COMPLETED one at the same position
        (a zombie writing RUNNING after completion is refused). Writing the same checkpoint
        twice is allowed, so a retried PutItem that had in fact succeeded is harmless.

        Returns False, logging at INFO, when a newer checkpoint is stored; the caller decides.
        """
        # Named parts: attribute names and values are placeholders, never spliced in.
        names = {"#job_id": "job_id", "#total_sent": "total_sent"}
        values: dict[str, AttributeValueTypeDef] = {":total_sent": {"N": str(cp.total_sent)}}
        first_write = "attribute_not_exists(#job_id)"
        more_rows = "#total_sent < :total_sent"
        if cp.status is Status.COMPLETED:
            same_rows = "#total_sent = :total_sent"
        else:
            same_rows = "(#total_sent = :total_sent AND #status <> :completed)"
            names["#status"] = "status"
            values[":completed"] = {"S": Status.COMPLETED.value}
        condition = f"{first_write} OR {more_rows} OR {same_rows}"

        def put() -> Mapping[str, Any] | None:
            """None when stored; the stored item (possibly empty) when the condition failed."""
            try:
                self._client.put_item(
                    TableName=self.table,
                    Item=_to_item(cp),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except botocore.exceptions.ClientError as err:
                if _code(err) != "ConditionalCheckFailedException":
                    raise
                # With ALL_OLD the error carries the stored item (absent from botocore's types).
                return cast("Mapping[str, Any]", err.response.get("Item", {}))
            return None

        rejected = self._call(f"writing the checkpoint of job {cp.job_id!r}", put)
        if rejected is None:
            logger.debug(
                "checkpoint of job %s saved: %s at line %d, %d rows, kafka offset %d",
                cp.job_id,
                cp.status.value,
                cp.last_line,
                cp.total_sent,
                cp.kafka_offset,
            )
            return True
        logger.info(
            "a newer checkpoint of job %s is stored in %s (%s rows, %s); not overwriting it "
            "with %s at %d rows",
            cp.job_id,
            self.table,
            rejected.get("total_sent", {}).get("N", "?"),
            rejected.get("status", {}).get("S", "?"),
            cp.status.value,
            cp.total_sent,
        )
        return False

    def delete(self, job_id: str) -> None:
        """Remove the checkpoint of ``job_id`` (for operators and tests); absent is fine."""

        def delete() -> None:
            self._client.delete_item(TableName=self.table, Key={"job_id": {"S": job_id}})

        self._call(f"deleting the checkpoint of job {job_id!r}", delete)

    # -- plumbing --------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` with transient errors retried, a missing table handled, and errors wrapped."""
        try:
            return self._retried(what, fn)
        except botocore.exceptions.ClientError as err:
            if _code(err) != "ResourceNotFoundException":
                raise self._wrap(what, err) from err
            if not self._create_table:
                raise ConfigError(
                    f"DynamoDB table {self.table!r} does not exist: create it (partition key "
                    f"job_id, type String) or pass --create-table"
                ) from err
        self._ensure_table()
        try:
            return self._retried(what, fn)
        except botocore.exceptions.ClientError as err:
            raise self._wrap(what, err) from err

    def _retried(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return retry_call(
                fn, what=f"{what} in {self.table}", policy=self._retry, on_retry=self._on_retry
            )
        except botocore.exceptions.NoCredentialsError as err:
            raise ConfigError(
                f"no AWS credentials for DynamoDB table {self.table!r}: set AWS_PROFILE, "
                f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use an instance role"
            ) from err
        except botocore.exceptions.BotoCoreError as err:
            raise InfrastructureError(f"{what} in DynamoDB table {self.table!r}: {err}") from err

    def _wrap(self, what: str, err: botocore.exceptions.ClientError) -> Exception:
        code = _code(err)
        if code in _ACCESS_CODES:
            return ConfigError(
                f"not allowed to use DynamoDB table {self.table!r} ({code}) while {what}: grant "
                f"dynamodb:GetItem, PutItem, DeleteItem (and CreateTable, DescribeTable for "
                f"--create-table) on it"
            )
        if code == "ResourceNotFoundException":
            return InfrastructureError(
                f"DynamoDB table {self.table!r} was created but is not usable yet; rerun the job"
            )
        if code == "ValidationException":
            return ConfigError(
                f"DynamoDB refused {what} in table {self.table!r}: {err}; check that the table's "
                f"partition key is job_id (String)"
            )
        return InfrastructureError(f"DynamoDB failed {what} in table {self.table!r}: {err}")

    def _ensure_table(self) -> None:
        """Create the table (on demand billing) and wait until it is ACTIVE."""
        logger.info("creating DynamoDB table %s (partition key job_id, on demand)", self.table)

        def create() -> None:
            try:
                self._client.create_table(
                    TableName=self.table,
                    KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except botocore.exceptions.ClientError as err:
                # Another instance got there first: waiting for it is all that is left to do.
                if _code(err) != "ResourceInUseException":
                    raise

        try:
            self._retried("creating the table", create)
            self._retried(
                "waiting for the table to become ACTIVE",
                lambda: self._client.get_waiter("table_exists").wait(
                    TableName=self.table,
                    WaiterConfig={"Delay": _TABLE_WAIT_DELAY, "MaxAttempts": _TABLE_WAIT_ATTEMPTS},
                ),
            )
        except botocore.exceptions.ClientError as err:
            raise self._wrap("creating the table", err) from err
        logger.info("DynamoDB table %s is ACTIVE", self.table)
