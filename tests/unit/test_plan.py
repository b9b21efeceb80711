"""plan: cuts at row boundaries, the plan's JSON, the part's config and status (moto in-process)."""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from csv_to_kafka._retry import RetryPolicy
from csv_to_kafka.check import check
from csv_to_kafka.checkpoint import Checkpoint, Status
from csv_to_kafka.cli import build_config, build_parser, main
from csv_to_kafka.config import Config
from csv_to_kafka.errors import BadInputError, ConfigError, ObjectChangedError
from csv_to_kafka.plan import (
    Plan,
    load_plan,
    make_plan,
    part_config,
    part_index,
    part_job_id,
    status_of_parts,
    write_plan,
)
from csv_to_kafka.source import ObjectInfo, S3Object

SOURCE = "s3://bkt/data.csv"
RETRY = RetryPolicy(total_seconds=1)


def csv_rows(rows: int) -> bytes:
    out = ["id,note"]
    for i in range(1, rows + 1):
        out.append(f'{i},"two\nlines {i}"' if i % 1000 in (0, 1) else f"{i},plain")
    return ("\n".join(out) + "\n").encode()


def config(*extra: str) -> Config:
    args = build_parser().parse_args(["check", "--source", SOURCE, *extra])
    return build_config(args, {})


def run_config(*extra: str) -> Config:
    args = build_parser().parse_args(
        [
            "run",
            "--source",
            SOURCE,
            "--topic",
            "t",
            "--bootstrap-servers",
            "b:9092",
            "--job-id",
            "J",
            "--checkpoint-table",
            "tbl",
            *extra,
        ]
    )
    return build_config(args, {})


def test_cuts_fall_after_whole_rows_and_tile_the_object(s3: Any) -> None:
    data = csv_rows(5_000)
    s3.put_object(Bucket="bkt", Key="data.csv", Body=data)
    plan, report = make_plan(config(), 3)
    assert report.rows == 5_000
    assert plan.rows == 5_000
    assert plan.size == len(data)
    assert plan.columns == ["id", "note"]
    assert plan.parts[0].first_byte == len(b"id,note\n")
    assert plan.parts[0].first_line == 2
    assert plan.parts[-1].end_byte == len(data)
    rows_before = 0
    for before, after in itertools.pairwise(plan.parts):
        assert before.end_byte == after.first_byte
        rows_before += before.rows
        assert data[after.first_byte - 1 : after.first_byte] == b"\n"
        assert data[after.first_byte :].startswith(b"%d," % (rows_before + 1))
        # the line count before the cut includes the rows' inner newlines
        assert after.first_line == data[: after.first_byte].count(b"\n") + 1


def test_fewer_batches_than_parts_leaves_empty_parts_at_the_end(s3: Any) -> None:
    data = b"a,b\n1,2\n3,4\n"
    s3.put_object(Bucket="bkt", Key="data.csv", Body=data)
    plan, _report = make_plan(config(), 3)
    assert [p.rows for p in plan.parts] == [2, 0, 0]
    assert plan.parts[1].first_byte == plan.parts[1].end_byte == len(data)
    assert plan.parts[2].first_line == 4


def test_a_bad_row_and_a_compressed_object_are_refused(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="data.csv", Body=b"a,b\n1,2\n3\n")
    with pytest.raises(BadInputError, match="line 3"):
        make_plan(config(), 2)
    s3.put_object(Bucket="bkt", Key="data.csv", Body=b"\x1f\x8b\x08\x00rest")
    with pytest.raises(ConfigError, match="gzip-compressed"):
        make_plan(config(), 2)
    with pytest.raises(ConfigError, match="--parts must be 1 to"):
        make_plan(config(), 0)


def s3_requests(action: Callable[[S3Object], object]) -> list[str]:
    """The S3 requests ``action`` makes through an S3Object, by a botocore event hook."""
    client = boto3.client("s3")
    made: list[str] = []
    client.meta.events.register("before-call.s3", lambda model, **_: made.append(model.name))
    action(S3Object("bkt", "data.csv", retry=RETRY, client=client))
    return made


def test_plan_makes_exactly_checks_s3_requests_one_head_one_get(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="data.csv", Body=csv_rows(20_000))
    checked = s3_requests(lambda obj: check(config(), s3=obj))
    assert checked == ["HeadObject", "GetObject"]
    assert s3_requests(lambda obj: make_plan(config(), 4, s3=obj)) == checked

    # A compressed object is refused by the first bytes of that same GET.
    s3.put_object(Bucket="bkt", Key="data.csv", Body=gzip.compress(csv_rows(100)))

    def refused(obj: S3Object) -> None:
        with pytest.raises(ConfigError, match="gzip-compressed"):
            make_plan(config(), 2, s3=obj)

    assert s3_requests(refused) == checked
    # Told it is compressed, plan needs no GET to refuse it.
    with pytest.raises(ConfigError, match="gzip-compressed"):
        make_plan(config("--input-compression", "gzip"), 2)


def test_the_plan_round_trips_through_s3_and_a_file(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket="bkt", Key="data.csv", Body=csv_rows(2_500))
    plan, _report = make_plan(config(), 2)
    write_plan(plan, "s3://bkt/plan.json", RETRY)
    assert load_plan("s3://bkt/plan.json", RETRY) == plan
    write_plan(plan, str(tmp_path / "plan.json"), RETRY)
    assert load_plan(str(tmp_path / "plan.json"), RETRY) == plan
    with pytest.raises(ConfigError, match="cannot read the plan"):
        load_plan("s3://bkt/absent.json", RETRY)
    with pytest.raises(ConfigError, match="cannot read the plan"):
        load_plan(str(tmp_path / "absent.json"), RETRY)
    (tmp_path / "bad.json").write_text('{"format": 1, "parts": 3}')
    with pytest.raises(ConfigError, match="is not a csv-to-kafka plan"):
        load_plan(str(tmp_path / "bad.json"), RETRY)
    (tmp_path / "v2.json").write_text('{"format": 2}')
    with pytest.raises(ConfigError, match="of format 1"):
        load_plan(str(tmp_path / "v2.json"), RETRY)


