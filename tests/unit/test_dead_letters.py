"""--errors-tolerance: the options, the dead letters' headers, the count and its limit."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from csv_to_kafka import deadletter
from csv_to_kafka.cli import build_config, build_parser
from csv_to_kafka.config import DEFAULT_MAX_BAD_ROWS, Config
from csv_to_kafka.deadletter import DeadLetters, dead_letter_headers
from csv_to_kafka.errors import BadInputError, ConfigError
from csv_to_kafka.processor import dlq_view
from csv_to_kafka.record import ResumePoint
from csv_to_kafka.source import ENCODING, FIELD_COUNT, Reject

REQUIRED = ["--source", "s3://b/k.csv", "--topic", "t", "--bootstrap-servers", "h:9092"]
REQUIRED += ["--job-id", "j", "--checkpoint-table", "cp"]


def config(argv: list[str], env: dict[str, str] | None = None) -> Config:
    return build_config(build_parser().parse_args(["run", *REQUIRED, *argv]), env or {})


def reject(line: int, index: int = 0, reason: str = FIELD_COUNT) -> Reject:
    return Reject(index, line, line * 10, line + 1, line * 10 + 5, reason, "row has 3", b"a,b,c")


def test_the_options_default_to_none_and_come_from_flags_or_the_environment() -> None:
    c = config([])
    assert (c.errors_tolerance, c.dlq_topic, c.skip_bad_rows) == ("none", None, False)
    assert c.max_bad_rows == DEFAULT_MAX_BAD_ROWS
    c = config(["--errors-tolerance", "all", "--dlq-topic", "d", "--max-bad-rows", "5"])
    assert (c.errors_tolerance, c.dlq_topic, c.max_bad_rows) == ("all", "d", 5)
    env = {
        "CSV_TO_KAFKA_ERRORS_TOLERANCE": "all",
        "CSV_TO_KAFKA_SKIP_BAD_ROWS": "true",
        "CSV_TO_KAFKA_MAX_BAD_ROWS": "0",
    }
    c = config([], env)
    assert (c.errors_tolerance, c.skip_bad_rows, c.max_bad_rows) == ("all", True, 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--errors-tolerance", "all"], "needs --dlq-topic"),
        (["--dlq-topic", "d"], "need --errors-tolerance all"),
        (["--skip-bad-rows"], "need --errors-tolerance all"),
        (["--errors-tolerance", "all", "--dlq-topic", "d", "--skip-bad-rows"], "choose one"),
        (["--errors-tolerance", "all", "--dlq-topic", "t"], "must not be the --topic"),
        (["--errors-tolerance", "all", "--skip-bad-rows", "--max-bad-rows", "-1"], "negative"),
    ],
)
def test_inconsistent_options_are_config_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(argv)


def test_an_unknown_tolerance_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="none or all"):
        config([], {"CSV_TO_KAFKA_ERRORS_TOLERANCE": "some"})


def test_the_headers_are_the_rows_and_connects_and_the_batch_position() -> None:
    point = ResumePoint("j", rows=7, line=9, next_line=12, byte_offset=300, etag="e", bad_rows=2)
    headers = dead_letter_headers(
        reject(4), source="s3://b/k", job_id="j", position=point.to_headers()
    )
    names = [name for name, _value in headers]
    assert len(names) == len(set(names))
    found = dict(headers)
    assert found[deadletter.LINE] == b"4"
    assert found[deadletter.OFFSET] == b"40"
    assert found[deadletter.NEXT_OFFSET] == b"300"
    assert found[deadletter.ERROR] == b"field-count"
    assert found[deadletter.SOURCE_FILE] == b"s3://b/k"
    assert found[deadletter.CONNECT_CLASS] == b"csv_to_kafka.errors.BadInputError"
    assert found[deadletter.CONNECT_MESSAGE] == b"line 4, byte 40: row has 3"
    # A resumed run reads the position back from a dead letter as from a record.
    back = ResumePoint.from_headers(headers, 5)
    assert back is not None
    assert (back.rows, back.next_line, back.byte_offset, back.bad_rows) == (7, 12, 300, 2)
    assert deadletter.PART not in found  # not a planned part


def test_a_parts_dead_letters_name_the_part() -> None:
    """A planned part's dead letters carry csv-to-kafka.part (its index), after .job; the
    position read back from them is the same as without it."""
    point = ResumePoint("j.part-2", rows=7, line=9, next_line=12, byte_offset=300, etag="e")
    dead = DeadLetters(topic="d", source="s3://b/k", job_id="j.part-2", max_bad_rows=9, part=2)
    [(_value, headers)] = dead.take((reject(4),), point.to_headers())
    names = [name for name, _value in headers]
    assert len(names) == len(set(names))
    assert names.index(deadletter.PART) == names.index(deadletter.JOB) + 1
    assert dict(headers)[deadletter.PART] == b"2"
    assert dict(headers)[deadletter.JOB] == b"j.part-2"
    back = ResumePoint.from_headers(headers, 5)
    assert back is not None
    assert (back.job_id, back.rows, back.byte_offset) == ("j.part-2", 7, 300)


def test_the_count_goes_on_from_the_resumed_total_and_stops_past_the_limit() -> None:
    dead = DeadLetters(topic="d", source="s", job_id="j", max_bad_rows=3, total=1)
    letters = dead.take((reject(2), reject(3, reason=ENCODING)), [])
    assert [value for value, _h in letters] == [b"a,b,c", b"a,b,c"]
    assert dead.total == 3
    dead.check_limit(())
    with pytest.raises(BadInputError, match="more than 3 bad rows") as caught:
        dead.check_limit((reject(8), reject(9)))
    assert caught.value.line == 8


def test_dropped_rows_are_counted_and_logged_up_to_a_limit(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadletter, "LOGGED_BAD_ROWS", 2)
    dead = DeadLetters(topic=None, source="s", job_id="j", max_bad_rows=10)
    with caplog.at_level(logging.WARNING):
        assert dead.take(tuple(reject(n) for n in range(2, 6)), []) == []
    assert dead.total == 4
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "line 2" in messages[0]
    assert "of s" in messages[0]  # the object (s3://...)
    assert caplog.records[0].bad_row["source"] == "s"  # type: ignore[attr-defined]
    assert "dropped" in messages[0]
    assert "only counted" in messages[2]


def test_the_dead_letter_topic_is_seen_with_one_partition_for_a_keyed_job() -> None:
    keyed = ["--key-column", "id", "--partitions", "6"]
    wide = config([*keyed, "--errors-tolerance", "all", "--dlq-topic", "dead"])
    view = dlq_view(wide, "dead")
    assert (view.topic, view.dlq_topic, view.errors_tolerance) == ("dead", None, "none")
    assert (view.partitions, view.plan_partitions, view.key_columns) == (None, 1, ())
    assert view.allow_multiple_partitions  # an existing wider one: its partition 0


def test_the_dead_letter_topic_is_seen_at_partition_0_for_a_part_of_a_plan() -> None:
    """Part 2 of a 3-part plan writes partition 2 of the topic; its dead letters go to (and
    are read back from) partition 0 of the one-partition dead-letter topic."""
    dead = ["--errors-tolerance", "all", "--dlq-topic", "dead"]
    part = dataclasses.replace(config(dead), part=2, partition=2, plan_partitions=3)
    view = dlq_view(part, "dead")
    assert (view.topic, view.partition, view.plan_partitions) == ("dead", 0, 1)
    assert (view.dlq_topic, view.errors_tolerance) == (None, "none")
