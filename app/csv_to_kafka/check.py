"""``csv-to-kafka check``: would ``run`` copy this object to its last row?

It reads and parses the whole object exactly as ``run`` does (the same parser, the same record
encoder, the same limit on a record's size) and sends nothing anywhere: no Kafka, no DynamoDB,
no CloudWatch. A bad row stops it with the same message ``run`` would give (line and byte
offset), found before a copy commits half a file. It reads at the parser's speed, faster than a
copy, with one GET.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._parse_process import ParseJob, ReadyBatch, ready_batches, source_object
from .config import Config
from .decompress import Restarts
from .errors import BadInputError
from .sink import max_message_bytes
from .source import S3Object

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

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if self.ok:
            return (
                f"check OK: {self.source}: {self.rows:,} rows of {len(self.columns)} columns "
                f"({self.size:,} bytes, lines 1-{self.last_line:,}); largest record "
                f"{self.largest_record:,} bytes (limit {self.limit:,})"
            )
        return f"check FAILED: {self.source}: {self.rows:,} good rows, then: {self.error}"

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
        }


def check(
    config: Config,
    *,
    s3: S3Object | None = None,
    progress: ProgressListener | None = None,
    on_ready: Callable[[ReadyBatch], None] | None = None,
    on_header: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Parse and encode every row of ``config.source``, telling ``progress`` how far it got.

    ``on_header`` is told where the data rows start (byte, line) and ``on_ready`` each batch
    (``plan`` cuts the object with them).
    """
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
        if on_header is not None:
            on_header(header.data_offset, header.data_line)
        for ready in ready_batches(batches, encoder, restarts):
            if on_ready is not None:
                on_ready(ready)
            report.rows += len(ready.values)
            report.last_line = ready.next_line - 1
            report.largest_record = max(report.largest_record, *map(len, ready.values))
            if progress is not None:
                progress.advanced(report.rows, ready.stored_offset, committed=False)
    except BadInputError as bad:
        report.error = str(bad)
    return report
