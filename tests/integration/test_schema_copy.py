"""--schema in run, check and verify against the real broker (issue 15, part 3)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from .conftest import Job

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "amount": {"type": ["number", "null"]},
        "active": {"type": "boolean"},
    },
    "required": ["id"],
}
DATA = b'id,amount,active,note\n1,12.50,yes,"a, b"\n2,,no,plain\n3,NA,true,x\n'


def test_typed_copy_and_verify(job: Job, tmp_path: Path) -> None:
    """Typed values in the topic, from a schema in S3; verify compares typed values."""
    boto3.client("s3").put_object(
        Bucket=job.bucket, Key=f"{job.key}.schema.json", Body=json.dumps(SCHEMA).encode()
    )
    schema = f"s3://{job.bucket}/{job.key}.schema.json"
    job.put(DATA)
    result = job.run("--schema", schema, "--null-value", "NA")
    assert result.returncode == 0, result.stderr
    records = job.records()
    assert [(r["id"], r["amount"], r["active"]) for r in records] == [
        (1, 12.5, True),
        (2, None, False),
        (3, None, True),
    ]
    assert records[0]["note"] == "a, b"
    verified = job.verify(env={"CSV_TO_KAFKA_SCHEMA": schema, "CSV_TO_KAFKA_NULL_VALUES": "NA"})
    assert verified.returncode == 0, verified.stdout + verified.stderr
    untyped = job.verify()  # the topic holds typed values: without the schema, they differ
    assert untyped.returncode == 1, untyped.stdout


def test_a_misfit_is_exit_3_naming_the_column_rows_before_copied(job: Job, tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    data = b"id,amount,active,note\n" + b"".join(b"%d,1.5,t,n\n" % i for i in range(1, 2001))
    bad_at = len(data)
    data += b"2001,1.5,maybe,n\n2002,1,t,n\n"
    job.put(data)
    result = job.run("--schema", str(path), "--checkpoint-every", "500")
    assert result.returncode == 3, result.stderr
    assert "column 'active': 'maybe' is not a boolean" in result.stderr
    assert f"line 2002, byte offset {bad_at}" in result.stderr
    assert [r["id"] for r in job.records()] == list(range(1, 2001))
    checked = job.command("check", "--schema", str(path))
    assert checked.returncode == 3, checked.stderr
    assert "column 'active'" in checked.stderr + checked.stdout


def test_schema_mistakes_are_exit_2(job: Job, tmp_path: Path) -> None:
    job.put(DATA)
    cases = {
        "{not json": "is not JSON",
        json.dumps({**SCHEMA, "required": ["ident"]}): "required column 'ident'",
        json.dumps({**SCHEMA, "properties": {"id": {"type": "date"}}}): "date",
        json.dumps({**SCHEMA, "additionalProperties": False}): "column 'note'",
    }
    for text, message in cases.items():
        path = tmp_path / "schema.json"
        path.write_text(text)
        checked = job.command("check", "--schema", str(path))
        assert checked.returncode == 2, (text, checked.stderr)
        assert message in checked.stderr, (text, checked.stderr)
    result = job.run("--schema", str(path))
    assert result.returncode == 2, result.stderr
    assert "column 'note'" in result.stderr
    assert job.records() == []


def test_a_typed_key_column_keys_by_the_records_json_text(job: Job, tmp_path: Path) -> None:
    from .test_keys import java_partition, read_all, verify

    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    job.put(b"id,amount,active,note\n+007,12.50,yes,a\n8,1,no,b\n9,,t,c\n")
    keyed = ("--schema", str(path), "--key-column", "id", "--key-column", "amount")
    result = job.run(*keyed, "--partitions", "3")
    assert result.returncode == 0, result.stderr
    got = sorted((v["_source_line"], k, p) for p, _o, k, v in read_all(job, 3))
    want_keys = [b"7|12.50", b"8|1", b"9|"]
    assert got == [
        (line, key, java_partition(key, 3)) for line, key in zip([2, 3, 4], want_keys, strict=True)
    ]
    verified = verify(job, *keyed)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_job_keeps_its_schema(job: Job, tmp_path: Path) -> None:
    """The schema's digest is kept with the checkpoint at the first run: a resumed run with
    another schema (or none) stops, exit 2, naming both; the same document laid out otherwise,
    elsewhere, resumes."""
    first = tmp_path / "schema.json"
    first.write_text(json.dumps(SCHEMA))
    data = b"id,amount,active,note\n" + b"".join(b"%d,1.5,t,n\n" % i for i in range(1, 1001))
    job.put(data + b"1001,1.5,maybe,n\n1002,1,t,n\n")  # stops at line 1002 (exit 3), resumable
    assert job.run("--schema", str(first)).returncode == 3
    cp = job.checkpoint()
    assert cp is not None
    assert cp["schema"] == str(first)
    assert len(cp["schema_sha256"]) == 64

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**SCHEMA, "properties": {"id": {"type": "string"}}}))
    changed = job.run("--schema", str(other))
    assert changed.returncode == 2, changed.stderr
    assert f"started with --schema {first} (sha256 {cp['schema_sha256'][:12]})" in changed.stderr
    assert f"not --schema {other} (sha256 " in changed.stderr
    dropped = job.run()
    assert dropped.returncode == 2, dropped.stderr
    assert "not no --schema" in dropped.stderr

    same = tmp_path / "moved.json"
    same.write_text(json.dumps(SCHEMA, indent=4, sort_keys=True))
    resumed = job.run("--schema", str(same))  # resumes, and stops at the same row again
    assert resumed.returncode == 3, resumed.stderr
    assert "column 'active': 'maybe' is not a boolean" in resumed.stderr
    assert [r["id"] for r in job.records()] == list(range(1, 1001))
