"""``csv-to-kafka plan``: split one object into N parts at proven row boundaries.

The plan is ``check``'s pass (the same parser, encoder and limits, and the same S3 requests:
one HEAD, one GET; a compressed object is refused by that GET's first bytes) with a cut at the
end of the first batch of rows that reaches each N-th of the object's bytes. A cut is where the
parser stood after a row, so it is the first byte of the next row even when quoted fields hold
newlines: the positions a resumed ``run`` starts from, not a guess at a newline. The plan pins
the object (ETag, VersionId, size) and holds, for each part, its first byte, end byte, first
line and row count (good rows, as run counts them). With ``--errors-tolerance all`` the pass
goes on past bad rows as check's does: a cut is still a batch end, so never inside a bad row;
each part also counts its bad rows, and the plan records the tolerance, so that a ``run
--plan`` without ``--errors-tolerance all`` of a plan with bad rows is refused (exit 2) before
it copies anything.

``run --plan URL --part I`` copies part I into partition I of the topic, with its own
transactional id and checkpoint (``part_job_id``), reading only the bytes [first, end);
``verify --plan`` compares each partition with its part. Compressed objects are refused: a gzip
member or zstd frame cannot be entered in the middle, and one is the common case.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import botocore.exceptions

from ._retry import RetryPolicy, retry_call
from .check import CheckReport, check
from .checkpoint import Checkpoint, CheckpointStore, Status
from .config import Config, parse_source_uri
from .decompress import AUTO, MAGIC_BYTES, NO_COMPRESSION, detect
from .errors import BadInputError, ConfigError, InfrastructureError, ObjectChangedError
from .source import ObjectInfo, S3Object, _s3_client

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ._parse_process import ReadyBatch
    from .processor import ProgressListener

logger = logging.getLogger(__name__)

__all__ = [
    "ARRAY_INDEX_ENV",
    "Part",
    "Plan",
    "load_plan",
    "make_plan",
    "part_config",
    "part_index",
    "part_job_id",
    "status_of_parts",
    "write_plan",
]

ARRAY_INDEX_ENV = "AWS_BATCH_JOB_ARRAY_INDEX"  # set by AWS Batch in each array child
PLAN_FORMAT = 1
MAX_PARTS = 10_000  # AWS Batch's largest array


def part_job_id(job_id: str, index: int) -> str:
    """The job id of part ``index`` of job ``job_id``: its checkpoint key and, through
    Config.transactional_id, its transactional id (csv-to-kafka-J.part-I)."""
    return f"{job_id}.part-{index}"


@dataclass(frozen=True)
class Part:
    index: int
    first_byte: int  # the first byte of the part's first row
    end_byte: int  # the byte after its last row: the next part's first_byte
    first_line: int  # the line where its first row starts (the header is line 1)
    rows: int  # its good rows: the records run sends to partition I (its total_sent)
    bad_rows: int = 0  # its bad rows (--errors-tolerance all): run's dead letters of the part


@dataclass(frozen=True)
class Plan:
    source: str
    etag: str
    version_id: str | None
    size: int
    columns: list[str]
    parts: list[Part] = field(default_factory=list)
    format: int = PLAN_FORMAT
    # "all": the pass went on past bad rows (plan --errors-tolerance all), counted per part;
    # a plan without it (older plans too) has none: the pass stopped at the first one.
    errors_tolerance: str = "none"

    @property
    def rows(self) -> int:
        return sum(part.rows for part in self.parts)

    @property
    def bad_rows(self) -> int:
        return sum(part.bad_rows for part in self.parts)

    def part(self, index: int) -> Part:
        if not 0 <= index < len(self.parts):
            raise ConfigError(
                f"--part {index} is out of range: the plan of {self.source} has "
                f"{len(self.parts)} parts, 0 to {len(self.parts) - 1}"
            )
        return self.parts[index]

    def check_object(self, info: ObjectInfo) -> None:
        """ObjectChangedError (exit 3) unless ``info`` is the version the plan was made of."""
        if info.etag != self.etag or (info.version_id or None) != (self.version_id or None):
            raise ObjectChangedError(
                f"the plan was made of ETag {self.etag}, but the object is now ETag {info.etag}: "
                "its byte ranges do not fit the new version. Make a new plan (and use a new "
                "--job-id)",
                source=self.source,
            )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Plan:
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("format") != PLAN_FORMAT:
                raise ConfigError(f"{where} is not a csv-to-kafka plan of format {PLAN_FORMAT}")
            data["parts"] = [Part(**part) for part in data["parts"]]
            plan = cls(**data)
        except (ValueError, TypeError, KeyError) as err:
            raise ConfigError(f"{where} is not a csv-to-kafka plan: {err}") from err
        for i, part in enumerate(plan.parts):
            if part.index != i:
                raise ConfigError(f"{where}: part {i} has index {part.index}")
        return plan


class _Cutter:
    """Told each batch of check's pass; cuts a part at the first batch end past each target."""

    def __init__(self, first_byte: int, first_line: int, size: int, parts: int) -> None:
        self.parts = parts
        self.size = size
        self.first_byte = first_byte
        self.first_line = first_line
        self.cuts: list[tuple[int, int, int, int]] = []  # (byte, line, rows, bad rows before)
        self.rows = 0
        self.bad_rows = 0

    def start(self, data_offset: int, data_line: int) -> None:
        self.first_byte, self.first_line = data_offset, data_line

    def target(self) -> int:
        span = self.size - self.first_byte
        return self.first_byte + span * (len(self.cuts) + 1) // self.parts

    def __call__(self, ready: ReadyBatch) -> None:
        # A batch ends after its last row, good or bad (a bad row's bytes, up to its line
        # terminator, are in the batch of the good rows around it): a cut at a batch end is
        # the first byte of a row, never inside a bad row.
        self.rows += len(ready.values)
        self.bad_rows += len(ready.rejects)
        while len(self.cuts) < self.parts - 1 and ready.next_offset >= self.target():
            self.cuts.append((ready.next_offset, ready.next_line, self.rows, self.bad_rows))

    def plan(self, info: ObjectInfo, columns: list[str], last_line: int) -> list[Part]:
        cuts = list(self.cuts)
        end = (info.size, last_line + 1, self.rows, self.bad_rows)
        while len(cuts) < self.parts - 1:  # fewer batches than parts: empty parts at the end
            cuts.append(end)
        starts = [(self.first_byte, self.first_line, 0, 0), *cuts]
        ends = [*cuts, end]
        return [
            Part(i, start[0], stop[0], start[1], stop[2] - start[2], stop[3] - start[3])
            for i, (start, stop) in enumerate(zip(starts, ends, strict=True))
        ]


