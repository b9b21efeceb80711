"""``csv-to-kafka verify``: does the topic hold exactly the CSV's rows, in order, once each?

Independent of any checkpoint: it parses the whole object and reads the whole partition with
read_committed, and compares them in one pass. Memory stays small when they match; when they do
not, one byte per line of the file is kept to count what is missing or repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ._retry import RetryPolicy
from .config import Config
from .record import RecordEncoder
from .sink import Sink, open_sink
from .source import S3Object, parse_rows, read_ahead, split_header

logger = logging.getLogger(__name__)

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    rows_in_csv: int = 0
    records_in_topic: int = 0
    missing: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    content_mismatch: int = 0
    foreign: int = 0  # records that are not rows of this object
    first_difference: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_difference is None

    def summary(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        return (
            f"verify {verdict}: rows in CSV {self.rows_in_csv}, records in topic "
            f"{self.records_in_topic}, missing {self.missing}, duplicated {self.duplicated}, "
            f"out of order {self.out_of_order}, content differs {self.content_mismatch}, "
            f"not from this file {self.foreign}"
        )


def _expected_rows(
    config: Config, s3: S3Object, max_bytes: int
) -> Iterator[tuple[int, dict[str, object]]]:
    info = s3.head()
    dialect: dict[str, Any] = {
        "source": str(config.source),
        "delimiter": config.delimiter,
        "quotechar": config.quotechar,
        "encoding": config.encoding,
        "max_row_bytes": max_bytes,
    }
    header, chunks = split_header(read_ahead(s3.chunks(info, 0)), **dialect)
    encoder = RecordEncoder(header.names, str(config.source), max_bytes)
    for batch in parse_rows(
        chunks,
        start_offset=header.data_offset,
        start_line=header.data_line,
        expected_fields=len(header.names),
        **dialect,
    ):
        for row, line in zip(batch.rows, batch.lines, strict=True):
            yield line, encoder.expected(row, line)


_EXPECTED, _SEEN, _BOTH = 1, 2, 3


class _Lines:
    """A growable byte per line number: 0, or whether a row starting there is expected and seen."""

    def __init__(self) -> None:
        self.marks = bytearray()

    def get(self, line: int) -> int:
        return self.marks[line] if 0 <= line < len(self.marks) else 0

    def add(self, line: int, flag: int) -> int:
        """Set ``flag`` on ``line``; returns the marks it had before."""
        if line >= len(self.marks):
            self.marks.extend(bytes(max(line + 1 - len(self.marks), len(self.marks))))
        before = self.marks[line]
        self.marks[line] = before | flag
        return before


def verify(  # noqa: PLR0912, PLR0915 (one pass over both sequences, every case counted in it)
    config: Config, *, sink: Sink | None = None, s3: S3Object | None = None
) -> VerifyReport:
    """Compare the object's rows with the partition's committed records."""
    sink = sink if sink is not None else open_sink(config)
    s3 = (
        s3
        if s3 is not None
        else S3Object(
            config.source.bucket,
            config.source.key,
            retry=RetryPolicy(total_seconds=config.retry_seconds),
        )
    )
    report = VerifyReport()
    source = str(config.source)
    expected = _expected_rows(config, s3, 1 << 30)
    lines = _Lines()
    in_step = True  # until the two sequences part, each record is compared with its row
    max_line = 0
    try:
        for offset, value, _headers in sink.committed_records():
            report.records_in_topic += 1
            line, record = _decode(value, source)
            if record is None:
                report.foreign += 1
                _first(report, f"the record at Kafka offset {offset} is not a row of {source}")
                in_step = False
                continue
            if in_step:
                want = next(expected, None)
                if want is None:
                    in_step = False
                else:
                    report.rows_in_csv += 1
                    want_line, want_record = want
                    lines.add(want_line, _EXPECTED)
                    if want_line == line and want_record != record:
                        report.content_mismatch += 1
                        _first(
                            report,
                            f"row {report.rows_in_csv} (line {line}) differs in "
                            f"content at Kafka offset {offset}",
                        )
                    elif want_line != line:
                        in_step = False
                        _first(
                            report,
                            f"row {report.rows_in_csv} (line {want_line}) was "
                            f"expected at Kafka offset {offset}, which holds line {line}",
                        )
            if lines.add(line, _SEEN) & _SEEN:
                report.duplicated += 1
                _first(
                    report, f"line {line} is in the topic twice (again at Kafka offset {offset})"
                )
            elif line < max_line:
                report.out_of_order += 1
                _first(report, f"line {line} at Kafka offset {offset} comes after line {max_line}")
            max_line = max(max_line, line)
        for want_line, _record in expected:
            report.rows_in_csv += 1
            lines.add(want_line, _EXPECTED)
    finally:
        sink.close()
    report.missing = lines.marks.count(_EXPECTED)
    report.foreign += lines.marks.count(_SEEN)
    if report.missing:
        _first(report, f"line {lines.marks.index(_EXPECTED)} of the CSV is not in the topic")
    if report.foreign:
        _first(report, "the topic holds records that are not rows of the CSV")
    if report.rows_in_csv != report.records_in_topic:
        _first(
            report,
            f"the CSV has {report.rows_in_csv} rows, the topic {report.records_in_topic} records",
        )
    return report


def _decode(value: bytes | None, source: str) -> tuple[int, dict[str, object] | None]:
    try:
        record = orjson.loads(value or b"")
        if record.get("_source_file") != source:
            return -1, None
        return int(record["_source_line"]), record
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return -1, None


def _first(report: VerifyReport, difference: str) -> None:
    if report.first_difference is None:
        report.first_difference = difference
