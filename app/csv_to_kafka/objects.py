"""The job's objects: what ``--source`` names, listed once and pinned for the job's whole life.

``--source`` names one object (``s3://BUCKET/KEY``), a prefix (``s3://BUCKET/PREFIX/``: every
object under it in S3's listing order, UTF-8 binary key order, without zero-byte objects and
folder markers), or several of these (``--source`` repeated, in the order given; through the
environment, one per line: a line break never occurs in an S3 URL this tool accepts).
``--source-manifest s3://BUCKET/KEY`` names an object that lists sources one per line, for
thousands of objects.

The list (URI, ETag, VersionId, size of each object) is fixed at the job's first run and stored
in the checkpoint table, next to the job's checkpoint, as chunked items: ``JOB#objects`` (the
count, the number of chunks, the write's id and a SHA-256 of the list) and
``JOB#objects#WRITE#N`` (zlib-compressed JSON lines, at most ``_CHUNK_BYTES`` each, well under
DynamoDB's 400 KB item limit). The chunks are written first and the head last, on condition
that it does not exist, so a list is either whole or absent, and two instances starting at once
agree on the first one written (the other's chunks, under another write id, are left unread).
A resumed run uses the stored list.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions

from ._retry import RetryPolicy, is_transient_aws, retry_call
from .config import Config, SourceUri, parse_source_uri
from .errors import ConfigError, InfrastructureError, ObjectChangedError
from .source import ObjectInfo, S3Object

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

__all__ = [
    "LIST_SUFFIX",
    "SOURCE_SEPARATOR",
    "JobObjects",
    "PinnedObjects",
    "bucket_and_key",
    "check_still_listed",
    "config_objects",
    "job_objects",
    "list_objects",
    "read_manifest",
]

logger = logging.getLogger(__name__)

SOURCE_SEPARATOR = "\n"  # between sources in CSV_TO_KAFKA_SOURCE and in a manifest
LIST_SUFFIX = "#objects"  # the pinned list's items: JOB#objects, JOB#objects#0, ...
_CHUNK_BYTES = 300_000  # compressed bytes per item (DynamoDB: 400 KB an item)
_MANIFEST_MAX_BYTES = 64 * 1024 * 1024
_HEAD_THREADS = 16  # HEADs in flight while a list of objects named one by one is pinned


def bucket_and_key(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


@dataclass(frozen=True)
class JobObjects:
    """The job's objects in copy order, and where each starts in the job's bytes."""

    objects: tuple[ObjectInfo, ...]

    def __post_init__(self) -> None:
        starts = (0, *accumulate(info.size for info in self.objects))
        object.__setattr__(self, "_starts", starts)

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, index: int) -> ObjectInfo:
        return self.objects[index]

    @property
    def total_bytes(self) -> int:
        starts: tuple[int, ...] = self._starts  # type: ignore[attr-defined]
        return starts[-1]

    def start_of(self, index: int) -> int:
        """The job's byte where object ``index`` starts (its objects' sizes before it)."""
        starts: tuple[int, ...] = self._starts  # type: ignore[attr-defined]
        return starts[index]


def read_manifest(s3: S3Client, manifest: SourceUri, retry: RetryPolicy) -> list[SourceUri]:
    """The sources a manifest object lists, one URL per line (blank lines and ``#`` comments
    skipped); a ConfigError names a bad line."""

    def get() -> bytes:
        response = s3.get_object(Bucket=manifest.bucket, Key=manifest.key)
        body: bytes = response["Body"].read(_MANIFEST_MAX_BYTES + 1)
        return body

    try:
        data = retry_call(get, what=f"GET {manifest}", policy=retry, is_transient=is_transient_aws)
    except botocore.exceptions.ClientError as err:
        raise ConfigError(f"the manifest {manifest} cannot be read: {err}") from err
    if len(data) > _MANIFEST_MAX_BYTES:
        raise ConfigError(f"the manifest {manifest} is larger than {_MANIFEST_MAX_BYTES} bytes")
    sources: list[SourceUri] = []
    for number, line in enumerate(data.decode("utf-8", "replace").split("\n"), start=1):
        text = line.rstrip("\r")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            sources.append(parse_source_uri(text.strip()))
        except ConfigError as err:
            raise ConfigError(f"the manifest {manifest}, line {number}: {err}") from err
    if not sources:
        raise ConfigError(f"the manifest {manifest} lists no sources")
    return sources


def _list_prefix(
    s3: S3Client, prefix: SourceUri, retry: RetryPolicy
) -> Iterator[tuple[ObjectInfo | None, str]]:
    """Every object under ``prefix`` in listing order: (info, key), or (None, key) for a zero-byte
    object or a folder marker."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": prefix.bucket, "Prefix": prefix.key}
        if token:
            kwargs["ContinuationToken"] = token

        def page(kwargs: dict[str, Any] = kwargs) -> Any:
            return s3.list_objects_v2(**kwargs)

        try:
            response = retry_call(
                page, what=f"listing {prefix}", policy=retry, is_transient=is_transient_aws
            )
        except botocore.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in {"403", "AccessDenied", "Forbidden"}:
                raise ConfigError(f"listing {prefix} was denied (s3:ListBucket)") from err
            if code in {"404", "NoSuchBucket"}:
                raise ConfigError(f"the bucket of {prefix} does not exist") from err
            raise InfrastructureError(f"listing {prefix} failed: {err}") from err
        for entry in response.get("Contents", []):
            key = str(entry["Key"])
            size = int(entry.get("Size", 0))
            if size == 0 or key.endswith("/"):
                yield None, key
                continue
            uri = f"s3://{prefix.bucket}/{key}"
            yield ObjectInfo(uri=uri, etag=str(entry["ETag"]), version_id=None, size=size), key
        if not response.get("IsTruncated"):
            return
        token = response.get("NextContinuationToken")


