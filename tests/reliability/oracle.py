"""The oracle: the one check every reliability test ends with.

Three observers, none of which uses the product's code:

- ``Expected``: the CSV's data rows as Python's csv module reads the same bytes, each with its
  ``_source_line`` and ``_source_file``.
- ``PrefixWatcher``: a read_committed consumer that runs while the faults are injected. What it
  has read must be, at every moment, a prefix of the expected sequence: a committed record is
  never taken back, never repeated, never out of place.
- ``CheckpointMonitor``: polls the job's DynamoDB checkpoint straight from moto (never through a
  fault proxy) and records every value it sees; ``total_sent`` must never go down, and a
  COMPLETED checkpoint must stay COMPLETED at the same count.

``Oracle.finish`` stops the observers, reads the partition from offset 0 with a fresh
read_committed consumer and compares: 0 missing, 0 duplicated, 0 out of order, every record equal
to its row. It writes one line per test to the report (``CSV_TO_KAFKA_RELIABILITY_REPORT``)
that docs/reliability.md's table is made from, then asserts.

A job of many objects (a prefix, repeated ``--source``): ``Expected.of_objects`` concatenates
their rows in job order, each with its own ``_source_file``. A job with a dead-letter topic
(``--errors-tolerance all --dlq-topic``): ``Expected(..., dead_letters=True)`` splits the rows
into good ones (the topic) and bad ones (a field count other than the header's, or bytes
invalid in the encoding, as the csv module reads them: the DLQ, each as its object, line and
bytes). ``Oracle.after_fault()`` then checks, after each fault, that the committed dead letters
are exactly the first bad rows, in order, once each, and in step with the committed good rows
(every row before the last committed one of either stream is committed, none after); ``finish``
compares the whole DLQ too.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

REPORT_ENV = "CSV_TO_KAFKA_RELIABILITY_REPORT"
_librdkafka_logger = logging.getLogger("reliability.oracle.librdkafka")


def _consumer(bootstrap: str, isolation: str = "read_committed") -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"oracle-{uuid.uuid4()}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": str(64 * 1024 * 1024),
            # The end of the partition is seen sooner (the default waits 500 ms per fetch).
            "fetch.wait.max.ms": "50",
            # Not a 1 s pause in fetching each time 100,000 records wait unread (the default).
            "fetch.queue.backoff.ms": "10",
            # Its complaints while the broker is down go to logging (shown with a failure).
            "logger": _librdkafka_logger,
        }
    )


def read_partition(
    bootstrap: str,
    topic: str,
    *,
    isolation: str = "read_committed",
    timeout: float = 120,
    partition: int = 0,
) -> list[tuple[int, bytes]]:
    """Every record of ``partition`` from offset 0, as (offset, value); [] if no such topic."""
    return [
        (offset, value)
        for offset, value, _headers in read_records(
            bootstrap, topic, isolation=isolation, timeout=timeout, partition=partition
        )
    ]


def read_records(
    bootstrap: str,
    topic: str,
    *,
    isolation: str = "read_committed",
    timeout: float = 120,
    partition: int = 0,
) -> list[tuple[int, bytes, dict[str, bytes]]]:
    """Every record of ``partition`` from offset 0, as (offset, value, headers)."""
    consumer = _consumer(bootstrap, isolation)
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return []
        consumer.assign([TopicPartition(topic, partition, 0)])
        out: list[tuple[int, bytes, dict[str, bytes]]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=0.1):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return out
                    raise RuntimeError(f"reading {topic}: {error.str()}")
                offset, value = message.offset(), message.value()
                if offset is None or value is None:
                    raise RuntimeError(f"reading {topic}: a record without offset or value")
                headers: dict[str, bytes] = {}
                for pair in message.headers() or []:
                    headers[str(pair[0])] = pair[1] if isinstance(pair[1], bytes) else b""
                out.append((offset, value, headers))
        raise TimeoutError(f"reading {topic} did not reach its end within {timeout}s")
    finally:
        consumer.close()


def end_offset(bootstrap: str, topic: str) -> int:
    """The high watermark of partition 0 (records, aborted ones and markers included)."""
    consumer = _consumer(bootstrap, "read_uncommitted")
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        return int(high)
    finally:
        consumer.close()


def expected_records(data: bytes, source: str, **fmt: Any) -> list[dict[str, Any]]:
    """The CSV's data rows as Python's csv module reads ``data``, nothing of the product's.

    The integration tests use it too. A line ends with LF (CRLF included), so a lone CR inside
    a quoted field is data, not a line end (Python's ``reader.line_num`` would count it with
    universal newlines; csv-to-kafka refuses a lone CR elsewhere).
    """
    good, _bad = split_rows(data, source, dead_letters=False, **fmt)
    return good


@dataclass(frozen=True)
class DeadLetter:
    """A bad row as its dead letter must be: its object, first line and bytes."""

    source: str
    line: int
    raw: bytes


def split_rows(
    data: bytes, source: str, *, dead_letters: bool, **fmt: Any
) -> tuple[list[dict[str, Any]], list[tuple[int, DeadLetter]]]:
    """(the good rows as records, the bad rows with the count of good rows before each).

    Without ``dead_letters`` every row is good (a bad one raises). With it, a row is bad when its
    field count differs from the header's or it holds bytes invalid in the encoding (read with
    ``surrogateescape``); its dead letter's bytes are its lines in ``data``, without the line
    terminator of the last (LF or CRLF).
    """
    csv.field_size_limit(1 << 30)
    encoding = fmt.get("encoding", "utf-8-sig")
    text = data.decode(encoding, "surrogateescape" if dead_letters else "strict")
    lines = io.StringIO(text, newline="\n")  # split at LF only, nothing translated
    reader = csv.reader(
        lines,
        delimiter=fmt.get("delimiter", ","),
        quotechar=fmt.get("quotechar", '"'),
        strict=True,
    )
    header = next(reader)
    raw_lines = data.split(b"\n") if dead_letters else []
    records: list[dict[str, Any]] = []
    bad: list[tuple[int, DeadLetter]] = []
    start_line = reader.line_num + 1
    for row in reader:
        if row:  # blank lines are skipped
            if dead_letters and (
                len(row) != len(header) or any(_ESCAPED.search(value) for value in row)
            ):
                raw = b"\n".join(raw_lines[start_line - 1 : reader.line_num])
                bad.append((len(records), DeadLetter(source, start_line, raw.removesuffix(b"\r"))))
            else:
                record: dict[str, Any] = dict(zip(header, row, strict=True))
                record["_source_line"] = start_line
                record["_source_file"] = source
                records.append(record)
        start_line = reader.line_num + 1
    return records, bad


_ESCAPED = re.compile("[\udc80-\udcff]")  # undecodable bytes, read with surrogateescape


def _key(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("_source_file"), record.get("_source_line")


class Expected:
    """What the topic must hold: the CSV's data rows, in order, once each; and with
    ``dead_letters``, what the dead-letter topic must hold: its bad rows, in order, once each."""

    def __init__(
        self, data: bytes | None, source: str, *, dead_letters: bool = False, **fmt: Any
    ) -> None:
        """``data`` None: nothing at all (a job refused at its header)."""
        self.records: list[dict[str, Any]] = []
        # each bad row with the count of good rows of the job before it
        self.bad: list[tuple[int, DeadLetter]] = []
        self.objects = 1 if source else 0  # (of_objects: none yet)
        self.dead_letters = dead_letters
        self.by_key: dict[tuple[Any, Any], dict[str, Any]] = {}
        if data is not None:
            self.objects = 0
            self.add(data, source, **fmt)

    @classmethod
    def of_objects(
        cls, objects: Sequence[tuple[bytes, str]], *, dead_letters: bool = False, **fmt: Any
    ) -> Expected:
        """A job of many objects: (decoded bytes, s3:// uri) of each, in job order."""
        expected = cls(None, "", dead_letters=dead_letters)
        for data, source in objects:
            expected.add(data, source, **fmt)
        return expected

    def add(self, data: bytes, source: str, **fmt: Any) -> None:
        """The next object of the job."""
        good, bad = split_rows(data, source, dead_letters=self.dead_letters, **fmt)
        self.bad += [(len(self.records) + before, letter) for before, letter in bad]
        self.records += good
        self.objects += 1
        self.by_key = {_key(record): record for record in self.records}

    @property
    def letters(self) -> list[DeadLetter]:
        return [letter for _before, letter in self.bad]

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class Comparison:
    records_checked: int = 0
    missing: int = 0
    duplicated: int = 0
    reordered: int = 0
    content_differs: int = 0
    first_difference: str | None = None

    @property
    def exact(self) -> bool:
        return self.first_difference is None


def compare(got: Sequence[dict[str, Any]], expected: Expected) -> Comparison:
    """Count what differs between the records read and the rows expected."""
    return _compare(
        got, expected.records, _key, lambda key: f"line {key[1]} of {key[0]}", "records", "rows"
    )


def compare_letters(got: Sequence[DeadLetter], expected: Expected) -> Comparison:
    """Count what differs between the dead letters read and the bad rows expected."""
    return _compare(
        got,
        expected.letters,
        lambda letter: (letter.source, letter.line),
        lambda key: f"line {key[1]} of {key[0]}",
        "dead letters",
        "bad rows",
    )


def _compare(
    got: Sequence[Any],
    want: Sequence[Any],
    key: Callable[[Any], tuple[Any, Any]],
    name: Callable[[tuple[Any, Any]], str],
    what: str,
    of: str,
) -> Comparison:
    result = Comparison(records_checked=len(got))
    wanted = {key(item): item for item in want}
    place = {k: i for i, k in enumerate(wanted)}
    keys = [key(item) for item in got]
    counts = Counter(keys)
    result.duplicated = sum(n - 1 for n in counts.values() if n > 1)
    result.missing = sum(1 for k in wanted if k not in counts)
    result.reordered = sum(
        1
        for before, after in itertools.pairwise(keys)
        if before in place and after in place and place[after] <= place[before]
    )
    result.content_differs = sum(
        1 for item, k in zip(got, keys, strict=True) if wanted.get(k) != item
    )
    for i, (item, expected) in enumerate(zip(got, want, strict=False)):
        if item != expected:
            result.first_difference = (
                f"{what} {i}: {name(key(item))} where {name(key(expected))} was expected"
                if key(item) != key(expected)
                else f"{what} {i} ({name(key(expected))}): {item!r} != {expected!r}"
            )
            break
    else:
        if len(got) != len(want):
            result.first_difference = f"{len(got)} {what} for {len(want)} {of}" + (
                f"; first missing: {name(key(want[len(got)]))}" if len(got) < len(want) else ""
            )
    return result


def dead_letters_of(values: Sequence[tuple[int, bytes, dict[str, bytes]]]) -> list[DeadLetter]:
    """The dead letters read, as (object, line, bytes) from their headers and value."""
    return [
        DeadLetter(
            headers.get("csv-to-kafka.source-file", b"").decode(),
            int(headers.get("csv-to-kafka.line", b"-1")),
            value,
        )
        for _offset, value, headers in values
    ]


def in_step(
    expected: Expected, got: Sequence[dict[str, Any]], letters: Sequence[DeadLetter] | None
) -> list[str]:
    """What is wrong with a committed state: ``got`` must be the first good rows and
    ``letters`` (None: no DLQ) the first bad rows, in step: every bad row before the last
    committed good row is committed, and none after the next good row."""
    problems: list[str] = []
    if list(got) != expected.records[: len(got)]:
        problems.append(f"the {len(got)} committed records are not the first rows")
    if letters is None:
        return problems
    if list(letters) != expected.letters[: len(letters)]:
        problems.append(f"the {len(letters)} dead letters are not the first bad rows")
    before = sum(1 for n, _letter in expected.bad if n < len(got))
    upto = sum(1 for n, _letter in expected.bad if n <= len(got))
    if not before <= len(letters) <= upto:
        problems.append(
            f"{len(letters)} dead letters with {len(got)} records: the bad rows committed with "
            f"them must be {before}" + (f" to {upto}" if upto != before else "")
        )
    return problems


class PrefixWatcher:
    """A read_committed consumer that checks, record by record, that it reads a prefix."""

    def __init__(self, bootstrap: str, topic: str, expected: Expected) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.expected = expected
        self.count = 0
        self.violation: str | None = None
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prefix-watcher", daemon=True)

    def start(self) -> PrefixWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        consumer = _consumer(self.bootstrap)
        try:
            while not self._stop.is_set():
                try:
                    found = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
                except Exception as err:  # the broker may be down: wait for it
                    self.errors[type(err).__name__] += 1
                    self._stop.wait(0.5)
                    continue
                if found is not None and found.error is None:
                    break
                self._stop.wait(0.2)
            consumer.assign([TopicPartition(self.topic, 0, 0)])
            records = self.expected.records
            while not self._stop.is_set():
                for message in consumer.consume(5000, timeout=0.1):
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            self.errors[error.name()] += 1
                        continue
                    if self.violation is not None:
                        continue
                    value = orjson.loads(message.value() or b"")  # empty: not JSON, fails
                    i = self.count
                    if i >= len(records):
                        self.violation = (
                            f"offset {message.offset()}: record {i} (line "
                            f"{value.get('_source_line')}) beyond the {len(records)} rows"
                        )
                    elif value != records[i]:
                        self.violation = (
                            f"offset {message.offset()}: record {i} is line "
                            f"{value.get('_source_line')}, expected line "
                            f"{records[i]['_source_line']}"
                            + (
                                ""
                                if value.get("_source_line") != records[i]["_source_line"]
                                else " with other content"
                            )
                        )
                    else:
                        self.count += 1
        finally:
            consumer.close()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count and self.violation is None and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class Observation:
    at: float
    status: str
    total_sent: int
    kafka_offset: int
    bad_rows: int = 0


class CheckpointMonitor:
    """Polls the job's checkpoint and keeps every distinct value; flags any step backwards."""

    def __init__(self, table: str, job_id: str, endpoint: str, interval: float = 0.05) -> None:
        self.table = table
        self.job_id = job_id
        self.interval = interval
        self._client = boto3.client("dynamodb", endpoint_url=endpoint)
        self.history: list[Observation] = []
        self.polls = 0
        self.regressions: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # One observe at a time, the read and its record together: the polling thread and a
        # test's own observe() could otherwise read in one order and record in the other, and
        # an older read recorded last looks like a step backwards.
        self._observing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="checkpoint-monitor", daemon=True)

    def start(self) -> CheckpointMonitor:
        self._thread.start()
        return self

    def observe(self) -> Observation | None:
        """Read the checkpoint now, record it, and check it against what came before."""
        with self._observing:
            return self._observe()

    def _observe(self) -> Observation | None:
        try:
            item = self._client.get_item(
                TableName=self.table, Key={"job_id": {"S": self.job_id}}, ConsistentRead=True
            ).get("Item")
        except self._client.exceptions.ResourceNotFoundException:
            item = None
        with self._lock:
            self.polls += 1
            if item is None:
                if self.history:
                    self.regressions.append(f"the checkpoint vanished after {self.history[-1]}")
                return None
            now = Observation(
                time.monotonic(),
                item["status"]["S"],
                int(item["total_sent"]["N"]),
                int(item.get("kafka_offset", {"N": "-1"})["N"]),
                int(item.get("bad_rows", {"N": "0"})["N"]),
            )
            last = self.history[-1] if self.history else None
            if last is not None:
                if now.total_sent < last.total_sent:
                    self.regressions.append(f"total_sent went from {last} to {now}")
                if now.bad_rows < last.bad_rows:
                    self.regressions.append(f"bad_rows went from {last} to {now}")
                if last.status == "COMPLETED" and (
                    now.status != "COMPLETED" or now.total_sent != last.total_sent
                ):
                    self.regressions.append(f"a COMPLETED checkpoint changed: {last} -> {now}")
            if last is None or (now.status, now.total_sent, now.bad_rows) != (
                last.status,
                last.total_sent,
                last.bad_rows,
            ):
                self.history.append(now)
            return now

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # moto busy: the next poll tells
                self.observe()
            self._stop.wait(self.interval)

    def last(self) -> Observation | None:
        with self._lock:
            return self.history[-1] if self.history else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class Verdict:
    """One line of the reliability report."""

    test: str
    fault: str
    client: str
    seed: int | None
    injected: dict[str, int]
    runs: int
    exit_codes: list[int]
    rows: int
    records_checked: int
    missing: int
    duplicated: int
    reordered: int
    content_differs: int
    prefix_records_checked: int
    prefix_violation: str | None
    checkpoint_polls: int
    checkpoint_values: int
    checkpoint_regressions: list[str]
    first_difference: str | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    objects: int = 1  # the job's objects (a prefix, repeated --source)
    # --dlq-topic: the bad rows expected, the dead letters read at the end, what differs, and
    # the checks after each fault (out of step: a check that found the DLQ was not exactly the
    # bad rows before the committed good rows)
    dlq: bool = False
    bad_rows: int = 0
    dlq_records_checked: int = 0
    dlq_missing: int = 0
    dlq_duplicated: int = 0
    dlq_reordered: int = 0
    dlq_content_differs: int = 0
    dlq_checks_after_faults: int = 0
    dlq_out_of_step: int = 0
    dlq_first_difference: str | None = None

    @property
    def rounds(self) -> int:
        return sum(self.injected.values())


