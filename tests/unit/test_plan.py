"""plan: cuts at row boundaries, the plan's JSON, the part's config and status (moto in-process)."""

from __future__ import annotations

import dataclasses
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
    # a plan --errors-tolerance all: rows planned are good rows (as total_sent), bad ones apart
    tolerant = plan_of(3)
    tolerant.parts[1] = dataclasses.replace(tolerant.parts[1], bad_rows=4)
    path.write_text(dataclasses.replace(tolerant, errors_tolerance="all").to_json())
    shown = status_of_parts(store, "J", str(path), as_json=True)  # type: ignore[arg-type]
    assert shown is not None
    total = json.loads(shown)["total"]
    assert (total["rows"], total["rows_planned"], total["bad_rows_planned"]) == (15, 3, 4)


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


def ragged_csv(good: int) -> tuple[bytes, dict[int, bytes]]:
    """``good`` good rows; right after every 1,000th good row (where a batch of 1,000 ends)
    a bad row of the wrong field count, right before it one invalid in UTF-8, and every 333rd
    row has a quoted newline: (the object, {line: bad row's bytes})."""
    out, bad, line = [b"id,note\n"], {}, 2
    for i in range(1, good + 1):
        if i % 1000 == 999:
            bad[line] = b"%d,caf\xe9 latin-1" % i
            out.append(bad[line] + b"\n")
            line += 1
        row = b'%d,"two\nlines"' % i if i % 333 == 0 else b"%d,plain" % i
        out.append(row + b"\n")
        line += row.count(b"\n") + 1
        if i % 1000 == 0:
            bad[line] = b"%d,ragged,row" % i
            out.append(bad[line] + b"\n")
            line += 1
    return b"".join(out), bad


def test_errors_tolerance_all_cuts_between_rows_around_bad_rows(s3: Any) -> None:
    """plan --errors-tolerance all goes on past bad rows (field count, encoding); each cut is
    the first byte of a row (here: of the bad row right after a batch of 1,000), never inside
    a bad row; each part counts its good rows and its bad rows, and the plan its tolerance."""
    data, bad = ragged_csv(5_000)
    s3.put_object(Bucket="bkt", Key="data.csv", Body=data)
    with pytest.raises(BadInputError, match=f"line {min(bad)},"):  # without it: as before
        make_plan(config(), 3)
    plan, report = make_plan(config("--errors-tolerance", "all"), 3)
    assert plan.errors_tolerance == "all"
    assert (plan.rows, plan.bad_rows, report.rows) == (5_000, len(bad), 5_000)
    assert [(r["line"], r["reason"]) for r in report.bad_rows] == [
        (line, "encoding" if b"\xe9" in row else "field-count") for line, row in bad.items()
    ]
    offsets = {line: data.index(b"\n" + row + b"\n") + 1 for line, row in bad.items()}
    assert [r["byte_offset"] for r in report.bad_rows] == list(offsets.values())
    assert plan.parts[0].first_byte == len(b"id,note\n")
    assert plan.parts[-1].end_byte == len(data)
    for before, after in itertools.pairwise(plan.parts):
        assert before.end_byte == after.first_byte
        assert after.first_line == data[: after.first_byte].count(b"\n") + 1
        # the cut is the first byte of the ragged row after a batch's 1,000th good row
        assert after.first_byte == offsets[after.first_line]
        assert bad[after.first_line].endswith(b",ragged,row")
    for part in plan.parts:
        inside = [
            line for line, offset in offsets.items() if part.first_byte <= offset < part.end_byte
        ]
        # no bad row straddles a cut: each one lies wholly inside its part
        assert all(offsets[line] + len(bad[line]) < part.end_byte for line in inside)
        assert part.bad_rows == len(inside)
        text = data[part.first_byte : part.end_byte]
        rows = text.count(b"\n") - text.count(b'"two\nlines"')  # one line each, but those
        assert part.rows == rows - len(inside)  # good rows only
    assert sum(part.bad_rows for part in plan.parts) == len(bad)
    assert Plan.from_json(plan.to_json(), "test") == plan
    assert json.loads(plan.to_json())["errors_tolerance"] == "all"

    # past --max-bad-rows: exit 3 as check, naming the bad row over the limit
    third = sorted(bad)[2]
    with pytest.raises(BadInputError, match=rf"line {third},.*more than 2 bad rows"):
        make_plan(config("--errors-tolerance", "all", "--max-bad-rows", "2"), 3)