def list_objects(
    sources: Sequence[SourceUri], s3: S3Client, retry: RetryPolicy
) -> tuple[ObjectInfo, ...]:
    """The objects ``sources`` name, in order: a prefix expands to its data objects (logged with
    the number skipped), an object is HEADed. A prefix without data objects is a ConfigError."""
    # Objects named one by one (a manifest of thousands) are HEADed a few at a time, in order.
    singles = [source for source in sources if not source.key.endswith("/")]
    with ThreadPoolExecutor(max_workers=_HEAD_THREADS, thread_name_prefix="head") as pool:
        heads = iter(
            pool.map(
                lambda source: S3Object(source.bucket, source.key, retry=retry, client=s3).head(),
                singles,
            )
        )
        found: list[ObjectInfo] = []
        for source in sources:
            if source.key.endswith("/"):
                found += _data_objects(s3, source, retry)
            else:
                found.append(next(heads))
    return tuple(found)


def _data_objects(s3: S3Client, source: SourceUri, retry: RetryPolicy) -> list[ObjectInfo]:
    """The data objects under the prefix ``source``, logged with the number skipped."""
    found: list[ObjectInfo] = []
    skipped = 0
    count = 0
    for info, _key in _list_prefix(s3, source, retry):
        if info is None:
            skipped += 1
            continue
        found.append(info)
        count += 1
    logger.info(
        "%s: %d objects to copy, %d skipped (zero-byte objects and folder markers)",
        source,
        count,
        skipped,
    )
    if count == 0:
        raise ConfigError(
            f"the prefix {source} holds no data objects ({skipped} zero-byte objects or "
            "folder markers): check the bucket and the prefix (it must end with /)"
        )
    return found


def check_still_listed(
    pinned: JobObjects, sources: Sequence[SourceUri], s3: S3Client, retry: RetryPolicy, start: int
) -> int:
    """On resume: the objects from ``start`` on must be as pinned where a listing shows them;
    returns how many objects the prefixes hold now that the pinned list does not (ignored).

    Only prefixes are listed again (one request per 1,000 keys); a single object that changed is
    found by its GET, which is conditional on the pinned ETag.
    """
    prefixes = [source for source in sources if source.key.endswith("/")]
    if not prefixes:
        return 0
    now: dict[str, ObjectInfo] = {}
    for prefix in prefixes:
        for info, _key in _list_prefix(s3, prefix, retry):
            if info is not None:
                now[info.uri] = info
    pinned_uris = {info.uri for info in pinned.objects}
    for index in range(start, len(pinned)):
        info = pinned[index]
        if not any(info.uri.startswith(str(prefix)) for prefix in prefixes):
            continue
        current = now.get(info.uri)
        if current is None:
            raise ObjectChangedError(
                f"object {index + 1} of the job, {info.uri}, was deleted since the job started; "
                "the job's list of objects is fixed at its first run. Restore it or start a new "
                "--job-id",
                source=info.uri,
            )
        if current.etag != info.etag:
            raise ObjectChangedError(
                f"object {index + 1} of the job, {info.uri}, changed since the job started "
                f"(ETag {info.etag}, now {current.etag}); copying on would mix two versions. "
                "Start a new --job-id to copy the new version",
                source=info.uri,
            )
    return sum(1 for uri in now if uri not in pinned_uris)


def config_objects(config: Config, s3: S3Client, retry: RetryPolicy) -> tuple[ObjectInfo, ...]:
    """The objects ``config``'s sources name now (check and verify list them, run pins them)."""
    sources = read_manifest(s3, config.source, retry) if config.source_manifest else config.sources
    return list_objects(sources, s3, retry)