def make_plan(
    config: Config,
    parts: int,
    *,
    s3: S3Object | None = None,
    progress: ProgressListener | None = None,
) -> tuple[Plan, CheckReport]:
    """Read ``config.source`` once with check's pass and cut it into ``parts`` parts.

    A bad row raises check's BadInputError message (exit 3); with ``--errors-tolerance all``
    the pass goes on past bad rows as check's does (counted per part; past --max-bad-rows, or
    at an error that loses the parser's place, the same BadInputError). A compressed object
    is a ConfigError.
    """
    if not 1 <= parts <= MAX_PARTS:
        raise ConfigError(f"--parts must be 1 to {MAX_PARTS}, got {parts}")
    s3 = (
        s3
        if s3 is not None
        else S3Object(
            config.source.bucket,
            config.source.key,
            retry=RetryPolicy(total_seconds=config.retry_seconds),
        )
    )
    info = s3.head()
    _refuse_compressed(config, info)
    cutter = _Cutter(0, 2, info.size, parts)
    # check's pass exactly: the HEAD above is its HEAD, and its one GET is also where a
    # compressed object is found (by its first bytes) and refused.
    reader = cast("S3Object", _PlainOnly(s3, config)) if config.input_compression == AUTO else s3
    report = check(
        config, s3=reader, info=info, progress=progress, on_ready=cutter, on_header=cutter.start
    )
    if report.error is not None:
        raise BadInputError(f"plan stopped: {report.error}")
    plan = Plan(
        source=info.uri,
        etag=info.etag,
        version_id=info.version_id,
        size=info.size,
        columns=report.columns,
        parts=cutter.plan(info, report.columns, report.last_line),
        errors_tolerance=config.errors_tolerance,
    )
    return plan, report


