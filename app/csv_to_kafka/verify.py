"""``csv-to-kafka verify``: does the topic hold exactly the CSV's rows, in order, once each?

Independent of any checkpoint: it parses the whole object and reads the whole partition with
read_committed, and compares them in one pass. One byte per line of the file is kept (100 MB
for 100M lines), to count what is missing or repeated once the two have parted.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

import orjson

from ._parse_process import ParseJob, set_aside, source_object
from ._retry import RetryPolicy
from .config import Config
from .deadletter import LINE, SOURCE_FILE
from .errors import EmptyObjectError
from .keys import Keyer
from .objects import bucket_and_key, job_objects
from .plan import Plan
from .sink import Sink, max_message_bytes, open_sink
from .source import Header, ObjectInfo, Reject, S3Object

logger = logging.getLogger(__name__)

__all__ = ["VerifyReport", "verify", "verify_objects", "verify_plan"]

_KEY_CHUNK = 2000  # records whose keys are checked at once (Keyer.keys)
_Item = TypeVar("_Item")


@dataclass
class VerifyReport:
    rows_in_csv: int = 0
    records_in_topic: int = 0
    missing: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    content_mismatch: int = 0
    foreign: int = 0  # records that are not rows of this object
    misplaced: int = 0  # with --key-column: a record with another key or in another partition
    first_difference: str | None = None
    # --dlq-topic: the object's bad rows, and the dead letters of this object in that topic
    dlq_topic: str | None = None
    bad_rows_in_csv: int = 0
    dead_letters: int = 0
    # A job over many objects: each object and whether its rows matched (in the job's order).
    objects: list[tuple[str, bool]] = field(default_factory=list)

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
            + (f", wrong key or partition {self.misplaced}" if self.misplaced else "")
            + (
                f"; bad rows in CSV {self.bad_rows_in_csv}, dead letters in {self.dlq_topic} "
                f"{self.dead_letters}"
                if self.dlq_topic
                else ""
            )
        )


def _expected_batches(
    config: Config,
    s3: S3Object,
    max_bytes: int,
    *,
    header: list[Header] | None = None,
    rejects: list[Reject] | None = None,
    info: ObjectInfo | None = None,
    job: ParseJob | None = None,
) -> Iterator[tuple[list[int], list[bytes]]]:
    """The object's rows (or ``job``'s) as ``run`` writes them, a batch at a time: (lines,
    record values).

    The same parser and encoder as ``run`` (the C loop where it applies), so a record that was
    copied right is byte for byte its row's value. ``header``, if given, receives the header.
    ``rejects`` (--dlq-topic) receives the bad rows; then a record larger than run's limit
    (``message.max.bytes``, -X as run's) is one of them, as run made it a dead letter.
    """
    if rejects is not None:
        max_bytes = max_message_bytes(config)  # run's limit: its too-large rows are dead letters
    if job is None:
        job = ParseJob.whole_object(config, info if info is not None else s3.head(), max_bytes)
        job = dataclasses.replace(job, bucket=s3.bucket, key=s3.key)
    elif rejects is not None:
        job = dataclasses.replace(job, max_bytes=max_bytes)
    found, encoder, batches = job.rows(s3)
    if header is not None:
        header.append(found)
    for batch in batches:
        values = batch.values
        if values is None:
            values = encoder.encode_rows(batch.rows, batch.lines)
        lines = batch.lines
        if rejects is not None:  # (with --dlq-topic: the bad rows, for the dead letters)
            batch_rejects = batch.rejects
            if batch.keeps_text and max(map(len, values), default=0) > max_bytes:
                lines = [line for line, v in zip(lines, values, strict=True) if len(v) <= max_bytes]
                values, batch_rejects = set_aside(batch, values, encoder)
            rejects += batch_rejects
        yield lines, values


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

    def is_next(self, value: bytes | None) -> bool:
        """Whether ``value`` is byte for byte the next row's record (nothing consumed)."""
        if not self._in_step:
            return False
        while self._next == len(self._want_values):
            batch = next(self._batches, None)
            if batch is None:
                self._want_lines, self._want_values, self._next = [], [], 0
                self._batches = iter(())
                return False
            self._want_lines, self._want_values = batch
            self._next = 0
            self._lines.reserve(self._want_lines[-1])
        return self._want_values[self._next] == value

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
    s3 = s3 if s3 is not None else source_object(config)
    if config.key_columns:
        # verify never creates the topic: a missing one is exit 2.
        sink = sink if sink is not None else open_sink(replace(config, create_topic=False))
        return _verify_keyed(config, sink, s3)
    sink = sink if sink is not None else open_sink(config)
    # No limit on a row's size: verify compares what is there, whatever the broker accepts.
    rejects: list[Reject] = []
    comparison = _Comparison(
        _expected_batches(config, s3, 1 << 30, rejects=rejects), str(config.source)
    )
    try:
        for offset, value, _headers in sink.committed_records():
            comparison.record(offset, value)
        report = comparison.finish()
    finally:
        sink.close()
    if config.dlq_topic:
        _compare_dead_letters(
            report, config, config.dlq_topic, [(str(config.source), r) for r in rejects]
        )
    return report


def _compare_dead_letters(
    report: VerifyReport,
    config: Config,
    topic: str,
    rejects: list[tuple[str, Reject]],
    lines: range | None = None,
) -> None:
    """The dead-letter ``topic``'s records of the job's objects against their bad rows
    (``rejects``: each object's, s3://… and the Reject, in the job's order), in order.
    ``lines``: only the dead letters of rows starting there (a planned part's, whose dead
    letters share the topic's partition 0 with the other parts')."""
    view = dataclasses.replace(
        config, topic=topic, dlq_topic=None, errors_tolerance="none", key_columns=()
    )
    dlq = open_sink(view)
    sources = {uri.encode() for uri, _reject in rejects} | {str(config.source).encode()}
    several = len(sources) > 1
    report.dlq_topic = topic
    report.bad_rows_in_csv = len(rejects)
    got: list[tuple[str, int, bytes]] = []
    try:
        for _offset, value, headers in dlq.committed_records():
            found = dict(headers)
            source = found.get(SOURCE_FILE)
            line = int(found.get(LINE) or b"-1")
            if source in sources and (lines is None or line in lines):
                got.append((source.decode(), line, value or b""))
    finally:
        dlq.close()
    report.dead_letters = len(got)
    want = [(uri, r.line, r.raw) for uri, r in rejects]
    if got == want:
        return

    def where(uri: str, line: int) -> str:
        return f"{uri} line {line}" if several else f"line {line}"

    for index, (have, should) in enumerate(zip(got, want, strict=False)):
        if have != should:
            difference = (
                f"dead letter {index + 1} in {topic} is {where(*have[:2])}, expected "
                f"{where(*should[:2])}"
                if have[:2] != should[:2]
                else f"dead letter {index + 1} ({where(*have[:2])}) differs from the row's bytes"
            )
            break
    else:
        difference = (
            f"{topic} holds {len(got)} dead letters of "
            f"{'the objects' if several else 'this object'}, the CSV has {len(want)} bad rows"
        )
    if report.first_difference is None:
        report.first_difference = difference


def _verify_keyed(config: Config, sink: Sink, s3: S3Object) -> VerifyReport:
    """With --key-column: every partition read, each record's key and partition checked against
    what ``run`` gives its value, and the partitions merged by line (each holds its rows in file
    order, so the merge is the file's order when the copy is right) into the one-pass
    comparison, which counts what is missing, repeated or out of order."""
    source = str(config.source)
    header: list[Header] = []
    rejects: list[Reject] | None = [] if config.dlq_topic else None
    comparison = _Comparison(
        _expected_batches(config, s3, 1 << 30, header=header, rejects=rejects), source
    )
    try:
        sink.ensure_topic()  # the partition count (a missing topic: exit 2, never created)
        partitions = sink.partitions

        def placed(partition: int) -> Iterator[tuple[int, int, int, bytes | None, bytes]]:
            for offset, key, value in sink.keyed_records(partition):
                line, _record = _decode(value, source)
                yield line, partition, offset, key, value

        keyer: Keyer | None = None
        for chunk in _chunks(heapq.merge(*(placed(p) for p in range(partitions))), _KEY_CHUNK):
            recorded = 0
            if keyer is None:  # the header is known once the first row has been read
                comparison.record(chunk[0][2], chunk[0][4])
                recorded = 1
                keyer = ParseJob.keyer_for(config, header[0], partitions, source)
            # run's own path (Keyer.keys, in C); None: not a record of this object (foreign)
            wants, want_partitions = keyer.keys([item[4] for item in chunk], strict=False)
            for index, (_line, partition, offset, key, value) in enumerate(chunk):
                if index >= recorded:
                    comparison.record(offset, value)
                want = wants[index]
                if want is not None and (key != want or want_partitions[index] != partition):
                    comparison.report.misplaced += 1
                    comparison._first(
                        f"the record at offset {offset} of partition {partition} has key "
                        f"{key!r}, not the key and partition run gives its row"
                    )
        report = comparison.finish()
    finally:
        sink.close()
    if config.dlq_topic and rejects is not None:
        _compare_dead_letters(report, config, config.dlq_topic, [(source, r) for r in rejects])
    return report


def _chunks(items: Iterable[_Item], size: int) -> Iterator[list[_Item]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _unless_empty(
    batches: Iterator[tuple[list[int], list[bytes]]],
) -> Iterator[tuple[list[int], list[bytes]]]:
    """An object's rows; none for one that is empty once decoded (run skips it)."""
    try:
        yield from batches
    except EmptyObjectError:
        return


def verify_objects(config: Config, *, sink: Sink | None = None) -> VerifyReport:
    """Compare the rows of a job's objects (listed now) with the partition's records, object by
    object in the job's order: each object's records are compared as ``verify`` compares one
    object's; a record of an earlier object after a later one's is out of order."""
    sink = sink if sink is not None else open_sink(config)
    s3 = source_object(config)
    infos = job_objects(
        config, s3.client, RetryPolicy(total_seconds=config.retry_seconds), "verify"
    )
    index = {info.uri: n for n, info in enumerate(infos)}
    comparisons: dict[int, _Comparison] = {}
    # --dlq-topic: each object's bad rows, filled as its rows are compared
    rejects: dict[int, list[Reject]] = {}

    def comparison(n: int) -> _Comparison:
        if n not in comparisons:
            bucket, key = bucket_and_key(infos[n].uri)
            found = rejects.setdefault(n, []) if config.dlq_topic else None
            batches = _expected_batches(
                config, s3.sibling(bucket, key), 1 << 30, info=infos[n], rejects=found
            )
            comparisons[n] = _Comparison(_unless_empty(batches), infos[n].uri)
        return comparisons[n]

    total = VerifyReport()
    reports: list[tuple[str, VerifyReport]] = []
    current = 0

    def finish_until(end: int) -> None:
        nonlocal current
        while current < end:
            reports.append((infos[current].uri, comparison(current).finish()))
            current += 1

    try:
        for offset, value, _headers in sink.committed_records():
            here = comparison(current) if current < len(infos) else None
            if here is not None and here.is_next(value):
                here.record(offset, value)
                continue
            n = index.get(_source_of(value) or "", -1)
            if n < current and n >= 0:
                total.records_in_topic += 1
                total.out_of_order += 1
                if total.first_difference is None:
                    total.first_difference = (
                        f"the record at Kafka offset {offset} is a row of object {n + 1}, "
                        f"{infos[n].uri}, after rows of object {current + 1}"
                    )
                continue
            if n > current:
                finish_until(n)
            if current < len(infos):
                comparison(current).record(offset, value)
            else:
                total.records_in_topic += 1
                total.foreign += 1
        finish_until(len(infos))
    finally:
        sink.close()
    _add_up(total, reports)
    if config.dlq_topic:
        bad = [(infos[n].uri, r) for n in sorted(rejects) for r in rejects[n]]
        _compare_dead_letters(total, config, config.dlq_topic, bad)
    return total


def _add_up(total: VerifyReport, reports: list[tuple[str, VerifyReport]]) -> None:
    """The objects' reports into ``total``, each logged."""
    for uri, report in reports:
        for name in (
            "rows_in_csv",
            "records_in_topic",
            "missing",
            "duplicated",
            "out_of_order",
            "content_mismatch",
            "foreign",
        ):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        if report.first_difference is not None and total.first_difference is None:
            total.first_difference = f"{uri}: {report.first_difference}"
        logger.info("%s: %s", uri, report.summary())
    total.objects = [(uri, report.ok) for uri, report in reports]


def _source_of(value: bytes | None) -> str | None:
    try:
        record = orjson.loads(value or b"")
        source = record.get("_source_file")
        return source if isinstance(source, str) else None
    except (orjson.JSONDecodeError, AttributeError):
        return None


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
    rows, in order, once each; with --dlq-topic, the dead-letter topic holds exactly part I's
    bad rows (its dead letters of part I's lines), in order, once each. One report per part;
    ObjectChangedError (exit 3) when the object is no longer the planned version."""
    s3 = s3 if s3 is not None else source_object(config)
    info = s3.head()
    plan.check_object(info)
    reports = []
    ends = [part.first_line for part in plan.parts[1:]] + [1 << 62]
    for part, end in zip(plan.parts, ends, strict=True):
        job = dataclasses.replace(
            ParseJob.whole_object(config, info, 1 << 30),
            start_offset=part.first_byte,
            start_line=part.first_line,
            end_offset=part.end_byte,
        )
        part_config = dataclasses.replace(
            config, partition=part.index, plan_partitions=len(plan.parts)
        )
        rejects: list[Reject] | None = [] if config.dlq_topic else None
        comparison = _Comparison(
            _expected_batches(config, s3, 1 << 30, job=job, rejects=rejects), plan.source
        )
        sink = sink_factory(part_config)
        try:
            for offset, value, _headers in sink.committed_records():
                comparison.record(offset, value)
        finally:
            sink.close()
        report = comparison.finish()
        if config.dlq_topic and rejects is not None:
            bad = [(plan.source, reject) for reject in rejects]
            _compare_dead_letters(
                report, config, config.dlq_topic, bad, range(part.first_line, end)
            )
        reports.append(report)
    return reports
