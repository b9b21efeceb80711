"""check: the whole object parsed and encoded as run would, nothing sent (moto in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from csv_to_kafka.check import check
from csv_to_kafka.cli import build_config, build_parser
from csv_to_kafka.config import Config

SOURCE = "s3://bkt/data.csv"
GOOD = b'id,v\n1,a\n2,"b\nb"\n3,c\n'


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="bkt")
        yield client


def config(*extra: str) -> Config:
    args = build_parser().parse_args(["check", "--source", SOURCE, *extra])
    return build_config(args, {})


class Seen:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def started(self, job_id: str, rows: int, byte_offset: int, total_bytes: int) -> None:
        self.calls.append(("started", job_id, rows, byte_offset, total_bytes))

    def advanced(self, rows: int, byte_offset: int, *, committed: bool) -> None:
        self.calls.append(("advanced", rows, byte_offset, committed))


def test_a_good_object_is_counted(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="data.csv", Body=GOOD)
    seen = Seen()
    report = check(config(), progress=seen)
    assert report.ok
    assert (report.rows, report.columns, report.last_line, report.size) == (3, ["id", "v"], 5, 21)
    # {"id":"2","v":"b\nb","_source_line":3,"_source_file":"s3://bkt/data.csv"}
    assert report.largest_record == 73
    assert report.summary() == (
        "check OK: s3://bkt/data.csv: 3 rows of 2 columns (21 bytes, lines 1-5); "
        "largest record 73 bytes (limit 1,000,000)"
    )
    assert seen.calls == [("started", "check", 0, 0, 21), ("advanced", 3, 21, False)]


def test_the_first_bad_row_is_named_with_the_rows_before_it(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="data.csv", Body=GOOD + b"4,d,extra\n5,e\n")
    report = check(config())
    assert not report.ok
    assert report.rows == 3
    assert report.error is not None
    assert "line 6" in report.error
    assert f"byte offset {len(GOOD)}" in report.error
    assert report.summary().startswith(f"check FAILED: {SOURCE}: 3 good rows, then: ")
    assert report.to_json_dict()["error"] == report.error


def test_a_bad_header_fails_with_no_rows(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="data.csv", Body=b"a,b,a\n1,2,3\n")
    report = check(config())
    assert (report.ok, report.rows, report.columns) == (False, 0, [])
    assert "twice" in (report.error or "")


def test_a_record_over_the_run_s_limit_is_bad_input(s3: Any) -> None:
    s3.put_object(Bucket="bkt", Key="data.csv", Body=GOOD)
    report = check(config("-X", "message.max.bytes=71"))
    # Row 1's record is 70 bytes, row 2's 73: run would stop at line 3.
    assert (report.ok, report.rows, report.limit) == (False, 1, 71)
    assert "line 3" in (report.error or "")
    assert "larger than 71" in (report.error or "")


def test_the_limit_is_the_clients() -> None:
    from csv_to_kafka.errors import ConfigError
    from csv_to_kafka.sink import DEFAULT_MAX_MESSAGE_BYTES, max_message_bytes

    assert max_message_bytes(config()) == DEFAULT_MAX_MESSAGE_BYTES
    # librdkafka has no max.request.size; kafka-python takes the smaller of the two.
    both = ("-X", "message.max.bytes=5000", "-X", "max.request.size=3000")
    assert max_message_bytes(config(*both)) == 5000
    assert max_message_bytes(config(*both, "--kafka-client", "kafka-python")) == 3000
    with pytest.raises(ConfigError, match=r"message\.max\.bytes='lots': expected a whole number"):
        max_message_bytes(config("-X", "message.max.bytes=lots"))


def test_check_needs_only_the_source() -> None:
    from csv_to_kafka.errors import ConfigError

    with pytest.raises(ConfigError, match="missing --source"):
        build_config(build_parser().parse_args(["check"]), {})
    from_env = build_config(build_parser().parse_args(["check"]), {"CSV_TO_KAFKA_SOURCE": SOURCE})
    assert str(from_env.source) == SOURCE


def test_check_lists_each_bad_row_of_many_objects_with_its_object(s3: Any) -> None:
    """--errors-tolerance all over a prefix: each bad row with its object, text and JSON, and
    --max-bad-rows counts over the objects."""
    from csv_to_kafka.check import check_objects, objects_json, objects_summary

    s3.put_object(Bucket="bkt", Key="in/a.csv", Body=b"id,v\n1,a\n2,b,x\n3,c\n")
    s3.put_object(Bucket="bkt", Key="in/b.csv", Body=b"id,v\n4\n5,e\n6,f,y\n")

    def objects_config(*extra: str) -> Config:
        args = build_parser().parse_args(["check", "--source", "s3://bkt/in/", *extra])
        return build_config(args, {})

    reports = check_objects(objects_config("--errors-tolerance", "all"))
    text = objects_summary(reports)
    assert "bad row at line 3, byte 9 of s3://bkt/in/a.csv (field-count)" in text
    assert "bad row at line 2, byte 5 of s3://bkt/in/b.csv (field-count)" in text
    assert "bad row at line 4, byte 11 of s3://bkt/in/b.csv (field-count)" in text
    assert text.endswith("3 BAD ROWS (dead letters)")
    as_json = objects_json(reports)
    assert [(r["source"], r["line"], r["byte_offset"]) for r in as_json["bad_rows"]] == [
        ("s3://bkt/in/a.csv", 3, 9),
        ("s3://bkt/in/b.csv", 2, 5),
        ("s3://bkt/in/b.csv", 4, 11),
    ]
    limited = check_objects(objects_config("--errors-tolerance", "all", "--max-bad-rows", "2"))
    assert limited[0].ok
    assert not limited[1].ok
    assert "more than 2 bad rows" in (limited[1].error or "")
    assert "line 4" in (limited[1].error or "")
