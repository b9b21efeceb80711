"""``csv-to-kafka verify``: does the topic hold exactly the CSV's rows, in order, once each?

Independent of any checkpoint: it parses the whole object and reads the whole partition with
read_committed, and compares them in one pass. One byte per line of the file is kept (100 MB
for 100M lines), to count what is missing or repeated once the two have parted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

from ._parse_process import ParseJob, source_object
from .config import Config
from .plan import Plan
from .sink import Sink, open_sink
from .source import S3Object

logger = logging.getLogger(__name__)

__all__ = ["VerifyReport", "verify", "verify_plan"]


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


def _expected_batches(
    config: Config, s3: S3Object, max_bytes: int, job: ParseJob | None = None
) -> Iterator[tuple[list[int], list[bytes]]]:
    """The object's rows (or ``job``'s) as ``run`` writes them, a batch at a time: (lines,
    record values).

    The same parser and encoder as ``run`` (the C loop where it applies), so a record that was
    copied right is byte for byte its row's value.
    """
    job = job if job is not None else ParseJob.whole_object(config, s3.head(), max_bytes)
    _header, encoder, batches = job.rows(s3)
    for batch in batches:
        values = batch.values
        if values is None:
            values = encoder.encode_rows(batch.rows, batch.lines)
        yield batch.lines, values


_EXPECTED, _SEEN, _BOTH = 1, 2, 3


class _Lines:
    """A growable byte per line number: 0, or whether a row starting there is expected and seen."""

    def __init__(self) -> None:
        self.marks = bytearray()

    def reserve(self, line: int) -> None:
        if line >= len(self.marks):
            self.marks.extend(bytes(max(line + 1 - len(self.marks), len(self.marks))))

    def add(self, line: int, flag: int) -> int:
        """Set ``flag`` on ``line``; returns the marks it had before."""
        self.reserve(line)
        before = self.marks[line]
        self.marks[line] = before | flag
        return before


class _Comparison:
    """The records, one at a time, against the rows, in one pass; the counts in ``report``.

    While the two sequences are in step, each record is compared with the next row: equal
    bytes (a record ``run`` wrote for that row) settle it at once; otherwise both are decoded,
    and the same content in other JSON spelling still matches. Once a record is not the next
    row, the sequences have parted: each record is then only placed by its line number, and
    what is missing or repeated is counted from the marks.
    """

    def __init__(self, batches: Iterator[tuple[list[int], list[bytes]]], source: str) -> None:
        self.report = VerifyReport()
        self._batches = batches
        self._source = source
        self._lines = _Lines()
        self._want_lines: list[int] = []
        self._want_values: list[bytes] = []
        self._next = 0  # index of the next row in the current batch
        self._in_step = True
        self._max_line = 0

    def _next_row(self) -> tuple[int, bytes] | None:
        while self._next == len(self._want_values):
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._want_lines, self._want_values = batch
            self._next = 0
        i = self._next
        if i == 0:
            self._lines.reserve(self._want_lines[-1])
        self._next = i + 1
        self.report.rows_in_csv += 1
        return self._want_lines[i], self._want_values[i]

    def record(self, offset: int, value: bytes | None) -> None:
        report = self.report
        report.records_in_topic += 1
        want = self._next_row() if self._in_step else None
        if want is not None and value == want[1]:
            # The common case, settled at once: the record is the next row's, so it is its
            # line's first, and after every line seen so far.
            self._lines.marks[want[0]] = _BOTH
            self._max_line = want[0]
            return
        line, record = _decode(value, self._source)
        if want is None:
            self._in_step = False  # the rows ran out (or had already parted from the records)
        else:
            want_line, want_value = want
            self._lines.add(want_line, _EXPECTED)
            if record is not None and line == want_line:
                if record != orjson.loads(want_value):
                    report.content_mismatch += 1
                    self._first(
                        f"row {report.rows_in_csv} (line {line}) differs in "
                        f"content at Kafka offset {offset}"
                    )
            else:
                self._in_step = False
                if record is not None:
                    self._first(
                        f"row {report.rows_in_csv} (line {want_line}) was "
                        f"expected at Kafka offset {offset}, which holds line {line}"
                    )
        if record is None:
            report.foreign += 1
            self._first(f"the record at Kafka offset {offset} is not a row of {self._source}")
            return
        self._seen(offset, line)

    def _seen(self, offset: int, line: int) -> None:
        report = self.report
        if self._lines.add(line, _SEEN) & _SEEN:
            report.duplicated += 1
            self._first(f"line {line} is in the topic twice (again at Kafka offset {offset})")
        elif line < self._max_line:
            report.out_of_order += 1
            self._first(f"line {line} at Kafka offset {offset} comes after line {self._max_line}")
        self._max_line = max(self._max_line, line)

    def finish(self) -> VerifyReport:
        """After the last record: the rows no record was compared with, and the totals."""
        report, lines = self.report, self._lines
        while (want := self._next_row()) is not None:
            lines.add(want[0], _EXPECTED)
        report.missing = lines.marks.count(_EXPECTED)
        report.foreign += lines.marks.count(_SEEN)
        if report.missing:
            self._first(f"line {lines.marks.index(_EXPECTED)} of the CSV is not in the topic")
        if report.foreign:
            self._first("the topic holds records that are not rows of the CSV")
        if report.rows_in_csv != report.records_in_topic:
            self._first(
                f"the CSV has {report.rows_in_csv} rows, the topic {report.records_in_topic} "
                "records"
            )
        return report

    def _first(self, difference: str) -> None:
        if self.report.first_difference is None:
            self.report.first_difference = difference


def verify(config: Config, *, sink: Sink | None = None, s3: S3Object | None = None) -> VerifyReport:
    """Compare the object's rows with the partition's committed records."""
    sink = sink if sink is not None else open_sink(config)
    s3 = s3 if s3 is not None else source_object(config)
    # No limit on a row's size: verify compares what is there, whatever the broker accepts.
    comparison = _Comparison(_expected_batches(config, s3, 1 << 30), str(config.source))
    try:
        for offset, value, _headers in sink.committed_records():
            comparison.record(offset, value)
        return comparison.finish()
    finally:
        sink.close()


def _decode(value: bytes | None, source: str) -> tuple[int, dict[str, object] | None]:
    try:
        record = orjson.loads(value or b"")
        if record.get("_source_file") != source:
            return -1, None
        return int(record["_source_line"]), record
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return -1, None


def verify_plan(
    config: Config,
    plan: Plan,
    *,
    sink_factory: Callable[[Config], Sink] = open_sink,
    s3: S3Object | None = None,
) -> list[VerifyReport]:
    """Compare each part of ``plan`` with its partition: partition I holds exactly part I's
    rows, in order, once each. One report per part; ObjectChangedError (exit 3) when the
    object is no longer the planned version."""
    s3 = s3 if s3 is not None else source_object(config)
    info = s3.head()
    plan.check_object(info)
    reports = []
    for part in plan.parts:
        job = dataclasses.replace(
            ParseJob.whole_object(config, info, 1 << 30),
            start_offset=part.first_byte,
            start_line=part.first_line,
            end_offset=part.end_byte,
        )
        part_config = dataclasses.replace(config, partition=part.index, partitions=len(plan.parts))
        comparison = _Comparison(_expected_batches(config, s3, 1 << 30, job), plan.source)
        sink = sink_factory(part_config)
        try:
            for offset, value, _headers in sink.committed_records():
                comparison.record(offset, value)
        finally:
            sink.close()
        reports.append(comparison.finish())
    return reports
