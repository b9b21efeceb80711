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
to its row. It writes one line per test to the report (``CSV_TO_KAFKA_RELIABILITY_REPORT``) that
docs/reliability.md's table is made from, then asserts.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
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
    consumer = _consumer(bootstrap, isolation)
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return []
        consumer.assign([TopicPartition(topic, partition, 0)])
        out: list[tuple[int, bytes]] = []
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
                out.append((offset, value))
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
    csv.field_size_limit(1 << 30)
    text = data.decode(fmt.get("encoding", "utf-8-sig"))
    lines = io.StringIO(text, newline="\n")  # split at LF only, nothing translated
    reader = csv.reader(
        lines,
        delimiter=fmt.get("delimiter", ","),
        quotechar=fmt.get("quotechar", '"'),
        strict=True,
    )
    header = next(reader)
    records = []
    start_line = reader.line_num + 1
    for row in reader:
        if row:  # blank lines are skipped
            record: dict[str, Any] = dict(zip(header, row, strict=True))
            record["_source_line"] = start_line
            record["_source_file"] = source
            records.append(record)
        start_line = reader.line_num + 1
    return records


class Expected:
    """What the topic must hold: the CSV's data rows, in order, once each."""

    def __init__(self, data: bytes | None, source: str, **fmt: Any) -> None:
        """``data`` None: nothing at all (a job refused at its header)."""
        self.records: list[dict[str, Any]] = (
            [] if data is None else expected_records(data, source, **fmt)
        )
        self.by_line = {record["_source_line"]: record for record in self.records}

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
    result = Comparison(records_checked=len(got))
    lines = [record.get("_source_line") for record in got]
    counts = Counter(lines)
    result.duplicated = sum(n - 1 for n in counts.values() if n > 1)
    result.missing = sum(1 for line in expected.by_line if line not in counts)
    result.reordered = sum(
        1
        for before, after in itertools.pairwise(lines)
        if isinstance(before, int) and isinstance(after, int) and after <= before
    )
    result.content_differs = sum(
        1 for record in got if expected.by_line.get(record.get("_source_line")) != record
    )
    for i, (record, want) in enumerate(zip(got, expected.records, strict=False)):
        if record != want:
            result.first_difference = (
                f"record {i}: line {record.get('_source_line')} where line "
                f"{want['_source_line']} was expected"
                if record.get("_source_line") != want["_source_line"]
                else f"record {i} (line {want['_source_line']}): {record!r} != {want!r}"
            )
            break
    else:
        if len(got) != len(expected):
            result.first_difference = f"{len(got)} records for {len(expected)} rows" + (
                f"; first missing: line {expected.records[len(got)]['_source_line']}"
                if len(got) < len(expected)
                else ""
            )
    return result


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
        self._thread = threading.Thread(target=self._run, name="checkpoint-monitor", daemon=True)

    def start(self) -> CheckpointMonitor:
        self._thread.start()
        return self

    def observe(self) -> Observation | None:
        """Read the checkpoint now, record it, and check it against what came before."""
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
            )
            last = self.history[-1] if self.history else None
            if last is not None:
                if now.total_sent < last.total_sent:
                    self.regressions.append(f"total_sent went from {last} to {now}")
                if last.status == "COMPLETED" and (
                    now.status != "COMPLETED" or now.total_sent != last.total_sent
                ):
                    self.regressions.append(f"a COMPLETED checkpoint changed: {last} -> {now}")
            if last is None or (now.status, now.total_sent) != (last.status, last.total_sent):
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
    ) -> None:
        self.test = test
        self.fault = fault
        self.client = client
        self.seed = seed
        self.bootstrap = bootstrap
        self.topic = topic
        self.expected = expected
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
        assert not regressions, f"checkpoint (seed {self.seed}): {regressions}"
        return verdict


def write_report(verdict: Verdict) -> None:
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    line = {**asdict(verdict), "rounds": verdict.rounds}
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, default=str) + "\n")
