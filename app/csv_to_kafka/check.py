"""``csv-to-kafka check``: would ``run`` copy this object to its last row?

It reads and parses the whole object exactly as ``run`` does (the same parser, the same record
encoder, the same limit on a record's size) and sends nothing anywhere: no Kafka, no DynamoDB,
no CloudWatch. With ``--errors-tolerance all`` it lists every bad row (line, byte offset,
reason) as ``run`` would send them to the dead-letter topic, and fails only past
``--max-bad-rows``. Otherwise a bad row stops it with the same message ``run`` would give
(line and byte offset), found before a copy commits half a file. It reads at the parser's
speed, faster than a copy, with one GET.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._parse_process import ParseJob, ReadyBatch, ready_batches, source_object
from ._retry import RetryPolicy
from .config import Config
from .decompress import Restarts
from .errors import BadInputError, EmptyObjectError
from .objects import bucket_and_key, job_objects
from .sink import max_message_bytes
from .source import ObjectInfo, Reject, S3Object

if TYPE_CHECKING:
    from .processor import ProgressListener

logger = logging.getLogger(__name__)

__all__ = ["CheckReport", "check", "check_objects", "objects_json", "objects_summary"]


@dataclass
class CheckReport:
    source: str
    size: int  # bytes in the object
    limit: int  # the largest record value allowed (-X message.max.bytes)
    columns: list[str] = field(default_factory=list)
    rows: int = 0  # good data rows, up to the bad one if any
    last_line: int = 0  # where the last good row ends
    largest_record: int = 0  # bytes of the largest record value
    error: str | None = None  # the bad input, as run would report it
    # --errors-tolerance all: every bad row (source, line, byte_offset, reason, message), in
    # order
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    empty: bool = False  # of a job's several objects: empty once decoded, run skips it
    bad_rows_before: int = 0  # of the objects before this one in the job (--max-bad-rows)

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        bad = "".join(
            f"\nbad row at line {r['line']}, byte {r['byte_offset']} of {r['source']} "
            f"({r['reason']}): {r['message']}"
            for r in self.bad_rows
        )
        if self.ok and self.empty:
            return (
                f"check OK: {self.source}: empty once decoded ({self.size:,} bytes): no rows, "
                "run skips it"
            )
        if self.ok:
            return (
                f"check OK: {self.source}: {self.rows:,} rows of {len(self.columns)} columns "
                f"({self.size:,} bytes, lines 1-{self.last_line:,}); largest record "
                f"{self.largest_record:,} bytes (limit {self.limit:,})"
                + (f"; {len(self.bad_rows):,} BAD ROWS (dead letters):" if self.bad_rows else "")
                + bad
            )
        return (
            f"check FAILED: {self.source}: {self.rows:,} good rows, then: {self.error}"
            + (f"\n{len(self.bad_rows):,} bad rows before it:" if self.bad_rows else "")
            + bad
        )

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "bytes": self.size,
            "columns": self.columns,
            "rows": self.rows,
            "last_line": self.last_line,
            "largest_record_bytes": self.largest_record,
            "limit_bytes": self.limit,
            "error": self.error,
            "bad_rows": self.bad_rows,
            "empty": self.empty,
        }


def check_objects(config: Config, *, progress: ProgressListener | None = None) -> list[CheckReport]:
    """``check`` of each object of a job over many objects, in the job's order; an object whose
    header differs from the first object's fails as run would fail it."""
    s3 = source_object(config)
    retry = RetryPolicy(total_seconds=config.retry_seconds)
    infos = job_objects(config, s3.client, retry, "check")
    total = sum(info.size for info in infos)
    if progress is not None:
        progress.started(config.job_id, 0, 0, total)
    reports: list[CheckReport] = []
    rows = done = 0
    for info in infos:
        bucket, key = bucket_and_key(info.uri)
        before = sum(len(r.bad_rows) for r in reports)  # --max-bad-rows counts the job's
        report = check(config, s3=s3.sibling(bucket, key), info=info, bad_rows_before=before)
        first = next((r for r in reports if r.columns), None)  # empty objects have none
        if report.ok and report.columns and first is not None and report.columns != first.columns:
            report.error = (
                f"{info.uri}: its header row is {','.join(report.columns)!r}, but the job's "
                f"first object {first.source} has {','.join(first.columns)!r}"
            )
        reports.append(report)
        rows, done = rows + report.rows, done + info.size
        if progress is not None:
            progress.advanced(rows, done, committed=False)
        logger.info("object %d of %d: %s", len(reports), len(infos), report.summary())
    return reports


