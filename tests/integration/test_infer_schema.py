"""``csv-to-kafka infer-schema`` against the moto server: the schema printed, from the rows read
by run's parser (compressed objects included); a bad row and a bad flag get their exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess

import pytest

from csv_to_kafka.schema import parse_schema

from .conftest import Job

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