def test_run_of_a_plan_with_bad_rows_needs_errors_tolerance_all(s3: Any) -> None:
    data = csv_rows(2_500).replace(b"\n10,plain\n", b"\n10,plain\n10,ragged,row\n")
    s3.put_object(Bucket="bkt", Key="data.csv", Body=data)
    plan, _report = make_plan(config("--errors-tolerance", "all"), 2)
    assert [(p.rows, p.bad_rows) for p in plan.parts] == [(2_000, 1), (500, 0)]
    for index in (0, 1):  # refused for every part, also one without a bad row
        with pytest.raises(ConfigError, match=r"counts 1 bad rows.*needs --errors-tolerance all"):
            part_config(run_config(), plan, index)
    tolerant = run_config("--errors-tolerance", "all", "--dlq-topic", "dlq")
    assert part_config(tolerant, plan, 1).partition == 1
    # a clean object planned with the option: nothing to refuse
    s3.put_object(Bucket="bkt", Key="data.csv", Body=csv_rows(100))
    clean, _report = make_plan(config("--errors-tolerance", "all"), 2)
    assert part_config(run_config(), clean, 0).job_id == "J.part-0"


def test_plan_command_takes_errors_tolerance_from_flag_or_env(
    s3: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, bad = ragged_csv(1_500)
    s3.put_object(Bucket="bkt", Key="data.csv", Body=data)
    args = ["plan", "--source", SOURCE, "--parts", "2", "--output", "-", "--progress", "none"]
    assert main(args) == 3
    assert f"line {min(bad)}, byte offset" in capsys.readouterr().err
    assert main([*args, "--errors-tolerance", "all"]) == 0
    out = capsys.readouterr()
    written = json.loads(out.out)
    assert written["errors_tolerance"] == "all"
    assert sum(p["bad_rows"] for p in written["parts"]) == len(bad) == 2
    assert "2 BAD ROWS (dead letters)" in out.err
    assert f"bad row at line {min(bad)}, byte " in out.err
    monkeypatch.setenv("CSV_TO_KAFKA_ERRORS_TOLERANCE", "all")
    monkeypatch.setenv("CSV_TO_KAFKA_MAX_BAD_ROWS", "1")
    assert main(args) == 3
    assert "more than 1 bad rows (--max-bad-rows)" in capsys.readouterr().err


def test_plan_with_the_runs_schema_counts_a_misfit_as_a_bad_row(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan --schema (the runs' schema) counts a field that does not fit its type as run does:
    a bad row with --errors-tolerance all, else exit 3 at it; and an error that loses the
    parser's place (a quote never closed) stops plan even with --errors-tolerance all."""
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"id": {"type": "integer"}}}))
    data = csv_rows(3_000).replace(b"\n1500,plain\n", b"\n1500,plain\nlots,plain\n")
    s3.put_object(Bucket="bkt", Key="data.csv", Body=data)
    plan, report = make_plan(config("--errors-tolerance", "all", "--schema", str(schema)), 2)
    assert (plan.rows, plan.bad_rows) == (3_000, 1)
    line = data[: data.index(b"\nlots,") + 1].count(b"\n") + 1
    assert [(r["line"], r["reason"]) for r in report.bad_rows] == [(line, "type")]
    plan, _report = make_plan(config("--errors-tolerance", "all"), 2)  # no schema: it fits
    assert (plan.rows, plan.bad_rows) == (3_001, 0)
    with pytest.raises(BadInputError, match=f"line {line},"):
        make_plan(config("--schema", str(schema)), 2)

    s3.put_object(Bucket="bkt", Key="data.csv", Body=data + b'9,"never closed\n')
    with pytest.raises(BadInputError, match="quote is never closed"):
        make_plan(config("--errors-tolerance", "all"), 2)
