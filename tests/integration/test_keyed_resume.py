"""A keyed job's resume point, read from its partitions side by side (issue 15): with a tiny scan
window, every partition needs several backward windows, some partitions ending their scan before
others; both clients must still find the job's last commit, the one the checkpoint holds."""

from __future__ import annotations

import time

import confluent_kafka
import pytest

from csv_to_kafka import sink as sink_module
from csv_to_kafka.config import Config, parse_source_uri
from csv_to_kafka.record import ResumePoint
from csv_to_kafka.sink import open_sink

from .conftest import Job
from .test_keys import keyed_csv


def _config(job: Job) -> Config:
    return Config(
        source=parse_source_uri(job.source),
        topic=job.topic,
        bootstrap_servers=job.bootstrap,
        job_id=job.job_id,
        checkpoint_table="-",
        kafka_client=job.client,
        create_topic=False,
        key_columns=("customer",),
    )


def test_the_last_commit_is_found_across_partitions_in_many_windows(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    job.put(keyed_csv(3_000, seed=9))
    args = ("--key-column", "customer", "--partitions", "5", "--checkpoint-every", "70")
    result = job.run(*args)
    assert result.returncode == 0, result.stderr
    # Each transaction's last record (the one with the resume headers) lands in one partition:
    # with windows of 3 records, a partition's last one is several windows back.
    monkeypatch.setattr(sink_module, "SCAN_WINDOW", 3)
    sink = open_sink(_config(job))
    try:
        sink.ensure_topic()
        assert sink.partitions == 5
        point = sink.last_committed(job.job_id, None)
    finally:
        sink.close()
    assert point is not None
    assert point.rows == 3_000
    cp = job.checkpoint()
    assert cp is not None
    assert int(cp["kafka_offset"]) == point.kafka_offset


def test_aborted_records_are_passed_over_to_the_last_commit(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each partition ends with an aborted transaction of 300 records, every one carrying the
    job's resume headers with more rows than the job has: windows that hold only those (and
    the abort marker) yield no record at all under read_committed. The scan must pass them
    (kafka-python by its position, confluent by the end-of-partition event), without waiting
    for records that never come, and find the job's last commit, the checkpoint's; an aborted
    record taken for the job's would say 99,999 rows."""
    job.put(keyed_csv(3_000, seed=4))
    args = ("--key-column", "customer", "--partitions", "5", "--checkpoint-every", "500")
    result = job.run(*args)
    assert result.returncode == 0, result.stderr
    _abort_a_transaction(job, 5, 300)
    # Windows of one offset first: several of them in the aborted records of each partition.
    monkeypatch.setattr(sink_module, "SCAN_WINDOW", 3)
    sink = open_sink(_config(job))
    try:
        sink.ensure_topic()
        started = time.monotonic()
        point = sink.last_committed(job.job_id, None)
        took = time.monotonic() - started
    finally:
        sink.close()
    cp = job.checkpoint()
    assert cp is not None
    assert point is not None
    assert point.rows == int(cp["total_sent"]) == 3_000
    assert point.kafka_offset == int(cp["kafka_offset"])
    # kafka-python waited out a one-second poll for each window of aborted records only: 6.2 s
    # here before, 0.2 s since (confluent 0.9 s and 0.3 s).
    assert took < 3, f"the scan took {took:.1f} s"


def _abort_a_transaction(job: Job, partitions: int, records: int) -> None:
    """``records`` records in each partition, delivered, then their transaction aborted."""
    fake = ResumePoint(job.job_id, 99_999, 99_999, 100_000, 9_999_999, "etag").to_headers()
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": job.bootstrap, "transactional.id": f"aborter-{job.job_id}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for partition in range(partitions):
        for _ in range(records):
            producer.produce(job.topic, b"{}", b"k", partition=partition, headers=fake)
    assert producer.flush(30) == 0  # delivered: the records are in the partitions
    producer.abort_transaction(30)
