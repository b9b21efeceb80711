"""The record format and the resume headers."""

from __future__ import annotations

import orjson
import pytest

from csv_to_kafka.errors import BadInputError
from csv_to_kafka.record import RecordEncoder, ResumePoint


def test_values_are_json_of_the_header_plus_source_fields() -> None:
    encoder = RecordEncoder(["id", "name"], "s3://b/k", 1_000_000)
    values, error = encoder.encode([["1", 'Zoë, "x"\n'], ["2", ""]], [2, 4], [10, 30].__getitem__)
    assert error is None
    assert [orjson.loads(v) for v in values] == [
        {"id": "1", "name": 'Zoë, "x"\n', "_source_line": 2, "_source_file": "s3://b/k"},
        {"id": "2", "name": "", "_source_line": 4, "_source_file": "s3://b/k"},
    ]


def test_a_record_too_large_stops_the_batch_there() -> None:
    encoder = RecordEncoder(["a"], "s3://b/k", 100)
    values, error = encoder.encode([["x"], ["y" * 200], ["z"]], [2, 3, 4], [5, 10, 215].__getitem__)
    assert len(values) == 1
    assert error is not None
    assert error.line == 3
    assert error.byte_offset == 10
    assert "larger than 100" in str(error)


def test_a_header_name_that_clashes_with_a_source_field_is_refused() -> None:
    with pytest.raises(BadInputError, match="_source_file"):
        RecordEncoder(["a", "_source_file"], "s3://b/k", 100)


def test_resume_point_round_trips_through_headers() -> None:
    point = ResumePoint("job-1", rows=10, line=12, next_line=14, byte_offset=999, etag='"abc"')
    assert ResumePoint.from_headers(point.to_headers(), 77) == ResumePoint(
        "job-1", 10, 12, 14, 999, '"abc"', kafka_offset=77
    )


def test_a_compressed_objects_point_carries_its_member_and_a_plain_ones_does_not() -> None:
    plain = ResumePoint("job-1", rows=10, line=12, next_line=14, byte_offset=999, etag='"abc"')
    assert len(plain.to_headers()) == 7  # as before issue 13: old and new records alike
    packed = ResumePoint("j", 10, 12, 14, 999, '"e"', member_offset=500, member_text_offset=900)
    names = [name for name, _value in packed.to_headers()]
    assert names[-2:] == ["csv-to-kafka.member-offset", "csv-to-kafka.member-text-offset"]
    assert ResumePoint.from_headers(packed.to_headers(), 5) == ResumePoint(
        "j", 10, 12, 14, 999, '"e"', kafka_offset=5, member_offset=500, member_text_offset=900
    )


@pytest.mark.parametrize(
    "headers",
    [None, [], [("other", b"x")], [("csv-to-kafka.job", b"j"), ("csv-to-kafka.rows", b"x")]],
)
def test_foreign_headers_are_not_a_resume_point(headers) -> None:
    assert ResumePoint.from_headers(headers, 0) is None


def test_any_header_name_is_encoded_as_it_is() -> None:
    names = ["a'b", 'q"uote', "back\\slash", "new\nline", "}{", "ünï", "__import__('os')", ""]
    encoder = RecordEncoder(names, "s3://b/k", 1_000_000)
    row = [str(i) for i in range(len(names))]
    values, error = encoder.encode([row], [7], [0].__getitem__)
    assert error is None
    assert orjson.loads(values[0]) == {
        **dict(zip(names, row, strict=True)),
        "_source_line": 7,
        "_source_file": "s3://b/k",
    }


def test_ten_thousand_columns() -> None:
    names = [f"c{i}" for i in range(10_000)]
    encoder = RecordEncoder(names, "s3://b/k", 10_000_000)
    values, error = encoder.encode([names], [2], [0].__getitem__)
    assert error is None
    assert len(orjson.loads(values[0])) == 10_002