def objects_summary(reports: list[CheckReport]) -> str:
    """One line per object, then the total."""
    lines = [report.summary() for report in reports]
    failed = sum(1 for report in reports if not report.ok)
    verdict = "OK" if not failed else f"FAILED ({failed} objects)"
    bad = sum(len(r.bad_rows) for r in reports)
    lines.append(
        f"check {verdict}: {len(reports)} objects, {sum(r.rows for r in reports):,} rows, "
        f"{sum(r.size for r in reports):,} bytes"
        + (f", {bad:,} BAD ROWS (dead letters)" if bad else "")
    )
    return "\n".join(lines)


def objects_json(reports: list[CheckReport]) -> dict[str, Any]:
    return {
        "ok": all(report.ok for report in reports),
        "objects": len(reports),
        "rows": sum(report.rows for report in reports),
        "bytes": sum(report.size for report in reports),
        "per_object": [report.to_json_dict() for report in reports],
        # every bad row of the job, in order, each naming its object ("source")
        "bad_rows": [row for report in reports for row in report.bad_rows],
    }


def check(
    config: Config,
    *,
    s3: S3Object | None = None,
    progress: ProgressListener | None = None,
    info: ObjectInfo | None = None,
    on_ready: Callable[[ReadyBatch], None] | None = None,
    on_header: Callable[[int, int], None] | None = None,
    bad_rows_before: int = 0,
) -> CheckReport:
    """Parse and encode every row of ``config.source``, telling ``progress`` how far it got.

    ``on_header`` is told where the data rows start (byte, line) and ``on_ready`` each batch
    (``plan`` cuts the object with them). ``bad_rows_before``: the job's bad rows in the
    objects before this one, which --max-bad-rows counts too.
    """
    s3 = s3 if s3 is not None else source_object(config)
    info = info if info is not None else s3.head()
    limit = max_message_bytes(config)
    report = CheckReport(
        source=info.uri, size=info.size, limit=limit, bad_rows_before=bad_rows_before
    )
    if progress is not None:
        progress.started(config.job_id, 0, 0, info.size)
    try:
        restarts = Restarts()  # a compressed object's progress is in its stored bytes
        job = dataclasses.replace(
            ParseJob.whole_object(config, info, limit), bucket=s3.bucket, key=s3.key
        )
        header, encoder, batches = job.rows(s3, restarts)
        report.columns = list(header.names)
        report.last_line = header.data_line - 1
        if on_header is not None:
            on_header(header.data_offset, header.data_line)
        for ready in ready_batches(batches, encoder, restarts):
            if ready.rejects:
                _bad_rows(report, config, ready.rejects)
            if on_ready is not None:
                on_ready(ready)
            report.rows += len(ready.values)
            report.last_line = ready.next_line - 1
            report.largest_record = max(report.largest_record, 0, *map(len, ready.values))
            if progress is not None:
                progress.advanced(report.rows, ready.stored_offset, committed=False)
    except EmptyObjectError as empty:
        if config.multi_object:
            report.empty = True  # run skips it: no rows
        else:
            report.error = str(empty)
    except BadInputError as bad:
        report.error = str(bad)
    return report


def _bad_rows(report: CheckReport, config: Config, rejects: tuple[Reject, ...]) -> None:
    """List ``rejects``; past ``--max-bad-rows``, raise what run would stop with."""
    for reject in rejects:
        if report.bad_rows_before + len(report.bad_rows) == config.max_bad_rows:
            raise BadInputError(
                f"more than {config.max_bad_rows} bad rows (--max-bad-rows): run would stop "
                f"here; this one: {reject.reason}: {reject.message}",
                source=report.source,
                line=reject.line,
                byte_offset=reject.offset,
            )
        report.bad_rows.append(
            {
                "source": report.source,
                "line": reject.line,
                "byte_offset": reject.offset,
                "reason": reject.reason,
                "message": reject.message,
            }
        )