class Oracle:
    """Watches one job while faults are injected, then judges it.

    ``injected(kind)`` counts a fault as it is injected; ``ran(code)`` records each processor
    exit. ``finish()`` is the verdict.
    """

    def __init__(
        self,
        *,
        test: str,
        fault: str,
        client: str,
        seed: int | None,
        bootstrap: str,
        aws_endpoint: str,
        topic: str,
        table: str,
        job_id: str,
        expected: Expected,
        dlq_topic: str | None = None,
    ) -> None:
        self.test = test
        self.fault = fault
        self.client = client
        self.seed = seed
        self.bootstrap = bootstrap
        self.topic = topic
        self.expected = expected
        self.dlq_topic = dlq_topic
        self.dlq_checks = 0
        self.out_of_step: list[str] = []
        self.injections: Counter[str] = Counter()
        self.exit_codes: list[int] = []
        self.extra: dict[str, Any] = {}
        self.started = time.monotonic()
        self.prefix = PrefixWatcher(bootstrap, topic, expected).start()
        self.checkpoints = CheckpointMonitor(table, job_id, aws_endpoint).start()
        self.verdict: Verdict | None = None

    def injected(self, kind: str, n: int = 1) -> None:
        self.injections[kind] += n

    def ran(self, code: int) -> None:
        self.exit_codes.append(code)

    def after_fault(self, label: str = "") -> tuple[int, int]:
        """Check the committed state now (no run may be writing): the topic holds the first good
        rows and, with a DLQ, the DLQ exactly the bad rows before them (and none after the
        next good row), in order, once each. Returns (records, dead letters) committed."""
        got = [orjson.loads(v) for _o, v in read_partition(self.bootstrap, self.topic)]
        letters: list[DeadLetter] | None = None
        if self.dlq_topic is not None:
            self.dlq_checks += 1
            letters = dead_letters_of(read_records(self.bootstrap, self.dlq_topic))
        problems = in_step(self.expected, got, letters)
        for problem in problems:
            self.out_of_step.append(f"{label}: {problem}" if label else problem)
        return len(got), len(letters or ())

    def close(self) -> None:
        self.prefix.stop()
        self.checkpoints.stop()

    def finish(self, *, status: str | None = "COMPLETED") -> Verdict:
        """Judge the job: the committed records are exactly the expected rows.

        ``status`` is the checkpoint the job must end with (FAILED for bad input, a refused
        header included; None: no checkpoint at all).
        """
        try:
            self.prefix.wait_for(len(self.expected))
            final = self.checkpoints.observe()
        finally:
            self.close()
        got = [orjson.loads(value) for _offset, value in read_partition(self.bootstrap, self.topic)]
        comparison = compare(got, self.expected)
        regressions = list(self.checkpoints.regressions)
        if status is None:
            if final is not None:
                regressions.append(f"a checkpoint was written: {final}")
        elif final is None:
            regressions.append("no checkpoint at the end")
        elif final.status != status or final.total_sent != len(self.expected):
            regressions.append(
                f"the final checkpoint is {final.status} at {final.total_sent} rows; "
                f"expected {status} at {len(self.expected)}"
            )
        elif self.dlq_topic is not None and final.bad_rows != len(self.expected.bad):
            regressions.append(
                f"the final checkpoint has {final.bad_rows} bad rows, the job "
                f"{len(self.expected.bad)}"
            )
        letters = Comparison()
        if self.dlq_topic is not None:
            self.after_fault("at the end")
            letters = compare_letters(
                dead_letters_of(read_records(self.bootstrap, self.dlq_topic)), self.expected
            )
        verdict = Verdict(
            test=self.test,
            fault=self.fault,
            client=self.client,
            seed=self.seed,
            injected=dict(self.injections),
            runs=len(self.exit_codes),
            exit_codes=self.exit_codes,
            rows=len(self.expected),
            records_checked=comparison.records_checked,
            missing=comparison.missing,
            duplicated=comparison.duplicated,
            reordered=comparison.reordered,
            content_differs=comparison.content_differs,
            prefix_records_checked=self.prefix.count,
            prefix_violation=self.prefix.violation,
            checkpoint_polls=self.checkpoints.polls,
            checkpoint_values=len(self.checkpoints.history),
            checkpoint_regressions=regressions,
            first_difference=comparison.first_difference,
            seconds=round(time.monotonic() - self.started, 1),
            extra=self.extra,
            objects=self.expected.objects,
            dlq=self.dlq_topic is not None,
            bad_rows=len(self.expected.bad),
            dlq_records_checked=letters.records_checked,
            dlq_missing=letters.missing,
            dlq_duplicated=letters.duplicated,
            dlq_reordered=letters.reordered,
            dlq_content_differs=letters.content_differs,
            dlq_checks_after_faults=self.dlq_checks,
            dlq_out_of_step=len(self.out_of_step),
            dlq_first_difference=letters.first_difference,
        )
        self.verdict = verdict
        write_report(verdict)
        assert comparison.exact, (
            f"{self.fault} (seed {self.seed}): {comparison.first_difference}; missing "
            f"{comparison.missing}, duplicated {comparison.duplicated}, reordered "
            f"{comparison.reordered}, content differs {comparison.content_differs}; exits "
            f"{self.exit_codes}"
        )
        assert self.prefix.violation is None, (
            f"the read_committed consumer saw a non-prefix during the faults (seed {self.seed}): "
            f"{self.prefix.violation}"
        )
        assert self.prefix.count == len(self.expected), (
            f"the read_committed consumer read {self.prefix.count} of {len(self.expected)} "
            f"records (errors: {dict(self.prefix.errors)})"
        )
        assert letters.exact, (
            f"{self.fault} (seed {self.seed}): dead-letter topic {self.dlq_topic}: "
            f"{letters.first_difference}; missing {letters.missing}, duplicated "
            f"{letters.duplicated}, reordered {letters.reordered}, content differs "
            f"{letters.content_differs}"
        )
        assert not self.out_of_step, (
            f"after the faults (seed {self.seed}): {self.out_of_step[:5]} "
            f"({len(self.out_of_step)} in all)"
        )
        assert not regressions, f"checkpoint (seed {self.seed}): {regressions}"
        return verdict


def write_report(verdict: Verdict) -> None:
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    line = {**asdict(verdict), "rounds": verdict.rounds}
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, default=str) + "\n")