def job_objects(
    config: Config, s3: S3Client, retry: RetryPolicy, command: str
) -> tuple[ObjectInfo, ...]:
    """The objects ``command`` (check, infer-schema, verify) reads over many objects: the list
    job ``config.job_id`` pinned at its first run, when ``--checkpoint-table`` is given and the
    job pinned one (objects added to a prefix since then are not part of the job); else
    ``config``'s sources as listed now."""
    if config.checkpoint_table != "-":  # "-": not given (cli.build_config)
        pinned = PinnedObjects(config.checkpoint_table, retry=retry).load(config.job_id)
        if pinned is not None:
            logger.info(
                "%s: the %d objects job %s pinned at its first run",
                command,
                len(pinned),
                config.job_id,
            )
            return pinned.objects
        logger.info(
            "%s: job %s pinned no list of objects: listing the sources", command, config.job_id
        )
    return config_objects(config, s3, retry)


def _encode(objects: Sequence[ObjectInfo]) -> bytes:
    lines = (
        json.dumps([info.uri, info.etag, info.version_id, info.size], ensure_ascii=False)
        for info in objects
    )
    return "\n".join(lines).encode()


def _decode(data: bytes) -> tuple[ObjectInfo, ...]:
    if not data:
        return ()
    objects = []
    for line in data.decode().split("\n"):
        uri, etag, version_id, size = json.loads(line)
        objects.append(ObjectInfo(uri=uri, etag=etag, version_id=version_id, size=int(size)))
    return tuple(objects)


class PinnedObjects:
    """The job's fixed list of objects in the checkpoint table (see the module's docstring)."""

    def __init__(
        self, table: str, *, retry: RetryPolicy, client: DynamoDBClient | None = None
    ) -> None:
        self.table = table
        self._retry = retry
        self._client: DynamoDBClient = client if client is not None else boto3.client("dynamodb")

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return retry_call(fn, what=what, policy=self._retry, is_transient=is_transient_aws)
        except botocore.exceptions.ClientError as err:
            raise InfrastructureError(
                f"{what} in DynamoDB table {self.table} failed: {err}"
            ) from err

    def load(self, job_id: str) -> JobObjects | None:
        """The job's pinned list, or None when the job has none yet."""
        head_key = job_id + LIST_SUFFIX

        def get_head() -> Any:
            return self._client.get_item(
                TableName=self.table, Key={"job_id": {"S": head_key}}, ConsistentRead=True
            )

        head = self._call(f"reading the object list of job {job_id}", get_head).get("Item")
        if head is None:
            return None
        chunks = int(head["chunks"]["N"])
        write = head["write"]["S"]
        data = bytearray()
        for n in range(chunks):

            def get_chunk(n: int = n) -> Any:
                return self._client.get_item(
                    TableName=self.table,
                    Key={"job_id": {"S": f"{head_key}#{write}#{n}"}},
                    ConsistentRead=True,
                )

            item = self._call(f"reading the object list of job {job_id}", get_chunk).get("Item")
            if item is None:
                raise InfrastructureError(
                    f"the object list of job {job_id} lacks its part {n} in table {self.table}"
                )
            data += item["data"]["B"]
        text = zlib.decompress(bytes(data))
        if hashlib.sha256(text).hexdigest() != head["sha256"]["S"]:
            raise InfrastructureError(
                f"the object list of job {job_id} in table {self.table} does not match its "
                "checksum (written by two instances at once?)"
            )
        return JobObjects(_decode(text))

    def save(self, job_id: str, objects: Sequence[ObjectInfo]) -> JobObjects:
        """Store ``objects`` as the job's list, unless one is stored already: returns the
        stored one (two instances starting at once copy the same list)."""
        head_key = job_id + LIST_SUFFIX
        text = _encode(objects)
        packed = zlib.compress(text, 6)
        pieces = [packed[i : i + _CHUNK_BYTES] for i in range(0, len(packed), _CHUNK_BYTES)]
        write = uuid.uuid4().hex  # this write's chunks: another instance's never overwrite them
        for n, piece in enumerate(pieces):

            def put_chunk(n: int = n, piece: bytes = piece) -> Any:
                return self._client.put_item(
                    TableName=self.table,
                    Item={"job_id": {"S": f"{head_key}#{write}#{n}"}, "data": {"B": piece}},
                )

            self._call(f"writing the object list of job {job_id}", put_chunk)

        def put_head() -> Any:
            return self._client.put_item(
                TableName=self.table,
                Item={
                    "job_id": {"S": head_key},
                    "count": {"N": str(len(objects))},
                    "chunks": {"N": str(len(pieces))},
                    "write": {"S": write},
                    "sha256": {"S": hashlib.sha256(text).hexdigest()},
                },
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": "job_id"},
            )

        try:
            retry_call(
                put_head,
                what=f"writing the object list of job {job_id}",
                policy=self._retry,
                is_transient=is_transient_aws,
            )
        except botocore.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code != "ConditionalCheckFailedException":
                raise InfrastructureError(
                    f"writing the object list of job {job_id} failed: {err}"
                ) from err
            stored = self.load(job_id)
            if stored is None:  # pragma: no cover (the condition said it exists)
                raise InfrastructureError(f"the object list of job {job_id} vanished") from err
            return stored
        return JobObjects(tuple(objects))
