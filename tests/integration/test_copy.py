"""A copy lands every row once, in order; verify agrees; reruns and targets behave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from .conftest import Job, make_csv


def test_copy_is_exact_and_verify_agrees(job: Job) -> None:
    job.put(make_csv(100_000))

    result = job.run()

    assert result.returncode == 0, result.stderr
    assert "complete: 100000 rows" in result.stdout
    job.assert_exact()
    check = job.verify()
    assert check.returncode == 0, check.stdout + check.stderr
    assert (
        "rows in CSV 100000, records in topic 100000, missing 0, duplicated 0, out of order 0"
        in check.stdout
    )
    cp = job.checkpoint()
    assert cp is not None
    assert cp["status"] == "COMPLETED"
    assert int(cp["total_sent"]) == 100_000
    assert int(cp["byte_offset"]) == len(job.data)


def test_rerun_of_a_completed_job_adds_nothing(job: Job) -> None:
    job.put(make_csv(2_000))
    assert job.run().returncode == 0

    again = job.run()

    assert again.returncode == 0, again.stderr
    assert "already complete" in again.stdout
    job.assert_exact()


def test_rerun_without_the_checkpoint_resumes_from_kafka(job: Job) -> None:
    """Kafka is the truth: with the DynamoDB item gone, a rerun still adds nothing."""
    job.put(make_csv(3_000))
    assert job.run().returncode == 0
    boto3.client("dynamodb").delete_item(TableName=job.table, Key={"job_id": {"S": job.job_id}})

    again = job.run()

    assert again.returncode == 0, again.stderr
    assert "0 sent in this run" in again.stdout
    job.assert_exact()


def test_header_only_and_crlf_bom_files(job: Job) -> None:
    job.put(b'\xef\xbb\xbfa,b\r\n1,2\r\n\r\n3,\r\n"x\r\ny",4')
    result = job.run()
    assert result.returncode == 0, result.stderr
    job.assert_exact()
    assert [r["a"] for r in job.records()] == ["1", "3", "x\r\ny"]


def test_custom_delimiter_quote_and_encoding(job: Job) -> None:
    data = "id;name\n1;'caf\u00e9; ok'\n2;plain\n".encode("latin-1")
    job.put(data)
    result = job.run("--delimiter", ";", "--quotechar", "'", "--encoding", "latin-1")
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in job.records()] == ["caf\u00e9; ok", "plain"]


def test_a_topic_with_several_partitions_is_refused(job: Job) -> None:
    job.put(make_csv(10))
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_topics([NewTopic(job.topic, num_partitions=3)])[job.topic].result()

    refused = job.run()
    assert refused.returncode == 2
    assert "3 partitions" in refused.stderr
    assert job.records() == []

    allowed = job.run("--allow-multiple-partitions")
    assert allowed.returncode == 0, allowed.stderr
    job.assert_exact()


def test_a_missing_topic_is_not_created_when_told_not_to(job: Job) -> None:
    job.put(make_csv(10))
    result = job.run("--no-create-topic")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


@pytest.mark.parametrize("client", ["confluent"])
def test_missing_object_is_a_configuration_error(job: Job) -> None:
    result = job.run()
    assert result.returncode == 2
    assert f"{job.source} does not exist" in result.stderr


@pytest.mark.parametrize("client", ["confluent"])
def test_verify_names_the_first_difference(job: Job) -> None:
    job.put(make_csv(500))
    assert job.run().returncode == 0
    job.put(make_csv(501))  # the CSV now has a row the topic lacks

    check = job.verify()

    assert check.returncode == 1
    assert "rows in CSV 501, records in topic 500, missing 1" in check.stdout
    last_line = job.expected()[-1]["_source_line"]
    assert f"first difference: line {last_line} of the CSV is not in the topic" in check.stdout


@pytest.mark.parametrize("client", ["confluent"])
def test_status_shows_the_checkpoint(job: Job) -> None:
    import json
    import subprocess
    import sys

    job.put(make_csv(1_000))
    assert job.run().returncode == 0
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "csv_to_kafka.cli",
            "status",
            "--job-id",
            job.job_id,
            "--checkpoint-table",
            job.table,
            "--json",
        ],
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["status"] == "COMPLETED"
    assert data["total_sent"] == 1000
    assert data["percent_done"] == 100.0


def test_a_record_of_exactly_the_size_limit_is_sent(job: Job) -> None:
    overhead = len(
        orjson.dumps({"a": "", "_source_line": 2, "_source_file": job.source}),
    )
    job.put(b"a\n" + b"x" * (1_000_000 - overhead) + b"\n")

    result = job.run()

    assert result.returncode == 0, result.stderr[-3000:]
    job.assert_exact()


@pytest.mark.parametrize("client", ["confluent"])
def test_metrics_reach_cloudwatch(job: Job) -> None:
    job.put(make_csv(3_000))
    namespace = f"CsvToKafkaTest-{job.job_id}"

    assert job.run("--metrics-namespace", namespace, "--checkpoint-every", "1000").returncode == 0

    cloudwatch = boto3.client("cloudwatch")
    names = {
        metric["MetricName"]
        for metric in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
        if {"Name": "JobId", "Value": job.job_id} in metric["Dimensions"]
    }
    assert {"RecordsSent", "BytesRead", "ProgressPercent", "CommitLatency"} <= names
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName="RecordsSent",
        Dimensions=[{"Name": "JobId", "Value": job.job_id}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )
    assert sum(point["Sum"] for point in stats["Datapoints"]) == 3_000


@pytest.mark.parametrize("client", ["confluent"])
def test_copy_in_one_process_is_exact(job: Job) -> None:
    """--no-parse-process: reading, parsing and producing in one process give the same topic."""
    job.put(make_csv(30_000))

    result = job.run("--no-parse-process", "--checkpoint-every", "7000")

    assert result.returncode == 0, result.stderr
    job.assert_exact()
