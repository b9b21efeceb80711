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
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.reliability.oracle import read_partition

from .conftest import Job, assert_no_parser_left
from .parts import (
    CHECKPOINT_EVERY,
    PARTS,
    assert_parts_exact,
    cli,
    job_metrics,
    make_plan,
    part_checkpoint_rows,
    parts_csv,
    plan_stdout,
    run_part,
    start_part,
    verify_plan,
)

ROWS = 40_000
FAILPOINT_ENV = "CSV_TO_KAFKA_FAILPOINTS"
FAILPOINTS = ("in-transaction", "after-commit", "after-checkpoint")  # _failpoint.py


@pytest.fixture
def confluent_job(stack: dict[str, str], bucket: str) -> Job:
    """A job with the default client, where the client makes no difference."""
    return Job(env=stack, client="confluent", bucket=bucket, key=f"{uuid.uuid4()}.csv")


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
    shown = plan_stdout(job)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["parts"] == parts


def test_four_parts_side_by_side_killed_at_named_points(job: Job) -> None:
    """Four parts run at once (part 3 takes its index from AWS_BATCH_JOB_ARRAY_INDEX); three of
    them, drawn by the seed, die by SIGKILL at a failpoint (_failpoint.py) mid-way through their
    range: one with records sent and not committed (in-transaction), one after a Kafka commit
    whose checkpoint is not written (after-commit), one after a checkpoint (after-checkpoint).
    Each exits -9 with rows still to copy; run again side by side, each partition holds exactly
    its part, verify --plan exits 0 and status shows every part done."""
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    job.put(parts_csv(ROWS))
    plan = make_plan(job)
    points: list[str | None] = [*FAILPOINTS, None]
    rng.shuffle(points)
    crashes: dict[int, str] = {}
    for index, point in enumerate(points):
        if point is None:
            continue
        # A commit every CHECKPOINT_EVERY rows (batches of as many): a part of n rows reaches
        # in-transaction and after-commit at least n // CHECKPOINT_EVERY times. Checkpoint
        # writes can coalesce, so after-checkpoint counts low (the first is the start's).
        commits = plan["parts"][index]["rows"] // CHECKPOINT_EVERY
        nth = rng.randrange(2, 4) if point == "after-checkpoint" else rng.randrange(2, commits)
        crashes[index] = f"{point}={nth}"
    print(f"failpoints {crashes}")

    def env(index: int) -> dict[str, str]:
        crash = {FAILPOINT_ENV: crashes[index]} if index in crashes else {}
        if index == PARTS - 1:
            return {**crash, "AWS_BATCH_JOB_ARRAY_INDEX": str(index)}
        return crash

    procs = {i: start_part(job, i if i < PARTS - 1 else None, env=env(i)) for i in range(PARTS)}
    for index, proc in procs.items():
        _out, err = proc.communicate(timeout=240)
        if index in crashes:
            assert proc.returncode == -signal.SIGKILL, f"{crashes[index]}: {err[-2000:]}"
            assert_no_parser_left(proc.pid)
            copied = part_checkpoint_rows(job, index)
            assert copied < plan["parts"][index]["rows"], f"{crashes[index]} came after the end"
        else:
            assert proc.returncode == 0, err
    again = {i: start_part(job, i) for i in crashes}
    for index, proc in again.items():
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert f"job {job.job_id}.part-{index} " in out
        assert "already complete" not in out

    assert_parts_exact(job, plan)
    verified = verify_plan(job, "--kafka-client", job.client)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"verify OK: 4 parts, rows in CSV {ROWS}, records in topic {ROWS}" in verified.stdout

    status = cli(job, "status", "--job-id", job.job_id, "--checkpoint-table", job.table, "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert [p["status"] for p in shown["parts"]] == ["COMPLETED"] * PARTS
    assert shown["total"] == {"parts": 4, "completed": 4, "rows": ROWS, "percent_done": 100.0}

    # a rerun of one part touches only that part
    rerun = run_part(job, 1)
    assert rerun.returncode == 0, rerun.stderr
    assert "already complete" in rerun.stdout


def part_statistic(job: Job, metric: str, part: int, statistic: str) -> float:
    """``statistic`` of ``metric`` of part ``part`` (JobId = J.part-I) over the last hour."""
    now = datetime.now(UTC)
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace="CsvToKafka",
        MetricName=metric,
        Dimensions=[{"Name": "JobId", "Value": f"{job.job_id}.part-{part}"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
        Period=3600,
        Statistics=[statistic],
    )["Datapoints"]
    assert len(points) == 1, points
    return float(points[0][statistic])


def test_verify_plan_finds_a_part_never_copied(confluent_job: Job) -> None:
    job = confluent_job
    """verify --plan is not a rubber stamp: a part that was never copied fails it, named."""
    job.put(parts_csv(4_000))
    plan = make_plan(job, parts=2)
    ok = run_part(job, 0)
    assert ok.returncode == 0, ok.stderr
    # Part 0's metrics (docs/metrics.md, "A job in parts"): all under its own job id; its
    # progress also under {JobId: the job, Part: 0}; its counters also under the job's id.
    metrics = job_metrics(job)
    part0 = (("JobId", f"{job.job_id}.part-0"),)
    assert ("ProgressPercent", part0) in metrics
    assert ("RecordsSent", part0) in metrics
    assert ("ProgressPercent", (("JobId", job.job_id), ("Part", "0"))) in metrics
    assert ("RecordsSent", (("JobId", job.job_id),)) in metrics
    assert ("ProgressPercent", (("JobId", job.job_id),)) not in metrics
    # What the stack's per-part no-progress alarm (modules/monitoring, parts = N) reads: the
    # part's rows, and its progress, which reaches 100 when the part is done (so it stays OK).
    rows0 = plan["parts"][0]["rows"]
    assert part_statistic(job, "RecordsSent", 0, "Sum") == rows0
    assert part_statistic(job, "ProgressPercent", 0, "Maximum") == 100.0
    verified = verify_plan(job)
    assert verified.returncode == 1
    assert "part 1 (partition 1)" in verified.stdout
    assert "not in the topic" in verified.stdout


def test_a_replaced_object_stops_every_part_with_exit_3(confluent_job: Job) -> None:
    job = confluent_job
    job.put(parts_csv(3_000))
    make_plan(job, parts=2)
    job.put(parts_csv(3_001))
    for part in (0, 1):
        done = run_part(job, part)
        assert done.returncode == 3, done.stderr
        assert "the plan was made of ETag" in done.stderr
    verified = verify_plan(job)
    assert verified.returncode == 3, verified.stderr


def test_part_out_of_range_and_missing_part_are_config_errors(confluent_job: Job) -> None:
    job = confluent_job
    job.put(parts_csv(2_000))
    make_plan(job, parts=2)
    out_of_range = run_part(job, 2)
    assert out_of_range.returncode == 2
    assert "--part 2 is out of range: the plan" in out_of_range.stderr
    batch = run_part(job, None, env={"AWS_BATCH_JOB_ARRAY_INDEX": "5"})
    assert batch.returncode == 2
    assert "--part 5 is out of range" in batch.stderr
    missing = run_part(job, None, env={"AWS_BATCH_JOB_ARRAY_INDEX": ""})
    assert missing.returncode == 2
    assert "AWS_BATCH_JOB_ARRAY_INDEX" in missing.stderr


def test_a_topic_with_fewer_partitions_than_parts_is_refused(job: Job) -> None:
    job.put(parts_csv(2_000))
    make_plan(job, parts=3)
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_topics([NewTopic(job.topic, num_partitions=2)])[job.topic].result()
    done = run_part(job, 0)
    assert done.returncode == 2, done.stderr
    assert f"topic {job.topic} has 2 partitions, but the plan has 3 parts" in done.stderr
    assert read_partition(job.bootstrap, job.topic, timeout=30) == []


def test_plan_refuses_compressed_objects_and_reports_a_bad_row(confluent_job: Job) -> None:
    job = confluent_job
    job.put(gzip.compress(parts_csv(100)))
    compressed = plan_stdout(job, 2)
    assert compressed.returncode == 2
    assert "gzip-compressed: a plan splits only plain objects" in compressed.stderr
    assert compressed.stdout == ""

    job.key = f"{uuid.uuid4()}.csv"
    job.put(b"a,b\n1,2\n3,4,5\n")
    bad = plan_stdout(job, 2)
    assert bad.returncode == 3
    assert "line 3" in bad.stderr
    assert bad.stdout == ""