def _refuse_compressed(config: Config, info: ObjectInfo, codec: str | None = None) -> None:
    """ConfigError for a compressed object: ``codec`` as detected, else the option's."""
    codec = codec if codec is not None else config.input_compression
    if codec not in (AUTO, NO_COMPRESSION):
        raise ConfigError(
            f"{info.uri} is {codec}-compressed: a plan splits only plain objects (a gzip member "
            "or zstd frame cannot be entered in the middle). Copy it with run, without a plan, "
            "or store it uncompressed"
        )


class _PlainOnly:
    """``s3``, whose reads from the first byte refuse a compressed object (ConfigError) by its
    first bytes, in check's own GET rather than one of their own."""

    def __init__(self, s3: S3Object, config: Config) -> None:
        self._s3 = s3
        self._config = config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def chunks(self, pinned: ObjectInfo, start: int = 0, end: int = -1) -> Iterator[bytes]:
        chunks = self._s3.chunks(pinned, start, end)
        if start != 0:
            yield from chunks
            return
        head = b""
        for chunk in chunks:
            if len(head) < MAGIC_BYTES:
                head += chunk[:MAGIC_BYTES]
                if len(head) >= MAGIC_BYTES:
                    _refuse_compressed(self._config, pinned, detect(head))
            yield chunk
        _refuse_compressed(self._config, pinned, detect(head))  # a tiny object


def _s3_url(url: str) -> tuple[str, str] | None:
    if not url.startswith("s3://"):
        return None
    uri = parse_source_uri(url)
    return uri.bucket, uri.key


def write_plan(plan: Plan, output: str, retry: RetryPolicy) -> None:
    """To ``output``: s3://BUCKET/KEY, ``-`` (stdout) or a local file."""
    text = plan.to_json()
    if output == "-":
        sys.stdout.write(text)
        return
    target = _s3_url(output)
    if target is None:
        Path(output).write_text(text)
        return
    client = _s3_client()
    try:
        retry_call(
            lambda: client.put_object(
                Bucket=target[0],
                Key=target[1],
                Body=text.encode(),
                ContentType="application/json",
            ),
            what=f"PUT {output}",
            policy=retry,
        )
    except botocore.exceptions.ClientError as err:
        raise InfrastructureError(f"writing the plan to {output} failed: {err}") from err


def load_plan(url: str, retry: RetryPolicy) -> Plan:
    """The plan at ``url`` (s3://BUCKET/KEY or a local file); a ConfigError if absent."""
    target = _s3_url(url)
    if target is None:
        try:
            return Plan.from_json(Path(url).read_text(), url)
        except OSError as err:
            raise ConfigError(f"cannot read the plan {url}: {err}") from err
    client = _s3_client()

    def get() -> bytes:
        return client.get_object(Bucket=target[0], Key=target[1])["Body"].read()

    try:
        body = retry_call(
            get,
            what=f"GET {url}",
            policy=retry,
        )
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in {"404", "NoSuchKey", "NoSuchBucket", "403", "AccessDenied"}:
            raise ConfigError(f"cannot read the plan {url}: {code}") from err
        raise InfrastructureError(f"reading the plan {url} failed: {err}") from err
    return Plan.from_json(body.decode("utf-8", "replace"), url)


def part_index(config: Config, environ: dict[str, str] | None = None) -> int:
    """--part, else AWS Batch's array index; a ConfigError when neither is there."""
    if config.part is not None:
        return config.part
    raw = (os.environ if environ is None else environ).get(ARRAY_INDEX_ENV, "")
    if not raw:
        raise ConfigError(f"--plan needs --part (or CSV_TO_KAFKA_PART, or {ARRAY_INDEX_ENV})")
    try:
        return int(raw)
    except ValueError as err:
        raise ConfigError(f"{ARRAY_INDEX_ENV} must be a number, got {raw!r}") from err


