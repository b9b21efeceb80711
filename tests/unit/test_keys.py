"""Message keys (issue 15): the options, the keys and partitions of values, the resume choice."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from csv_to_kafka._parse_process import ParseJob
from csv_to_kafka._retry import RetryPolicy
from csv_to_kafka.cli import build_config, build_parser
from csv_to_kafka.config import Config
from csv_to_kafka.errors import BadInputError, ConfigError
from csv_to_kafka.keys import Keyer
from csv_to_kafka.partitioning import partition_for
from csv_to_kafka.record import ResumePoint
from csv_to_kafka.sink import last_of_partitions, topic_partitions
from csv_to_kafka.source import ObjectInfo

REQUIRED = ["--source", "s3://b/k.csv", "--topic", "t", "--bootstrap-servers", "h:9092",
            "--job-id", "j", "--checkpoint-table", "cp"]  # fmt: skip


def config(argv: list[str], env: dict[str, str] | None = None) -> Config:
    return build_config(build_parser().parse_args(["run", *REQUIRED, *argv]), env or {})


def test_key_options_from_flags() -> None:
    c = config(["--key-column", "a", "--key-column", "b", "--key-separator", "/",
                "--partitions", "6"])  # fmt: skip
    assert c.key_columns == ("a", "b")
    assert c.key_separator == "/"
    assert c.partitions == 6


def test_key_options_from_the_environment_and_defaults() -> None:
    c = config([], {"CSV_TO_KAFKA_KEY_COLUMNS": "a, b", "CSV_TO_KAFKA_PARTITIONS": "3"})
    assert c.key_columns == ("a", "b")
    assert c.key_separator == "|"
    assert c.partitions == 3
    plain = config([])
    assert plain.key_columns == ()
    assert plain.partitions is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--partitions", "0"], "--partitions must be 1 to"),
        (["--key-column", "a", "--key-column", "a"], "must be distinct"),
        (["--partitions", "4"], "without --key-column"),
    ],
)
def test_bad_key_options_are_config_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(argv)


def test_partitions_without_keys_allowed_with_allow_multiple_partitions() -> None:
    assert config(["--partitions", "4", "--allow-multiple-partitions"]).partitions == 4


def value(**fields: object) -> bytes:
    return orjson.dumps({**fields, "_source_line": 2, "_source_file": "s3://b/k"})


def test_a_compound_key_and_its_partition() -> None:
    keyer = Keyer(["id", "c", "r"], ["c", "r"], "|", 6, source="s3://b/k")
    keys, partitions = keyer.keys([value(id="1", c="Zoë", r="eu"), value(id="2", c="", r="")])
    assert keys == ["Zoë|eu".encode(), b"|"]
    assert partitions == [partition_for(k, 6) for k in keys]


def test_an_empty_key_is_a_key() -> None:
    keyer = Keyer(["c"], ["c"], "|", 12, source="s3://b/k")
    assert keyer.keys([value(c="")]) == ([b""], [partition_for(b"", 12)])


def test_typed_fields_key_by_their_json_text() -> None:
    keyer = Keyer(["n", "x", "b"], ["n", "x", "b"], ",", 3, source="s3://b/k")
    assert keyer.key(value(n=12, x=None, b=True)) == b"12,,true"


def test_a_key_column_missing_from_the_header_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="key column 'client' is not in the header") as err:
        Keyer(["id", "customer"], ["client"], "|", 2, source="s3://b/k")
    assert err.value.exit_code == 3
    assert err.value.line == 1
    with pytest.raises(ValueError, match="at least one partition"):
        Keyer(["id"], ["id"], "|", 0, source="s3://b/k")


def test_the_parse_job_carries_the_keys_through_json() -> None:
    job = ParseJob(
        bucket="b",
        key="k.csv",
        info=ObjectInfo(uri="s3://b/k.csv", etag='"e"', version_id=None, size=10),
        retry=RetryPolicy(total_seconds=3),
        start_offset=0,
        start_line=1,
        delimiter=",",
        quotechar='"',
        encoding="utf-8",
        max_bytes=1000,
        batch_rows=100,
        key_columns=("a", "b"),
        key_separator="/",
        partitions=6,
    )
    assert ParseJob.from_json(job.to_json()) == job


def test_the_last_point_is_the_one_with_the_most_rows() -> None:
    point = ResumePoint("j", rows=10, line=11, next_line=12, byte_offset=100, etag="e")
    later = dataclasses.replace(point, rows=20)
    assert last_of_partitions([None, point, later, None]) == later
    assert last_of_partitions([None, None]) is None


def test_an_existing_topic_must_have_the_partitions_asked_for() -> None:
    keyed = config(["--key-column", "a", "--partitions", "6"])
    assert topic_partitions(keyed, 6) == 6
    with pytest.raises(ConfigError, match="has 4 partitions, not --partitions 6"):
        topic_partitions(keyed, 4)
    assert topic_partitions(config(["--key-column", "a"]), 9) == 9
    with pytest.raises(ConfigError, match="--key-column"):
        topic_partitions(config([]), 2)


def test_a_typed_key_is_its_json_text_as_written() -> None:
    keyer = Keyer(["n", "x", "b", "s"], ["n", "x", "b", "s"], "|", 3, source="s3://b/k", typed=True)
    value = b'{"n":123456789012345678901234567890,"x":12.50,"b":true,"s":null,"_source_line":2}'
    assert keyer.key(value) == b"123456789012345678901234567890|12.50|true|"
