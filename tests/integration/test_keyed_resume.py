"""A keyed job's resume point, read from its partitions side by side (issue 15): with a tiny scan
window, every partition needs several backward windows, some partitions ending their scan before
others; both clients must still find the job's last commit, the one the checkpoint holds."""

from __future__ import annotations

import pytest

from csv_to_kafka import sink as sink_module
from csv_to_kafka.config import Config, parse_source_uri
from csv_to_kafka.sink import open_sink

from .conftest import Job
from .test_keys import keyed_csv


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
    config = Config(
        source=parse_source_uri(job.source),
        topic=job.topic,
        bootstrap_servers=job.bootstrap,
        job_id=job.job_id,
        checkpoint_table="-",
        kafka_client=job.client,  # type: ignore[arg-type]
        create_topic=False,
        key_columns=("customer",),
    )
    sink = open_sink(config)
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
