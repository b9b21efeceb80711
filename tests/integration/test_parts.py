"""One object copied in parts side by side (issue 16): ``plan``, ``run --plan --part``,
``verify --plan``, ``status`` of every part, against the real broker and moto.

The objects put a quoted field with newlines (and a fake row inside it) in the rows around
every multiple of 1,000 rows, where the plan's cuts can fall, so a cut taken at a newline
instead of a row boundary would split a row and show in the partitions.
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import boto3
import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.reliability.oracle import expected_records, read_partition

from .conftest import Job, kill

PARTS = 4
ROWS = 40_000


@pytest.fixture
def confluent_job(stack: dict[str, str], bucket: str) -> Job:
    """A job with the default client, where the client makes no difference."""
    return Job(env=stack, client="confluent", bucket=bucket, key=f"{uuid.uuid4()}.csv")


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
    return subprocess.run(
        [sys.executable, "-m", "csv_to_kafka.cli", *args],
        env=job.process_env(env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def plan_url(job: Job) -> str:
    return f"s3://{job.bucket}/{job.key}.plan.json"


def make_plan(job: Job, parts: int = PARTS) -> dict[str, Any]:
    done = cli(
        job, "plan", "--source", job.source, "--parts", str(parts), "--output", plan_url(job)
    )
    assert done.returncode == 0, done.stderr
    body = boto3.client("s3").get_object(Bucket=job.bucket, Key=f"{job.key}.plan.json")["Body"]
    plan: dict[str, Any] = json.loads(body.read())
    return plan


def part_args(job: Job, *extra: str) -> list[str]:
    """``run`` of a part: Job.args without --source (the plan names the object)."""
    args = job.args("--plan", plan_url(job), "--checkpoint-every", "500", *extra)
    at = args.index("--source")
    del args[at : at + 2]
    return args


def start_part(job: Job, part: int | None, env: dict[str, str] | None = None) -> Any:
    extra = ("--part", str(part)) if part is not None else ()
    return subprocess.Popen(
        part_args(job, *extra),
        env=job.process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def part_checkpoint_rows(job: Job, part: int) -> int:
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


def test_plan_cuts_at_row_boundaries(confluent_job: Job) -> None:
    job = confluent_job
    """Each part starts at the first byte of a row whose first field is the row's id, also
    where the row before it holds newlines; the parts tile the data rows."""
    job.put(parts_csv(8_000))
    plan = make_plan(job)
    parts = plan["parts"]
    assert [p["index"] for p in parts] == list(range(PARTS))
    assert plan["size"] == len(job.data)
    assert plan["columns"] == ["id", "name", "note"]
    assert parts[0]["first_byte"] == len(b"id,name,note\n")
    assert parts[-1]["end_byte"] == len(job.data)
    assert sum(p["rows"] for p in parts) == 8_000
    rows_before = 0
    for before, after in itertools.pairwise(parts):
        assert before["end_byte"] == after["first_byte"]
        start = after["first_byte"]
        rows_before += before["rows"]
        assert job.data[start - 1 : start] == b"\n"
        # the row that starts there is row rows_before + 1, and the row before it is quoted
        # over several lines (the cut is beside a multi-line field)
        assert job.data[start:].split(b",", 1)[0] == str(rows_before + 1).encode()
        assert b"fake,row" in job.data[start - 40 : start]
    # to stdout, the same plan
    shown = cli(job, "plan", "--source", job.source, "--parts", str(PARTS), "--output", "-")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["parts"] == parts


def test_four_parts_side_by_side_with_a_kill_9(job: Job) -> None:
    """Four parts run at once (part 3 takes its index from AWS_BATCH_JOB_ARRAY_INDEX); one of
    them is killed with SIGKILL at a random instant and run again: each partition holds exactly
    its part, verify --plan exits 0, status shows every part done."""
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    job.put(parts_csv(ROWS))
    plan = make_plan(job)
    procs = {i: start_part(job, i) for i in range(PARTS - 1)}
    procs[PARTS - 1] = start_part(job, None, env={"AWS_BATCH_JOB_ARRAY_INDEX": str(PARTS - 1)})
    victim = rng.randrange(PARTS)
    target = rng.randrange(500, plan["parts"][victim]["rows"] * 6 // 10)
    deadline = time.monotonic() + 120
    while procs[victim].poll() is None and time.monotonic() < deadline:
        if part_checkpoint_rows(job, victim) >= target:
            break
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.2))
    killed = procs[victim].poll() is None
    if killed:
        assert kill(procs[victim]) == -signal.SIGKILL
    for i, proc in procs.items():
        if i == victim and killed:
            continue
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    if killed:
        again = start_part(job, victim)
        out, err = again.communicate(timeout=240)
        assert again.returncode == 0, err
        # complete, or already complete when the kill came after the last commit
        assert f"job {job.job_id}.part-{victim} " in out
        assert "rows" in out

    assert_parts_exact(job, plan)
    verified = cli(
        job,
        "verify",
        "--plan",
        plan_url(job),
        "--topic",
        job.topic,
        "--bootstrap-servers",
        job.bootstrap,
        "--kafka-client",
        job.client,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"verify OK: 4 parts, rows in CSV {ROWS}, records in topic {ROWS}" in verified.stdout

    status = cli(job, "status", "--job-id", job.job_id, "--checkpoint-table", job.table, "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert [p["status"] for p in shown["parts"]] == ["COMPLETED"] * PARTS
    assert shown["total"] == {"parts": 4, "completed": 4, "rows": ROWS, "percent_done": 100.0}

    # a rerun of one part touches only that part
    rerun = subprocess.run(
        part_args(job, "--part", "1"), env=job.process_env(), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "already complete" in rerun.stdout


def test_verify_plan_finds_a_part_never_copied(confluent_job: Job) -> None:
    job = confluent_job
    """verify --plan is not a rubber stamp: a part that was never copied fails it, named."""
    job.put(parts_csv(4_000))
    make_plan(job, parts=2)
    ok = cli(job, *part_args(job, "--part", "0")[3:])
    assert ok.returncode == 0, ok.stderr
    verified = cli(
        job,
        "verify",
        "--plan",
        plan_url(job),
        "--topic",
        job.topic,
        "--bootstrap-servers",
        job.bootstrap,
    )
    assert verified.returncode == 1
    assert "part 1 (partition 1)" in verified.stdout
    assert "not in the topic" in verified.stdout


def test_a_replaced_object_stops_every_part_with_exit_3(confluent_job: Job) -> None:
    job = confluent_job
    job.put(parts_csv(3_000))
    make_plan(job, parts=2)
    job.put(parts_csv(3_001))
    for part in (0, 1):
        done = cli(job, *part_args(job, "--part", str(part))[3:])
        assert done.returncode == 3, done.stderr
        assert "the plan was made of ETag" in done.stderr
    verified = cli(
        job,
        "verify",
        "--plan",
        plan_url(job),
        "--topic",
        job.topic,
        "--bootstrap-servers",
        job.bootstrap,
    )
    assert verified.returncode == 3, verified.stderr


def test_part_out_of_range_and_missing_part_are_config_errors(confluent_job: Job) -> None:
    job = confluent_job
    job.put(parts_csv(2_000))
    make_plan(job, parts=2)
    out_of_range = cli(job, *part_args(job, "--part", "2")[3:])
    assert out_of_range.returncode == 2
    assert "--part 2 is out of range: the plan" in out_of_range.stderr
    batch = cli(job, *part_args(job)[3:], env={"AWS_BATCH_JOB_ARRAY_INDEX": "5"})
    assert batch.returncode == 2
    assert "--part 5 is out of range" in batch.stderr
    missing = cli(job, *part_args(job)[3:], env={"AWS_BATCH_JOB_ARRAY_INDEX": ""})
    assert missing.returncode == 2
    assert "AWS_BATCH_JOB_ARRAY_INDEX" in missing.stderr


def test_a_topic_with_fewer_partitions_than_parts_is_refused(job: Job) -> None:
    job.put(parts_csv(2_000))
    make_plan(job, parts=3)
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_topics([NewTopic(job.topic, num_partitions=2)])[job.topic].result()
    done = cli(job, *part_args(job, "--part", "0")[3:])
    assert done.returncode == 2, done.stderr
    assert f"topic {job.topic} has 2 partitions, but the plan has 3 parts" in done.stderr
    assert read_partition(job.bootstrap, job.topic, timeout=30) == []


def test_plan_refuses_compressed_objects_and_reports_a_bad_row(confluent_job: Job) -> None:
    job = confluent_job
    job.put(gzip.compress(parts_csv(100)))
    compressed = cli(job, "plan", "--source", job.source, "--parts", "2", "--output", "-")
    assert compressed.returncode == 2
    assert "gzip-compressed: a plan splits only plain objects" in compressed.stderr
    assert compressed.stdout == ""

    job.key = f"{uuid.uuid4()}.csv"
    job.put(b"a,b\n1,2\n3,4,5\n")
    bad = cli(job, "plan", "--source", job.source, "--parts", "2", "--output", "-")
    assert bad.returncode == 3
    assert "line 3" in bad.stderr
    assert bad.stdout == ""
