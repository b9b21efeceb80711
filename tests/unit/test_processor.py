"""The processor's control flow, with an in-memory Kafka partition behind the ``Sink`` protocol.

The integration and reliability tests prove the copy against the real broker; these pin the
decisions ``Processor`` and its ``_Run`` make on their own, each in a few milliseconds: where a
run starts, when it commits, what an unknown, lost or fenced commit leads to, what a bad row, a
stop signal or a checkpoint failure leaves behind. S3 and DynamoDB are moto's in-process mock.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from csv_to_kafka._retry import RetryPolicy
from csv_to_kafka.checkpoint import Checkpoint, CheckpointStore, Status
from csv_to_kafka.config import Config, parse_source_uri
from csv_to_kafka.errors import (
    BadInputError,
    CommitUnknownError,
    ConfigError,
    FencedError,
    InfrastructureError,
    ObjectChangedError,
    StoppedError,
)
from csv_to_kafka.metrics import MetricsEmitter
from csv_to_kafka.processor import Processor, _CheckpointWriter
from csv_to_kafka.record import ResumePoint
from csv_to_kafka.source import S3Object

BUCKET, KEY, TABLE, JOB = "bucket", "data.csv", "checkpoints", "job-1"
ROWS = 230
EVERY = 50  # rows per transaction

pytestmark = pytest.mark.usefixtures("aws_env")


def csv_bytes(rows: int = ROWS, bad_row: int | None = None) -> bytes:
    lines = ["id,name,amount"]
    for i in range(1, rows + 1):
        lines.append(f"{i},name {i},{i}.50" if i != bad_row else f"{i},ragged")
    return ("\n".join(lines) + "\n").encode()


# -- an in-memory partition with transactions -----------------------------------------------------


@dataclass
class Partition:
    """One partition: committed records with their offsets; a commit marker takes an offset too."""

    records: list[tuple[int, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    next_offset: int = 0
    transactions: int = 0

    def append(self, batch: list[tuple[bytes, list[tuple[str, bytes]]]]) -> int:
        last_with_headers = -1
        for value, headers in batch:
            self.records.append((self.next_offset, value, headers))
            if headers:
                last_with_headers = self.next_offset
            self.next_offset += 1
        self.next_offset += 1  # the transaction's commit marker
        self.transactions += 1
        return last_with_headers

    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _, value, _ in self.records]


# A fault is called with the commit's number (from 1 across the sinks of one partition) and
# returns what happens to it: None (fine), "lost" (not applied, error), "unknown" (applied, then
# the answer is lost), "fenced" (not applied; another instance took over).
Fault = Callable[[int], str | None]


class MemorySink:
    """The ``Sink`` protocol over a ``Partition``: sent records are seen only once committed."""

    max_message_bytes = 1_000_000
    partitions = 1

    def __init__(self, partition: Partition, fault: Fault | None = None) -> None:
        self.partition = partition
        self.fault = fault
        self.open: list[tuple[bytes, list[tuple[str, bytes]]]] | None = None
        self.started = 0
        self.aborted = 0
        self.commits = 0

    def ensure_topic(self) -> None:
        pass

    def start(self) -> None:
        self.started += 1
        self.open = None

    def last_committed(self, job_id: str, hint: int | None) -> ResumePoint | None:
        for offset, _, headers in reversed(self.partition.records):
            point = ResumePoint.from_headers(headers, offset)
            if point is not None and point.job_id == job_id:
                return point
        return None

    def begin(self) -> None:
        assert self.open is None, "begin() inside a transaction"
        self.open = []

    def send(self, values: list[bytes], headers: list[tuple[str, bytes]]) -> None:
        assert self.open is not None, "send() outside a transaction"
        self.open.extend((value, []) for value in values[:-1])
        self.open.append((values[-1], headers))

    def commit(self) -> int:
        assert self.open is not None, "commit() outside a transaction"
        batch, self.open = self.open, None
        self.commits += 1
        outcome = self.fault(self.partition.transactions + 1) if self.fault else None
        if outcome == "lost":
            raise InfrastructureError("commit failed (test)")
        if outcome == "fenced":
            raise FencedError("another instance took over (test)")
        offset = self.partition.append(batch)
        if outcome == "unknown":
            raise CommitUnknownError("the commit did not answer (test)")
        return offset

    def abort(self) -> None:
        self.aborted += 1
        self.open = None

    def close(self) -> None:
        self.open = None

    def committed_records(self) -> Iterator[tuple[int, bytes, list[tuple[str, bytes]]]]:
        return iter(self.partition.records)


# -- the job ---------------------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


def put(data: bytes) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=KEY, Body=data)


def config(**overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "source": parse_source_uri(f"s3://{BUCKET}/{KEY}"),
        "topic": "topic",
        "bootstrap_servers": "unused:9092",
        "job_id": JOB,
        "checkpoint_table": TABLE,
        "checkpoint_every": EVERY,
        "checkpoint_seconds": 60.0,
        "retry_seconds": 2.0,
        "metrics_interval": 3600.0,
        "parse_process": False,
    }
    settings.update(overrides)
    return Config(**settings)


def store(cfg: Config) -> CheckpointStore:
    return CheckpointStore(
        cfg.checkpoint_table, retry=RetryPolicy(total_seconds=2.0), create_table=True
    )


def processor(
    sink: MemorySink, cfg: Config | None = None, **kwargs: Any
) -> tuple[Processor, CheckpointStore]:
    cfg = cfg if cfg is not None else config()
    checkpoints = kwargs.pop("store", None) or store(cfg)
    proc = Processor(
        cfg,
        sink_factory=lambda _: sink,
        store=checkpoints,
        metrics=MetricsEmitter(cfg.metrics_namespace, cfg.job_id, interval=3600.0),
        s3=S3Object(BUCKET, KEY, retry=RetryPolicy(total_seconds=2.0)),
        **kwargs,
    )
    return proc, checkpoints


def expected(rows: int = ROWS) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(csv_bytes(rows).decode()))
    return [
        {**row, "_source_line": i + 2, "_source_file": f"s3://{BUCKET}/{KEY}"}
        for i, row in enumerate(reader)
    ]


def saved(checkpoints: CheckpointStore) -> Checkpoint:
    checkpoint = checkpoints.load(JOB)
    assert checkpoint is not None
    return checkpoint


class _StopAfter:
    """A progress listener that sets ``stop`` once ``rows`` rows have been sent."""

    def __init__(self, stop: threading.Event, rows: int) -> None:
        self.stop, self.rows = stop, rows

    def started(self, job_id: str, rows: int, byte_offset: int, total_bytes: int) -> None:
        pass

    def advanced(self, rows: int, byte_offset: int, *, committed: bool) -> None:
        if rows >= self.rows:
            self.stop.set()


def interrupted(partition: Partition, after_rows: int) -> None:
    """Run the job until a SIGTERM arrives after ``after_rows`` rows were sent (raises Stopped)."""
    stop = threading.Event()
    proc, _ = processor(MemorySink(partition), stop=stop, progress=_StopAfter(stop, after_rows))
    proc._stop_signal = 15  # what request_stop(SIGTERM) sets; the listener sets the event
    proc.run()


# -- tests ----------------------------------------------------------------------------------------


def test_a_fresh_copy_commits_every_row_once_in_order_one_transaction_per_interval(
    aws: None,
) -> None:
    put(csv_bytes())
    partition = Partition()
    proc, checkpoints = processor(MemorySink(partition))
    result = proc.run()
    assert partition.rows() == expected()
    assert partition.transactions == -(-ROWS // EVERY)  # 5: four of 50 rows, one of 30
    assert (result.rows_total, result.rows_this_run, result.already_complete) == (ROWS, ROWS, False)
    checkpoint = saved(checkpoints)
    assert checkpoint.status is Status.COMPLETED
    assert (checkpoint.total_sent, checkpoint.last_line) == (ROWS, ROWS + 1)
    assert checkpoint.byte_offset == len(csv_bytes())
    assert checkpoint.kafka_offset == partition.records[-1][0]


def test_a_completed_job_is_not_copied_again(aws: None) -> None:
    put(csv_bytes())
    partition = Partition()
    processor(MemorySink(partition))[0].run()
    sink = MemorySink(partition)
    result = processor(sink)[0].run()
    assert result.already_complete
    assert (result.rows_total, result.rows_this_run) == (ROWS, 0)
    assert sink.started == 0, "a completed job needs no producer"
    assert partition.rows() == expected()


def test_a_stop_signal_commits_checkpoints_interrupted_and_a_rerun_finishes_exactly(
    aws: None,
) -> None:
    put(csv_bytes())
    partition = Partition()
    with pytest.raises(StoppedError) as stopped:
        interrupted(partition, after_rows=70)
    assert stopped.value.exit_code == 143
    checkpoint = saved(store(config()))
    assert checkpoint.status is Status.INTERRUPTED
    # The open transaction was committed before stopping: nothing sent is lost.
    assert checkpoint.total_sent == len(partition.records) == 100
    assert partition.rows() == expected()[:100]

    result = processor(MemorySink(partition))[0].run()
    assert (result.rows_total, result.rows_this_run) == (ROWS, ROWS - 100)
    assert partition.rows() == expected()


@pytest.mark.parametrize("outcome", ["lost", "unknown"])
def test_a_failed_commit_starts_again_from_kafkas_last_commit(aws: None, outcome: str) -> None:
    """Lost: the transaction is sent again. Unknown but applied: it is not sent twice."""
    put(csv_bytes())
    partition = Partition()
    fired: list[int] = []

    def third_commit_once(n: int) -> str | None:  # the attempt after it succeeds
        if n == 3 and not fired:
            fired.append(n)
            return outcome
        return None

    sink = MemorySink(partition, fault=third_commit_once)
    proc, checkpoints = processor(sink)
    result = proc.run()
    assert partition.rows() == expected()
    assert result.rows_total == ROWS
    assert sink.aborted == 1
    assert sink.started == 2, "the producer is re-created after the failure"
    assert saved(checkpoints).status is Status.COMPLETED


def test_a_fenced_producer_stops_at_once_without_retrying(aws: None) -> None:
    put(csv_bytes())
    partition = Partition()
    sink = MemorySink(partition, fault=lambda n: "fenced" if n == 2 else None)
    proc, _ = processor(sink)
    with pytest.raises(FencedError):
        proc.run()
    assert sink.started == 1, "starting again would fence the instance that took over"
    assert partition.rows() == expected()[:EVERY]


def test_kafka_failing_past_the_retry_budget_exits_4_and_marks_the_job_failed(
    aws: None,
) -> None:
    put(csv_bytes())
    partition = Partition()
    sink = MemorySink(partition, fault=lambda n: "lost" if n >= 2 else None)
    proc, checkpoints = processor(sink, config(retry_seconds=0.5))
    with pytest.raises(InfrastructureError) as failed:
        proc.run()
    assert failed.value.exit_code == 4
    assert partition.rows() == expected()[:EVERY]
    checkpoint = saved(checkpoints)
    assert checkpoint.status is Status.FAILED
    assert checkpoint.total_sent == EVERY
    assert "commit failed (test)" in (checkpoint.error or "")


def test_the_budget_is_renewed_by_progress(aws: None) -> None:
    """Failures that each follow progress never add up to the budget: the run completes."""
    put(csv_bytes())
    partition = Partition()
    failed_at: set[int] = set()

    def every_other(n: int) -> str | None:  # each transaction fails once, then commits
        if n in failed_at:
            return None
        failed_at.add(n)
        return "lost"

    sink = MemorySink(partition, fault=every_other)
    result = processor(sink, config(retry_seconds=0.5))[0].run()
    assert result.rows_total == ROWS
    assert partition.rows() == expected()
    assert sink.aborted == partition.transactions


def test_a_bad_row_commits_the_rows_before_it_and_fails_with_its_position(aws: None) -> None:
    put(csv_bytes(bad_row=123))
    partition = Partition()
    proc, checkpoints = processor(MemorySink(partition))
    with pytest.raises(BadInputError) as bad:
        proc.run()
    assert bad.value.exit_code == 3
    assert bad.value.line == 124
    assert partition.rows() == expected()[:122]
    checkpoint = saved(checkpoints)
    assert checkpoint.status is Status.FAILED
    assert checkpoint.total_sent == 122
    assert "line 124" in (checkpoint.error or "")


def test_a_checkpoint_that_cannot_be_written_stops_the_run_with_exit_4(aws: None) -> None:
    put(csv_bytes())

    class Broken(CheckpointStore):
        def save(self, checkpoint: Checkpoint) -> None:
            if checkpoint.total_sent > 0:
                raise InfrastructureError("DynamoDB kept failing (test)")
            super().save(checkpoint)

    cfg = config(retry_seconds=0.3)
    broken = Broken(cfg.checkpoint_table, retry=RetryPolicy(total_seconds=0.3), create_table=True)
    partition = Partition()
    proc, _ = processor(MemorySink(partition), cfg, store=broken)
    with pytest.raises(InfrastructureError, match="checkpoint could not be written"):
        proc.run()
    # Kafka is the truth: what was committed stays, and a rerun resumes from it.
    assert partition.rows() == expected()[: len(partition.records)]
    processor(MemorySink(partition))[0].run()
    assert partition.rows() == expected()


def test_a_checkpoint_with_rows_but_an_empty_topic_is_refused(aws: None) -> None:
    put(csv_bytes())
    with pytest.raises(StoppedError):
        interrupted(Partition(), after_rows=70)
    assert saved(store(config())).total_sent == 100
    with pytest.raises(ConfigError, match="the topic was deleted or truncated"):
        processor(MemorySink(Partition()))[0].run()


def test_an_object_replaced_after_the_job_started_is_refused(aws: None) -> None:
    put(csv_bytes())
    partition = Partition()
    stop = threading.Event()
    stop.set()  # stop right after the first checkpoint: the job is pinned, nothing is sent
    proc, _ = processor(MemorySink(partition), stop=stop)
    with pytest.raises(StoppedError):
        proc.run()
    put(csv_bytes(rows=ROWS + 1))
    with pytest.raises(ObjectChangedError, match="the object changed"):
        processor(MemorySink(partition))[0].run()
    assert partition.records == []


def test_the_checkpoint_writer_writes_the_newest_and_never_a_stale_one(aws: None) -> None:
    """While a write is in flight, newer checkpoints replace each other: only the newest follows."""
    release = threading.Event()
    written: list[int] = []

    class Slow(CheckpointStore):
        def __init__(self) -> None:
            pass

        def save(self, checkpoint: Checkpoint) -> None:
            release.wait(5)
            written.append(checkpoint.total_sent)

    writer = _CheckpointWriter(Slow(), MetricsEmitter("CsvToKafka", JOB, interval=3600.0))
    template = Checkpoint(
        job_id=JOB,
        status=Status.RUNNING,
        source="s3://b/k",
        topic="t",
        etag="e",
        version_id=None,
        last_line=0,
        total_sent=0,
        byte_offset=0,
        kafka_offset=-1,
        total_bytes=1,
        rows_per_second=0.0,
        bytes_per_second=0.0,
        started_at="s",
        updated_at="u",
    )
    for rows in range(1, 6):
        writer.submit(dataclasses.replace(template, total_sent=rows))
    release.set()
    writer.close()
    assert written[-1] == 5
    assert written == sorted(written)
    assert len(written) <= 2, f"coalesced while the first write waited: {written}"
    assert writer.error is None