def part_config(config: Config, plan: Plan, index: int) -> Config:
    """``config`` for part ``index`` of ``plan``: its job id, its partition, the plan's source."""
    part = plan.part(index)  # out of range: exit 2
    if str(config.source) != plan.source:
        raise ConfigError(f"--source {config.source} is not the plan's object {plan.source}")
    if plan.bad_rows and config.errors_tolerance != "all":
        # Refused for every part, also one without bad rows: a job's parts share one setting,
        # and a part with bad rows would otherwise stop at its first (exit 3) mid-copy.
        raise ConfigError(
            f"the plan of {plan.source} was made with --errors-tolerance all and counts "
            f"{plan.bad_rows} bad rows ({part.bad_rows} in part {index}): run --plan needs "
            "--errors-tolerance all, with --dlq-topic (or --skip-bad-rows), else a part stops "
            "at its first bad row (exit 3)"
        )
    return dataclasses.replace(
        config,
        job_id=part_job_id(config.job_id, index),
        part=index,
        partition=index,
        plan_partitions=len(plan.parts),
    )


def status_of_parts(
    store: CheckpointStore, job_id: str, plan_url: str | None, *, as_json: bool
) -> str | None:
    """``status`` of a planned job: each part's checkpoint (its byte_offset and total_bytes
    count within the part's range) and the total; None when no part has a checkpoint.

    Without the plan the parts are found by their job ids, up to the first one missing."""
    plan = load_plan(plan_url, RetryPolicy(total_seconds=30)) if plan_url else None
    found: list[tuple[int, Checkpoint | None]] = []
    index = 0
    while plan is None or index < len(plan.parts):
        checkpoint = store.load(part_job_id(job_id, index))
        if checkpoint is None and plan is None:
            break
        found.append((index, checkpoint))
        index += 1
    if all(checkpoint is None for _index, checkpoint in found):
        return None
    parts = []
    for index, checkpoint in found:
        span = plan.parts[index].end_byte - plan.parts[index].first_byte if plan else 0
        if checkpoint is None:
            parts.append(
                {
                    "part": index,
                    "status": "NOT STARTED",
                    "rows": 0,
                    "percent_done": 0.0,
                    "bytes_done": 0,
                    "bytes": span,
                    "error": None,
                }
            )
            continue
        parts.append(
            {
                "part": index,
                "status": checkpoint.status.value,
                "rows": checkpoint.total_sent,
                "percent_done": round(checkpoint.percent_done, 2),
                "bytes_done": (
                    checkpoint.total_bytes
                    if checkpoint.status is Status.COMPLETED
                    else checkpoint.byte_offset
                ),
                "bytes": checkpoint.total_bytes,
                "error": checkpoint.error,
            }
        )
    total_bytes = sum(int(str(p["bytes"])) for p in parts)
    done_bytes = sum(int(str(p["bytes_done"])) for p in parts)
    total: dict[str, Any] = {
        "parts": len(parts),
        "completed": sum(1 for p in parts if p["status"] == Status.COMPLETED.value),
        "rows": sum(int(str(p["rows"])) for p in parts),
        "percent_done": round(done_bytes / total_bytes * 100, 2) if total_bytes else 100.0,
    }
    if plan is not None:
        total["rows_planned"] = plan.rows
        if plan.bad_rows:
            total["bad_rows_planned"] = plan.bad_rows
    if as_json:
        return json.dumps({"job_id": job_id, "parts": parts, "total": total}, indent=2)
    lines = [
        f"job {job_id}: {total['completed']} of {total['parts']} parts done, "
        f"{total['rows']:,} rows, {total['percent_done']:.1f}% done"
        + ("" if plan is not None else " (parts found by job id; pass --plan to list all)")
    ]
    for p in parts:
        lines.append(
            f"  part {p['part']}: {p['status']}, {p['rows']:,} rows, {p['percent_done']:.1f}%"
            + (f" (last error: {p['error']})" if p["error"] else "")
        )
    return "\n".join(lines)
