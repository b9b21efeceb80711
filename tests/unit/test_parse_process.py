"""The parser process's frames: errors cross the pipe with their type, line and offset."""

from __future__ import annotations

import dataclasses
import os
import struct
import threading
from typing import Any

import orjson
import pytest

from csv_to_kafka._parse_process import (
    ParseJob,
    ReadyBatch,
    _batch_frame,
    _batch_from_frame,
    _error_from_json,
    _error_to_json,
    _FrameReader,
    _FrameWriter,
    _keys_from_section,
    _keys_section,
)
from csv_to_kafka._retry import RetryPolicy
from csv_to_kafka.errors import (
    BadInputError,
    ConfigError,
    CsvToKafkaError,
    InfrastructureError,
    ObjectChangedError,
)
from csv_to_kafka.source import ObjectInfo, S3Object


@pytest.mark.parametrize(
    "error",
    [
        BadInputError("row has 3 fields but the header has 2", line=7, byte_offset=99, source="s"),
        ObjectChangedError("the object changed", source="s3://b/k", byte_offset=5),
        InfrastructureError("reading s3://b/k kept failing at byte 10"),
        ConfigError("access to s3://b/k was denied"),
    ],
)
def test_errors_cross_the_pipe_unchanged(error: CsvToKafkaError) -> None:
    again = _error_from_json(_error_to_json(error))

    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.exit_code == error.exit_code
    if isinstance(error, BadInputError):
        assert isinstance(again, BadInputError)
        assert (again.line, again.byte_offset, again.source) == (
            error.line,
            error.byte_offset,
            error.source,
        )


def test_an_unexpected_error_becomes_exit_1_with_its_message() -> None:
    again = _error_from_json(_error_to_json(ZeroDivisionError("division by zero")))

    assert type(again) is CsvToKafkaError
    assert again.exit_code == 1
    assert "ZeroDivisionError('division by zero')" in str(again)


def test_the_job_round_trips_through_json() -> None:
    job = ParseJob(
        bucket="b",
        key="k/x.csv",
        info=ObjectInfo(uri="s3://b/k/x.csv", etag='"e"', version_id=None, size=10),
        retry=RetryPolicy(total_seconds=3),
        start_offset=4,
        start_line=2,
        delimiter=";",
        quotechar="'",
        encoding="latin-1",
        max_bytes=1000,
        batch_rows=100,
    )
    assert ParseJob.from_json(job.to_json()) == job


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, 2.0),
        ({"cpu.max": "max 100000\n"}, 2.0),
        ({"cpu.max": "100000 100000\n"}, 1.0),
        ({"cpu.max": "50000 100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),
    ],
)
def test_a_cgroup_cpu_quota_caps_the_cpus(tmp_path, monkeypatch, files, expected) -> None:
    """One vCPU (an ECS task, docker --cpus 1) runs the parser in the copying process."""
    from csv_to_kafka import processor

    monkeypatch.setattr(processor.os, "sched_getaffinity", lambda _pid: {0, 1})
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert processor._cpus(tmp_path) == expected


CSV = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(1, 501))


@pytest.fixture
def s3_object(s3: Any):
    """An S3Object on moto (in process) whose client counts the GETs it makes."""
    s3.put_object(Bucket="bkt", Key="k.csv", Body=CSV)
    gets: list[str | None] = []

    class Counting:
        def head_object(self, **kw: Any) -> Any:
            return s3.head_object(**kw)

        def get_object(self, **kw: Any) -> Any:
            gets.append(kw.get("Range"))
            return s3.get_object(**kw)

    obj = S3Object("bkt", "k.csv", retry=RetryPolicy(total_seconds=3), client=Counting())
    return obj, gets


def job_from(obj: S3Object, start_offset: int, start_line: int) -> ParseJob:
    return ParseJob(
        bucket="bkt",
        key="k.csv",
        info=obj.head(),
        retry=RetryPolicy(total_seconds=3),
        start_offset=start_offset,
        start_line=start_line,
        delimiter=",",
        quotechar='"',
        encoding="utf-8",
        max_bytes=1000,
        batch_rows=100,
    )


def test_from_the_start_one_get_reads_the_header_and_the_rows(s3_object) -> None:
    obj, gets = s3_object
    batches = list(job_from(obj, 0, 1).ready_batches(obj))
    values = [orjson.loads(v) for b in batches for v in b.values]
    assert [v["id"] for v in values] == [str(i) for i in range(1, 501)]
    assert values[0] == {
        "id": "1",
        "name": "n1",
        "_source_line": 2,
        "_source_file": "s3://bkt/k.csv",
    }
    assert (batches[-1].last_line, batches[-1].next_line) == (501, 502)
    assert batches[-1].next_offset == len(CSV)
    assert gets == [None]


def test_from_a_later_row_the_header_has_a_get_of_its_own(s3_object) -> None:
    obj, gets = s3_object
    row_300 = CSV.index(b"\n300,") + 1
    batches = list(job_from(obj, row_300, 301).ready_batches(obj))
    values = [orjson.loads(v) for b in batches for v in b.values]
    assert [v["id"] for v in values] == [str(i) for i in range(300, 501)]
    assert values[0]["_source_line"] == 301
    assert sorted(gets, key=str) == [None, None]  # the header's, and the rows' (within 1 MiB)


def test_frames_cross_the_pipe_whole_and_in_order() -> None:
    read_end, write_end = os.pipe()
    reader, writer = _FrameReader(read_end), _FrameWriter(write_end)
    frames = [b"", b"R", b"x" * 70_000, bytes(range(256)) * 20_000, b"D"]

    def send() -> None:
        for frame in frames:
            writer.write(frame)
        os.close(write_end)

    sending = threading.Thread(target=send)
    sending.start()
    try:
        assert [reader.read() for _ in frames] == frames
        with pytest.raises(EOFError):
            reader.read()
    finally:
        sending.join()
        reader.close()


def test_a_frame_cut_short_is_an_eof_not_a_short_frame() -> None:
    read_end, write_end = os.pipe()
    reader = _FrameReader(read_end)
    os.write(write_end, struct.pack("!Q", 10) + b"12345")
    os.close(write_end)
    with pytest.raises(EOFError, match="5 bytes before a frame's end"):
        reader.read()
    reader.close()


@pytest.mark.parametrize(
    "keys",
    [
        [b"a", b"", b"line\nbreak", b"\n\n", "Zoë".encode(), b"\x00\n\xff" * 40],
        [b""],
        [],
    ],
)
def test_keyed_batches_cross_the_pipe_with_their_keys_and_partitions(keys: list[bytes]) -> None:
    """The keys' section (raw sizes and bytes, newlines and all) comes back as it was sent."""
    values = [b'{"k":%d}' % n for n in range(len(keys))]
    partitions = [n * 7919 % 100_000 for n in range(len(keys))]
    ready = ReadyBatch(values, 9, 10, 1234, -1, 0, 1234, keys, partitions, (), 2)
    assert _batch_from_frame(_batch_frame(ready), ()) == ready
    plain = dataclasses.replace(ready, keys=None, partitions=None)
    assert _batch_from_frame(_batch_frame(plain), ()) == plain


def test_a_keys_section_of_the_wrong_size_is_refused() -> None:
    section = _keys_section([b"ab", b"c"], [1, 2])
    with pytest.raises(CsvToKafkaError, match="keys section"):
        _keys_from_section(section[:-1], 2)
