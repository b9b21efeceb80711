"""infer.py and schema.SchemaSample: a schema inferred over many objects (a prefix, repeated
--source, a manifest), each sampled up to --sample-rows, the types widened across them (moto
in-process)."""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import zstandard
from moto import mock_aws

from csv_to_kafka.cli import build_config, build_parser, main
from csv_to_kafka.config import Config
from csv_to_kafka.errors import BadInputError, ConfigError
from csv_to_kafka.infer import infer
from csv_to_kafka.schema import SchemaSample, infer_schema, parse_schema

BUCKET = "exports"


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _config(*argv: str) -> Config:
    args: argparse.Namespace = build_parser().parse_args(["infer-schema", *argv])
    return build_config(args, {})


def _types(schema: dict[str, Any]) -> dict[str, Any]:
    return {name: spec["type"] for name, spec in schema["properties"].items()}


# -- SchemaSample ---------------------------------------------------------------------------------


def test_samples_merged_widen_the_types() -> None:
    header = ["i", "n", "b", "s", "unseen_here", "blank"]
    one = SchemaSample(header)
    one.add([["1", "2", "true", "7", "", ""], ["2", "3", "false", "8", "", ""]])
    two = SchemaSample(header)
    two.add([["3", "4.5", "true", "x", "9", ""]])
    assert _types(one.schema())["n"] == "integer"
    one.merge(two)
    assert one.rows == 3
    assert _types(one.schema()) == {
        "i": "integer",
        "n": "number",  # integers in one, a decimal in the other
        "b": "boolean",
        "s": "string",  # integers in one, text in the other
        "unseen_here": ["integer", "null"],  # empty in one, an integer in the other
        "blank": ["string", "null"],  # never a value: a string
    }
    # The same as one sample of every row, in any order.
    rows = [["1", "2", "true", "7", "", ""], ["2", "3", "false", "8", "", ""]]
    rows.append(["3", "4.5", "true", "x", "9", ""])
    assert one.schema() == infer_schema(header, rows) == infer_schema(header, rows[::-1])
    with pytest.raises(ValueError, match="different headers"):
        one.merge(SchemaSample(["other"]))


# -- infer over many objects ----------------------------------------------------------------------