def test_plan_command_writes_to_stdout(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    s3.put_object(Bucket="bkt", Key="data.csv", Body=csv_rows(100))
    code = main(["plan", "--source", SOURCE, "--parts", "2", "--output", "-", "--progress", "none"])
    assert code == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["parts"][0]["rows"] == 100
    assert "2 parts" in out.err


def plan_of(parts: int = 3) -> Plan:
    plan_parts = [
        {"index": i, "first_byte": 10 + 100 * i, "end_byte": 110 + 100 * i, "first_line": 2 + i}
        for i in range(parts)
    ]
    text = json.dumps(
        {
            "source": SOURCE,
            "etag": '"e"',
            "version_id": None,
            "size": 10 + 100 * parts,
            "columns": ["a"],
            "parts": [{**p, "rows": 1} for p in plan_parts],
            "format": 1,
        }
    )
    return Plan.from_json(text, "test")


def test_part_config_gives_the_part_its_job_id_and_partition() -> None:
    plan = plan_of()
    derived = part_config(run_config(), plan, 2)
    assert derived.job_id == "J.part-2" == part_job_id("J", 2)
    assert derived.transactional_id == "csv-to-kafka-J.part-2"
    assert (derived.partition, derived.plan_partitions, derived.part) == (2, 3, 2)
    with pytest.raises(ConfigError, match="--part 3 is out of range"):
        part_config(run_config(), plan, 3)
    other = run_config()
    other = type(other)(**{**other.__dict__, "source": type(other.source)("bkt", "other.csv")})
    with pytest.raises(ConfigError, match="is not the plan's object"):
        part_config(other, plan, 0)


def test_part_index_from_the_flag_or_aws_batch() -> None:
    assert part_index(run_config("--part", "1"), {"AWS_BATCH_JOB_ARRAY_INDEX": "7"}) == 1
    assert part_index(run_config(), {"AWS_BATCH_JOB_ARRAY_INDEX": "7"}) == 7
    with pytest.raises(ConfigError, match="needs --part"):
        part_index(run_config(), {})
    with pytest.raises(ConfigError, match="must be a number"):
        part_index(run_config(), {"AWS_BATCH_JOB_ARRAY_INDEX": "x"})
    with pytest.raises(ConfigError, match="--part must be 0 or more"):
        run_config("--part", "-1")


def test_the_plan_pins_the_object_version() -> None:
    plan = plan_of()
    plan.check_object(ObjectInfo(uri=SOURCE, etag='"e"', version_id=None, size=310))
    with pytest.raises(ObjectChangedError, match="the plan was made of ETag"):
        plan.check_object(ObjectInfo(uri=SOURCE, etag='"f"', version_id=None, size=310))


class Store:
    def __init__(self, checkpoints: dict[str, Checkpoint]) -> None:
        self.checkpoints = checkpoints

    def load(self, job_id: str) -> Checkpoint | None:
        return self.checkpoints.get(job_id)


def checkpoint(job_id: str, status: Status, done: int, total: int, rows: int) -> Checkpoint:
    return Checkpoint(
        job_id=job_id,
        status=status,
        source=SOURCE,
        topic="t",
        etag='"e"',
        version_id=None,
        last_line=rows + 1,
        total_sent=rows,
        byte_offset=done,
        kafka_offset=rows - 1,
        total_bytes=total,
        rows_per_second=0.0,
        bytes_per_second=0.0,
        started_at="s",
        updated_at="u",
    )


def test_status_lists_every_part_and_the_total(tmp_path: Path) -> None:
    store = Store(
        {
            "J.part-0": checkpoint("J.part-0", Status.COMPLETED, 100, 100, 10),
            "J.part-1": checkpoint("J.part-1", Status.RUNNING, 50, 100, 5),
        }
    )
    shown = status_of_parts(store, "J", None, as_json=True)  # type: ignore[arg-type]
    assert shown is not None
    data = json.loads(shown)
    assert [p["status"] for p in data["parts"]] == ["COMPLETED", "RUNNING"]
    assert data["total"] == {"parts": 2, "completed": 1, "rows": 15, "percent_done": 75.0}
    path = tmp_path / "plan.json"
    path.write_text(plan_of(3).to_json())
    text = status_of_parts(store, "J", str(path), as_json=False)  # type: ignore[arg-type]
    assert text is not None
    assert "1 of 3 parts done, 15 rows, 50.0% done" in text
    assert "part 2: NOT STARTED" in text
    assert status_of_parts(Store({}), "J", None, as_json=False) is None  # type: ignore[arg-type]


def test_a_plan_refuses_a_key_column_a_list_of_objects_and_a_negative_part() -> None:
    """Issue 16's semantics: a key column and parts are refused (two parts can hold one key),
    a plan is of one object, and a part index is 0 or more: each a ConfigError (exit 2)."""
    plan = ("--plan", "s3://bkt/big.csv.plan.json")
    with pytest.raises(ConfigError, match="--key-column and --plan cannot go together"):
        run_config(*plan, "--part", "0", "--key-column", "a")
    with pytest.raises(ConfigError, match="--part must be 0 or more"):
        run_config(*plan, "--part", "-1")
    with pytest.raises(ConfigError, match="--plan copies one object"):
        run_config(*plan, "--part", "0", "--source", "s3://bkt/other.csv")
    assert run_config(*plan, "--part", "0").part == 0
