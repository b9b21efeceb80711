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

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._parse_process import ParseJob, ready_batches, source_object
from .config import Config
from .decompress import Restarts
from .errors import BadInputError
from .sink import max_message_bytes
from .source import Reject, S3Object

if TYPE_CHECKING:
    from .processor import ProgressListener

logger = logging.getLogger(__name__)

__all__ = ["CheckReport", "check"]


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
    # --errors-tolerance all: every bad row (line, byte_offset, reason, message), in order
    bad_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        bad = "".join(
            f"\nbad row at line {r['line']}, byte {r['byte_offset']} ({r['reason']}): "
            f"{r['message']}"
            for r in self.bad_rows
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
        }


def check(
    config: Config,
    *,
    s3: S3Object | None = None,
    progress: ProgressListener | None = None,
) -> CheckReport:
    """Parse and encode every row of ``config.source``, telling ``progress`` how far it got."""
    s3 = s3 if s3 is not None else source_object(config)
    info = s3.head()
    limit = max_message_bytes(config)
    report = CheckReport(source=info.uri, size=info.size, limit=limit)
    if progress is not None:
        progress.started(config.job_id, 0, 0, info.size)
    try:
        restarts = Restarts()  # a compressed object's progress is in its stored bytes
        header, encoder, batches = ParseJob.whole_object(config, info, limit).rows(s3, restarts)
        report.columns = list(header.names)
        report.last_line = header.data_line - 1
        for ready in ready_batches(batches, encoder, restarts):
            if ready.rejects:
                _bad_rows(report, config, ready.rejects)
            report.rows += len(ready.values)
            report.last_line = ready.next_line - 1
            report.largest_record = max(report.largest_record, 0, *map(len, ready.values))
            if progress is not None:
                progress.advanced(report.rows, ready.stored_offset, committed=False)
    except BadInputError as bad:
        report.error = str(bad)
    return report


def _bad_rows(report: CheckReport, config: Config, rejects: tuple[Reject, ...]) -> None:
    """List ``rejects``; past ``--max-bad-rows``, raise what run would stop with."""
    for reject in rejects:
        if len(report.bad_rows) == config.max_bad_rows:
            raise BadInputError(
                f"more than {config.max_bad_rows} bad rows (--max-bad-rows): run would stop "
                f"here; this one: {reject.reason}: {reject.message}",
                source=report.source,
                line=reject.line,
                byte_offset=reject.offset,
            )
        report.bad_rows.append(
            {
                "line": reject.line,
                "byte_offset": reject.offset,
                "reason": reject.reason,
                "message": reject.message,
            }
        )
