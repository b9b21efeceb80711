"""Helpers of the tests of one object copied in parts (issue 16): the integration tier's
test_parts.py and the reliability tier's test_parts_faults.py.

The CLI as a child process on a ``Job`` (tests/integration/conftest.py): ``plan`` to the object
beside the CSV (or stdout), ``run --plan --part I`` (blocking or started), ``verify --plan``, a
part's checkpoint, and the oracle's check that partition I holds exactly part I.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3
import orjson

from tests.reliability.oracle import expected_records, read_partition

from .conftest import Job

__all__ = [
    "CHECKPOINT_EVERY",
    "PARTS",
    "assert_parts_exact",
    "cli",
    "job_metrics",
    "make_plan",
    "part_checkpoint_rows",
    "parts_csv",
    "plan_stdout",
    "plan_url",
    "run_part",
    "start_part",
    "verify_plan",
]

PARTS = 4
CHECKPOINT_EVERY = 500  # a part commits every 500 rows, in batches of 500 (processor.py)


def parts_csv(rows: int) -> bytes:
    """``rows`` rows; around each multiple of 1,000 rows a field holds newlines and a fake
    row (``"...\\n<id>,fake,row"``), and every 97th row a quoted comma."""
    out = ["id,name,note"]
    for i in range(1, rows + 1):
        if i % 1000 in (998, 999, 0, 1, 2):
            note = f'"cut near {i}\n{i + 1},fake,row\n"'
        elif i % 97 == 0:
            note = f'"a, b {i}"'
        else:
            note = f"plain {i}"
        out.append(f"{i},name{i},{note}")
    return ("\n".join(out) + "\n").encode()


def cli(
    job: Job, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``csv-to-kafka ARGS`` in the job's environment (plus ``env``), to its end."""
    return subprocess.run(
        [sys.executable, "-m", "csv_to_kafka.cli", *args],
        env=job.process_env(env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def plan_url(job: Job) -> str:
    return f"s3://{job.bucket}/{job.key}.plan.json"


def make_plan(job: Job, parts: int = PARTS, *extra: str) -> dict[str, Any]:
    """``plan EXTRA...`` of the job's object into ``parts`` parts, written to ``plan_url``; the
    plan."""
    done = cli(
        job,
        "plan",
        "--source",
        job.source,
        "--parts",
        str(parts),
        "--output",
        plan_url(job),
        *extra,
    )
    assert done.returncode == 0, done.stderr
    body = boto3.client("s3").get_object(Bucket=job.bucket, Key=f"{job.key}.plan.json")["Body"]
    plan: dict[str, Any] = json.loads(body.read())
    return plan


def plan_stdout(job: Job, parts: int = PARTS) -> subprocess.CompletedProcess[str]:
    """``plan --output -``: the plan on stdout (or the refusal on stderr)."""
    return cli(job, "plan", "--source", job.source, "--parts", str(parts), "--output", "-")


def part_args(job: Job, *extra: str) -> list[str]:
    """``run`` of a part: Job.args without --source (the plan names the object)."""
    args = job.args("--plan", plan_url(job), "--checkpoint-every", str(CHECKPOINT_EVERY), *extra)
    at = args.index("--source")
    del args[at : at + 2]
    return args


def _part(part: int | None) -> tuple[str, ...]:
    """--part I; none: the index comes from the environment (AWS_BATCH_JOB_ARRAY_INDEX)."""
    return ("--part", str(part)) if part is not None else ()


def run_part(
    job: Job,
    part: int | None,
    env: dict[str, str] | None = None,
    *,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``run --plan --part I EXTRA...`` to its end."""
    return subprocess.run(
        part_args(job, *_part(part), *extra),
        env=job.process_env(env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def start_part(
    job: Job, part: int | None, env: dict[str, str] | None = None, *, extra: tuple[str, ...] = ()
) -> Any:
    """``run --plan --part I EXTRA...`` started, with its output piped."""
    return subprocess.Popen(
        part_args(job, *_part(part), *extra),
        env=job.process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def verify_plan(job: Job, *extra: str) -> subprocess.CompletedProcess[str]:
    """``verify --plan`` of the job's topic."""
    return cli(
        job,
        "verify",
        "--plan",
        plan_url(job),
        "--topic",
        job.topic,
        "--bootstrap-servers",
        job.bootstrap,
        *extra,
    )


def part_checkpoint_rows(job: Job, part: int) -> int:
    """Rows committed by part ``part``, from its checkpoint (0 before its first)."""
    dynamodb = boto3.client("dynamodb")
    try:
        item = dynamodb.get_item(
            TableName=job.table,
            Key={"job_id": {"S": f"{job.job_id}.part-{part}"}},
            ConsistentRead=True,
        ).get("Item")
    except dynamodb.exceptions.ResourceNotFoundException:
        return 0  # the first run has not created the table yet
    return int(item["total_sent"]["N"]) if item else 0


def assert_parts_exact(job: Job, plan: dict[str, Any]) -> None:
    """Partition I holds exactly part I's rows (by the csv module, not the product), in order."""
    want = expected_records(job.data, job.source)
    ends = [part["first_line"] for part in plan["parts"][1:]] + [1 << 62]
    for part, end in zip(plan["parts"], ends, strict=True):
        rows = [r for r in want if part["first_line"] <= r["_source_line"] < end]
        assert len(rows) == part["rows"], f"part {part['index']}: plan counts {part['rows']}"
        got = [
            orjson.loads(value)
            for _offset, value in read_partition(
                job.bootstrap, job.topic, partition=part["index"], timeout=60
            )
        ]
        lines = [record["_source_line"] for record in got]
        assert len(lines) == len(set(lines)), f"duplicates in partition {part['index']}"
        assert got == rows, f"partition {part['index']} differs from part {part['index']}"


def job_metrics(job: Job) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(name, dimensions) of every metric in moto's CloudWatch of the job or one of its parts."""
    found = set()
    pages = (
        boto3.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace="CsvToKafka")
    )
    for page in pages:
        for metric in page["Metrics"]:
            dimensions = tuple(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"]))
            job_id = dict(dimensions).get("JobId", "")
            if job_id == job.job_id or job_id.startswith(f"{job.job_id}.part-"):
                found.add((metric["MetricName"], dimensions))
    return found
