"""``csv-to-kafka infer-schema`` against the moto server: the schema printed, from the rows read
by run's parser (compressed objects included); a bad row and a bad flag get their exit codes;
over a prefix of mixed objects, the types widened across them and the schema one run takes."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest
import zstandard

from csv_to_kafka.schema import parse_schema

from .conftest import Job
from .test_objects import Prefix, _gzip_members

pytestmark = pytest.mark.parametrize("client", ["confluent"])  # no Kafka: one client is enough

DATA = (
    b"id,amount,active,comment,code,when\n"
    b"1,12.50,true,,007,2026-12-04\n"
    b'2,-3,FALSE,"said ""hi""",x1,2026-12-05\n'
    b"3,1e5,true,,42,2026-12-06\n"
)


def infer(job: Job, *extra: str) -> subprocess.CompletedProcess[str]:
    return job.command("infer-schema", *extra, timeout=120)


def test_it_prints_a_schema_the_copy_accepts(job: Job) -> None:
    job.put(DATA)
    result = infer(job)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["properties"] == {
        "id": {"type": "integer"},
        "amount": {"type": "number"},
        "active": {"type": "boolean"},
        "comment": {"type": ["string", "null"]},
        "code": {"type": "string"},
        "when": {"type": "string"},
    }
    assert schema["required"] == ["id", "amount", "active", "comment", "code", "when"]
    assert "inferred from 3 data rows" in result.stderr
    parse_schema(result.stdout).bind(schema["required"])  # what it prints, --schema takes


def test_it_reads_only_the_sample_and_decodes_a_compressed_object(job: Job) -> None:
    rows = b"".join(b"%d,%d.5\n" % (i, i) for i in range(1, 50_001))
    job.put(gzip.compress(b"n,x\n" + rows + b"oops,not a number\n"))  # named .csv: found by bytes
    result = infer(job, "--sample-rows", "100")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["properties"] == {
        "n": {"type": "integer"},
        "x": {"type": "number"},
    }
    assert "inferred from 100 data rows" in result.stderr
    whole = infer(job, "--sample-rows", "0")
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["properties"]["n"] == {"type": "string"}  # "oops" at the end


def test_a_bad_row_in_the_sample_is_bad_input_and_a_bad_flag_a_usage_error(job: Job) -> None:
    job.put(DATA + b"4,1,true\n")
    bad = infer(job)
    assert bad.returncode == 3, bad.stderr
    assert "line 5" in bad.stderr
    assert "row has 3 fields but the header has 6" in bad.stderr
    assert bad.stdout == ""
    negative = infer(job, "--sample-rows", "-1")
    assert negative.returncode == 2
    assert "--sample-rows must be 0 (every row) or more" in negative.stderr


def test_over_a_prefix_the_types_widen_across_objects_and_run_takes_the_schema(
    job: Job, tmp_path: Path
) -> None:
    prefix = Prefix(job)
    first = b"id,amount,flag,note\n" + b"".join(b"%d,%d,true,\n" % (i, i) for i in range(1, 301))
    second = b"id,amount,flag,note\n" + b"".join(
        b"%d,%d.25,false,n%d\n" % (i, i, i) for i in range(301, 601)
    )
    third = b"id,amount,flag,note\n601,7,,x\n"
    prefix.put("part-0.csv", first)
    prefix.put("part-1.csv.gz", _gzip_members(second, 3), second)  # three gzip members
    prefix.put("part-2.csv", zstandard.ZstdCompressor().compress(third), third)  # zstd, .csv
    prefix.put("_SUCCESS", b"", data=False)
    result = infer(job, "--sample-rows", "200")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["properties"] == {
        "id": {"type": "integer"},
        "amount": {"type": "number"},  # integers in part-0, decimals in part-1
        "flag": {"type": ["boolean", "null"]},  # empty in part-2
        "note": {"type": ["string", "null"]},  # empty in part-0
    }
    assert "inferred from 401 data rows of 3 objects" in result.stderr  # 200 + 200 + 1
    path = tmp_path / "schema.json"
    path.write_text(result.stdout)
    ran = job.run("--schema", str(path))
    assert ran.returncode == 0, ran.stderr
    got = job.records()
    assert len(got) == 601
    assert (got[0]["amount"], got[300]["amount"], got[600]["flag"]) == (1, 301.25, None)
