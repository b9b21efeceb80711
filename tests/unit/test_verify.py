"""verify's comparison, on a fake topic (the integration tests run it against the real broker)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from csv_to_kafka.cli import build_config, build_parser
from csv_to_kafka.verify import verify

CSV = b'id,v\n1,a\n2,"b\nb"\n3,c\n4,d\n'
LINES = [2, 3, 5, 6]
SOURCE = "s3://bkt/data.csv"


class FakeTopic:
    max_message_bytes = 1_000_000

    def __init__(self, records: list[bytes]) -> None:
        self._records = records

    def committed_records(self) -> Iterator[tuple[int, bytes, list[tuple[str, bytes]]]]:
        for offset, value in enumerate(self._records):
            yield offset, value, []

    def close(self) -> None:
        pass


def record(line: int, **fields: str) -> bytes:
    values = {2: "a", 3: "b\nb", 5: "c", 6: "d"}
    ident = {2: "1", 3: "2", 5: "3", 6: "4"}
    body = {"id": ident[line], "v": values[line], **fields}
    return orjson.dumps({**body, "_source_line": line, "_source_file": SOURCE})


@pytest.fixture
def config(s3: Any):
    s3.put_object(Bucket="bkt", Key="data.csv", Body=CSV)
    args = build_parser().parse_args(
        ["verify", "--source", SOURCE, "--topic", "t", "--bootstrap-servers", "x:1"]
    )
    return build_config(args, {})


def run(config, lines: list[int], **change: bytes):
    records = [change.get(f"line{line}", record(line)) for line in lines]
    return verify(config, sink=FakeTopic(records))  # type: ignore[arg-type]


def test_exact_copy_is_ok(config) -> None:
    report = run(config, LINES)
    assert report.ok
    assert report.summary().startswith("verify OK: rows in CSV 4, records in topic 4, missing 0")


def test_missing_row(config) -> None:
    report = run(config, [2, 3, 6])
    assert not report.ok
    assert (report.missing, report.duplicated, report.out_of_order) == (1, 0, 0)
    assert "line 5" in (report.first_difference or "")


def test_duplicate_row(config) -> None:
    report = run(config, [2, 3, 3, 5, 6])
    assert (report.missing, report.duplicated, report.out_of_order) == (0, 1, 0)
    assert report.first_difference == (
        "row 3 (line 5) was expected at Kafka offset 2, which holds line 3"
    )


def test_out_of_order(config) -> None:
    report = run(config, [2, 5, 3, 6])
    assert (report.missing, report.duplicated, report.out_of_order) == (0, 0, 1)


def test_changed_content(config) -> None:
    report = run(config, LINES, line5=record(5, v="changed"))
    assert report.content_mismatch == 1
    assert report.first_difference == "row 3 (line 5) differs in content at Kafka offset 2"


def test_foreign_record(config) -> None:
    report = run(config, LINES, line6=b"not json")
    assert report.foreign == 1
    assert report.missing == 1
    assert "offset 3 is not a row of" in (report.first_difference or "")


def test_the_same_content_in_other_json_spelling_matches(config) -> None:
    # Not the bytes run writes (spaces, another key order), but the same object: still the row.
    other = b'{"_source_file": "%s", "v": "c", "id": "3", "_source_line": 5}' % SOURCE.encode()
    report = run(config, LINES, line5=other)
    assert report.ok, report.first_difference
    assert report.content_mismatch == 0


def test_a_foreign_record_between_rows_is_counted_once(config) -> None:
    records = [record(2), b"not json", record(3), record(5), record(6)]
    report = verify(config, sink=FakeTopic(records))  # type: ignore[arg-type]
    assert (report.rows_in_csv, report.records_in_topic) == (4, 5)
    assert (report.missing, report.duplicated, report.out_of_order, report.foreign) == (0, 0, 0, 1)
    assert report.first_difference == f"the record at Kafka offset 1 is not a row of {SOURCE}"


def test_a_repeat_of_a_row_matched_in_step_is_a_duplicate(config) -> None:
    # Rows 2, 3, 5 match byte for byte; the second 3 comes when 6 is expected.
    report = run(config, [2, 3, 5, 3, 6])
    assert (report.missing, report.duplicated, report.out_of_order) == (0, 1, 0)
    assert report.first_difference == (
        "row 4 (line 6) was expected at Kafka offset 3, which holds line 3"
    )


def test_a_topic_longer_than_the_csv(config) -> None:
    report = run(config, [*LINES, 6])
    assert (report.rows_in_csv, report.records_in_topic, report.duplicated) == (4, 5, 1)
    assert report.first_difference == "line 6 is in the topic twice (again at Kafka offset 4)"


def test_an_empty_batch_of_rows_is_passed_over() -> None:
    from csv_to_kafka.verify import _Comparison

    comparison = _Comparison(iter([([], []), ([2], [record(2)]), ([], [])]), SOURCE)
    comparison.record(0, record(2))
    report = comparison.finish()
    assert report.ok, report.first_difference
    assert (report.rows_in_csv, report.records_in_topic) == (1, 1)
