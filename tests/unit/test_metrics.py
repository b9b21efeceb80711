"""CloudWatch metrics, against moto's in-process CloudWatch (no network, no processes)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from csv_to_kafka import metrics
from csv_to_kafka.metrics import METRICS, MetricsEmitter

NAMESPACE = "CsvToKafkaTest"
JOB = "orders-2024"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


@pytest.fixture
def cloudwatch(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


class Spy:
    """Passes PutMetricData through to a real (moto) client and remembers each call."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.real.put_metric_data(**kwargs)


class Broken:
    """A CloudWatch that always fails, as an unreachable endpoint does."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def put_metric_data(self, **_: Any) -> None:
        self.calls += 1
        raise self.error


def statistics(cloudwatch: Any, name: str) -> dict[str, float]:
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=[{"Name": "JobId", "Value": JOB}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
        Period=3600,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum"],
    )["Datapoints"]
    assert len(points) == 1, points
    return points[0]


def metric_names(cloudwatch: Any) -> dict[str, list[dict[str, str]]]:
    found = {}
    for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=NAMESPACE):
        for metric in page["Metrics"]:
            found[metric["MetricName"]] = metric["Dimensions"]
    return found


# -- what arrives in CloudWatch ---------------------------------------------------------


def test_counts_gauges_and_statistics_arrive_with_the_job_dimension(cloudwatch: Any) -> None:
    emitter = MetricsEmitter(NAMESPACE, JOB)  # the default client, from the AWS configuration
    emitter.count("RecordsSent", 500)
    emitter.count("RecordsSent", 250)
    emitter.count("BytesRead", 4096, "Bytes")
    emitter.gauge("ProgressPercent", 10.0, "Percent")
    emitter.gauge("ProgressPercent", 42.5, "Percent")
    emitter.observe("CommitLatency", 12.0)
    emitter.observe("CommitLatency", 80.0)
    emitter.observe("CommitLatency", 31.0)
    emitter.flush()

    names = metric_names(cloudwatch)
    assert set(names) == {"RecordsSent", "BytesRead", "ProgressPercent", "CommitLatency"}
    for dimensions in names.values():
        assert dimensions == [{"Name": "JobId", "Value": JOB}]

    sent = statistics(cloudwatch, "RecordsSent")
    assert sent["Sum"] == 750.0
    assert sent["SampleCount"] == 1.0  # one datum per flush, not one per call
    assert sent["Unit"] == "Count"
    assert statistics(cloudwatch, "BytesRead")["Sum"] == 4096.0
    assert statistics(cloudwatch, "BytesRead")["Unit"] == "Bytes"

    progress = statistics(cloudwatch, "ProgressPercent")
    assert (progress["Maximum"], progress["SampleCount"]) == (42.5, 1.0)  # the last value
    assert progress["Unit"] == "Percent"

    latency = statistics(cloudwatch, "CommitLatency")
    assert latency["SampleCount"] == 3.0
    assert latency["Sum"] == 123.0
    assert latency["Minimum"] == 12.0
    assert latency["Maximum"] == 80.0
    assert latency["Unit"] == "Milliseconds"
    assert emitter.failures == 0


def test_a_part_sends_its_progress_also_under_the_job_and_the_part(cloudwatch: Any) -> None:
    """Part 3's ProgressPercent also goes under {JobId: J, Part: 3}; what adds up over the
    parts (counters, statistic sets) also under {JobId: J}; the other gauges only as the part."""
    emitter = MetricsEmitter(NAMESPACE, f"{JOB}.part-3", part_of=(JOB, 3))
    emitter.count("RecordsSent", 500)
    emitter.observe("CommitLatency", 20.0)
    emitter.gauge("ProgressPercent", 42.5, "Percent")
    emitter.gauge("RowsPerSecond", 1000.0, "Count/Second")
    emitter.flush()
    other = MetricsEmitter(NAMESPACE, f"{JOB}.part-0", part_of=(JOB, 0))
    other.count("RecordsSent", 250)
    other.observe("CommitLatency", 40.0)
    other.flush()

    found = [
        (metric["MetricName"], {d["Name"]: d["Value"] for d in metric["Dimensions"]})
        for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=NAMESPACE)
        for metric in page["Metrics"]
    ]
    part, part0 = f"{JOB}.part-3", f"{JOB}.part-0"
    assert sorted(found, key=str) == sorted(
        [
            ("RecordsSent", {"JobId": part}),
            ("CommitLatency", {"JobId": part}),
            ("ProgressPercent", {"JobId": part}),
            ("RowsPerSecond", {"JobId": part}),
            ("ProgressPercent", {"JobId": JOB, "Part": "3"}),  # the job's id, not J.part-I
            ("RecordsSent", {"JobId": JOB}),
            ("CommitLatency", {"JobId": JOB}),
            ("RecordsSent", {"JobId": part0}),
            ("CommitLatency", {"JobId": part0}),
        ],
        key=str,
    )
    # The job's own: the parts added up.
    assert statistics(cloudwatch, "RecordsSent")["Sum"] == 750.0
    latency = statistics(cloudwatch, "CommitLatency")
    assert (latency["SampleCount"], latency["Sum"], latency["Maximum"]) == (2.0, 60.0, 40.0)
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName="ProgressPercent",
        Dimensions=[{"Name": "JobId", "Value": JOB}, {"Name": "Part", "Value": "3"}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
        Period=3600,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [(p["Maximum"], p["Unit"]) for p in points] == [(42.5, "Percent")]
    assert {"ProgressPercent"} == metrics.PER_PART
    assert {
        "RecordsSent", "BytesRead", "Retries", "Errors", "TransactionsCommitted", "BadRows",
        "CommitLatency", "CheckpointLatency",
    } == metrics.JOB_TOTALS  # fmt: skip


def test_each_flush_sends_only_what_was_recorded_since_the_last(cloudwatch: Any) -> None:
    spy = Spy(cloudwatch)
    emitter = MetricsEmitter(NAMESPACE, JOB, client=spy)
    emitter.count("RecordsSent", 100)
    emitter.flush()
    emitter.count("RecordsSent", 20)
    emitter.flush()
    emitter.flush()  # nothing new: no call
    assert len(spy.calls) == 2
    assert [c["MetricData"][0]["Value"] for c in spy.calls] == [100.0, 20.0]
    assert statistics(cloudwatch, "RecordsSent")["Sum"] == 120.0


def test_nothing_is_sent_when_nothing_was_recorded(cloudwatch: Any) -> None:
    spy = Spy(cloudwatch)
    emitter = MetricsEmitter(NAMESPACE, JOB, client=spy)
    emitter.flush()
    emitter.start()
    emitter.close()
    assert spy.calls == []
    assert metric_names(cloudwatch) == {}


def test_more_than_1000_data_points_are_sent_in_chunks(cloudwatch: Any) -> None:
    spy = Spy(cloudwatch)
    emitter = MetricsEmitter(NAMESPACE, JOB, client=spy)
    for i in range(2100):
        emitter.count(f"Metric{i:04d}", i)
    emitter.flush()
    assert [len(c["MetricData"]) for c in spy.calls] == [1000, 1000, 100]
    assert all(c["Namespace"] == NAMESPACE for c in spy.calls)
    assert len(metric_names(cloudwatch)) == 2100
    assert emitter.failures == 0


def test_counts_from_many_threads_add_up(cloudwatch: Any) -> None:
    emitter = MetricsEmitter(NAMESPACE, JOB, client=cloudwatch)

    def work() -> None:
        for _ in range(1000):
            emitter.count("RecordsSent", 1)
            emitter.observe("CommitLatency", 2.0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emitter.flush()
    assert statistics(cloudwatch, "RecordsSent")["Sum"] == 8000.0
    assert statistics(cloudwatch, "CommitLatency")["SampleCount"] == 8000.0


def test_values_cloudwatch_would_refuse_are_dropped_not_sent(
    cloudwatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = MetricsEmitter(NAMESPACE, JOB, client=cloudwatch)
    with caplog.at_level(logging.WARNING, logger="csv_to_kafka.metrics"):
        emitter.gauge("EtaSeconds", float("inf"), "Seconds")
        emitter.observe("CommitLatency", float("nan"))
        emitter.count("RecordsSent", 5, "Rows")  # not a CloudWatch unit
        emitter.count("RecordsSent", 5, "Rows")
        emitter.count("RecordsSent", 7)
        emitter.flush()
    assert set(metric_names(cloudwatch)) == {"RecordsSent"}
    assert statistics(cloudwatch, "RecordsSent")["Sum"] == 7.0
    assert emitter.failures == 0
    unit_warnings = [r for r in caplog.records if "'Rows'" in r.getMessage()]
    assert len(unit_warnings) == 1  # once per metric and unit, not once per call


# -- failures never reach the caller ----------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        botocore.exceptions.EndpointConnectionError(endpoint_url="https://monitoring"),
        botocore.exceptions.ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutMetricData"
        ),
        RuntimeError("anything else"),
    ],
)
def test_a_failed_flush_is_counted_and_logged_not_raised(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Broken(error)
    emitter = MetricsEmitter(NAMESPACE, JOB, client=broken)
    emitter.count("RecordsSent", 10)
    with caplog.at_level(logging.WARNING, logger="csv_to_kafka.metrics"):
        emitter.flush()
    assert emitter.failures == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(error) in warnings[0].getMessage()
    assert NAMESPACE in warnings[0].getMessage()

    # The failed flush's data was dropped: nothing is left to resend.
    emitter.flush()
    assert broken.calls == 1
    emitter.count("RecordsSent", 1)
    emitter.close()  # fails again, still does not raise
    assert emitter.failures == 2
    assert broken.calls == 2


def test_a_missing_region_is_a_counted_failure(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    emitter = MetricsEmitter(NAMESPACE, JOB)
    emitter.count("RecordsSent")
    emitter.flush()
    assert emitter.failures == 1


def test_close_does_not_wait_for_a_hung_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "CLOSE_TIMEOUT", 0.2)
    release = threading.Event()

    class Hung:
        def put_metric_data(self, **_: Any) -> None:
            release.wait(30)

    emitter = MetricsEmitter(NAMESPACE, JOB, client=Hung())
    emitter.count("RecordsSent")
    started = time.monotonic()
    emitter.close()
    assert time.monotonic() - started < 2.0
    assert emitter.failures == 1
    release.set()


def test_close_is_idempotent(cloudwatch: Any) -> None:
    spy = Spy(cloudwatch)
    emitter = MetricsEmitter(NAMESPACE, JOB, client=spy)
    emitter.count("RecordsSent", 3)
    emitter.close()
    emitter.close()
    assert len(spy.calls) == 1


# -- the background thread --------------------------------------------------------------


def test_the_thread_flushes_on_its_interval(cloudwatch: Any) -> None:
    emitter = MetricsEmitter(NAMESPACE, JOB, interval=0.1)  # default client, made in the thread
    emitter.start()
    try:
        emitter.count("RecordsSent", 42)
        deadline = time.monotonic() + 5
        while "RecordsSent" not in metric_names(cloudwatch) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert statistics(cloudwatch, "RecordsSent")["Sum"] == 42.0  # before close()
    finally:
        emitter.close()
    assert emitter.failures == 0


def test_close_sends_what_is_left(cloudwatch: Any) -> None:
    spy = Spy(cloudwatch)
    with MetricsEmitter(NAMESPACE, JOB, interval=3600, client=spy) as emitter:
        emitter.gauge("ProgressPercent", 100.0, "Percent")
    assert len(spy.calls) == 1
    assert statistics(cloudwatch, "ProgressPercent")["Maximum"] == 100.0


def test_start_twice_runs_one_thread(cloudwatch: Any) -> None:
    emitter = MetricsEmitter(NAMESPACE, JOB, interval=3600, client=cloudwatch)
    before = threading.active_count()
    emitter.start()
    emitter.start()
    assert threading.active_count() == before + 1
    emitter.close()


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        MetricsEmitter(NAMESPACE, JOB, interval=0)


# -- the documentation the dashboard is built from --------------------------------------


def test_docs_describe_every_metric_with_its_unit_and_kind() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in text.splitlines()
        if line.startswith("| `")
    }
    for spec in METRICS:
        assert spec.name in rows, f"{spec.name} is missing from {DOCS}"
        assert f"`{spec.unit}`" in rows[spec.name]
        assert spec.kind in rows[spec.name]
    assert "JobId" in text
    assert "get-metric-statistics" in text
    # The per-part dimension set: named, with each metric sent under it.
    for name in metrics.PER_PART:
        assert f"`{{JobId, {metrics.PART_DIMENSION}}}`" in rows[name], rows[name]