def _put(s3: Any, key: str, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_a_prefix_of_mixed_objects_is_sampled_object_by_object(
    s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _put(s3, "p/a.csv", b"id,amount,flag,note\n1,10,true,\n2,11,false,\n")
    _put(s3, "p/b.csv", gzip.compress(b"id,amount,flag,note\n3,2.5,true,x\n"))  # named .csv
    _put(s3, "p/c.csv.zst", zstandard.ZstdCompressor().compress(b"id,amount,flag,note\n4,7,,y\n"))
    _put(s3, "p/d.csv.bz2", bz2.compress(b""))  # empty once decoded: skipped as run skips it
    _put(s3, "p/_SUCCESS", b"")  # a zero-byte marker: not listed
    caplog.set_level(logging.INFO)
    inferred = infer(_config("--source", f"s3://{BUCKET}/p/"))
    assert _types(inferred.schema) == {
        "id": "integer",
        "amount": "number",  # 10 and 11 in a.csv, 2.5 in b.csv
        "flag": ["boolean", "null"],  # empty in c
        "note": ["string", "null"],  # empty in a
    }
    assert (inferred.rows, inferred.objects, inferred.empty) == (4, 3, 1)
    assert "object 4 of 4, s3://exports/p/d.csv.bz2, is empty once decoded" in caplog.text
    parse_schema(json.dumps(inferred.schema)).bind(inferred.schema["required"])


def test_sample_rows_counts_per_object(s3: Any) -> None:
    # Each object: 5 integer rows, then text. With --sample-rows 5 the text is never read.
    for n in range(12):  # more objects than are read at once
        rows = b"".join(b"%d\n" % (n * 10 + i) for i in range(5))
        _put(s3, f"q/{n:02d}.csv", b"v\n" + rows + b"text\n")
    five = infer(_config("--source", f"s3://{BUCKET}/q/"), 5)
    assert _types(five.schema) == {"v": "integer"}
    assert (five.rows, five.objects) == (60, 12)
    every = infer(_config("--source", f"s3://{BUCKET}/q/"), 0)
    assert _types(every.schema) == {"v": "string"}
    assert every.rows == 72


def test_repeated_sources_and_a_manifest(s3: Any) -> None:
    _put(s3, "r/one.csv", b"a,b\n1,x\n")
    _put(s3, "r/two/1.csv", b"a,b\n2.5,y\n")
    _put(s3, "r/two/2.csv", b"a,b\n,z\n")
    sources = [f"s3://{BUCKET}/r/one.csv", f"s3://{BUCKET}/r/two/"]
    repeated = infer(_config("--source", sources[0], "--source", sources[1]))
    assert _types(repeated.schema) == {"a": ["number", "null"], "b": "string"}
    assert (repeated.rows, repeated.objects) == (3, 3)
    _put(s3, "r/manifest.txt", ("# the export\n" + "\n".join(sources) + "\n").encode())
    listed = infer(_config("--source-manifest", f"s3://{BUCKET}/r/manifest.txt"))
    assert listed.schema == repeated.schema
    with pytest.raises(ConfigError, match="either --source or --source-manifest"):
        _config("--source", sources[0], "--source-manifest", f"s3://{BUCKET}/r/manifest.txt")


def test_no_header_with_columns_over_many_objects(s3: Any) -> None:
    _put(s3, "n/1.csv", b"1,true\n")
    _put(s3, "n/2.csv", b"2,false\n")
    inferred = infer(_config("--source", f"s3://{BUCKET}/n/", "--no-header", "--columns", "k,f"))
    assert _types(inferred.schema) == {"k": "integer", "f": "boolean"}
    assert inferred.rows == 2


def test_a_differing_header_or_a_bad_row_is_bad_input_naming_the_object(s3: Any) -> None:
    _put(s3, "h/0.csv.gz", gzip.compress(b""))  # empty: the next object's header rules
    _put(s3, "h/1.csv", b"a,b\n1,2\n")
    _put(s3, "h/2.csv", b"a,c\n3,4\n")
    with pytest.raises(BadInputError) as header:
        infer(_config("--source", f"s3://{BUCKET}/h/"))
    assert str(header.value) == (
        "s3://exports/h/2.csv, line 1, byte offset 0: the header row of object 3 of the job is "
        "'a,c', but the job's first object s3://exports/h/1.csv has 'a,b': every object of a "
        "job must have the same header"
    )
    _put(s3, "w/1.csv", b"a,b\n1,2\n")
    _put(s3, "w/2.csv", b"a,b\n1,2\n3\n")
    with pytest.raises(BadInputError, match=r"^s3://exports/w/2.csv, line 3, .*header has 2"):
        infer(_config("--source", f"s3://{BUCKET}/w/"))
    _put(s3, "e/0.csv.gz", gzip.compress(b""))
    _put(s3, "e/1.csv", gzip.compress(b""))
    with pytest.raises(BadInputError, match="all 2 objects are empty once decoded"):
        infer(_config("--source", f"s3://{BUCKET}/e/"))


def test_the_command_prints_the_schema_and_logs_what_it_rests_on(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _put(s3, "c/1.csv", b"a\n1\n2\n")
    _put(s3, "c/2.csv", b"a\n0.5\n")
    code = main(["infer-schema", "--source", f"s3://{BUCKET}/c/", "--sample-rows", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert _types(json.loads(out)) == {"a": "number"}
    assert "schema of s3://exports/c/ inferred from 2 data rows of 2 objects" in err
    assert main(["infer-schema", "--source", f"s3://{BUCKET}/none/"]) == 2
    assert "holds no data objects" in capsys.readouterr().err
