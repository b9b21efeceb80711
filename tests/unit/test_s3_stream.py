"""S3 streaming: a broken stream resumes at the first byte not yet read; a changed object stops."""

from __future__ import annotations

import io
from typing import Any

import botocore.exceptions
import pytest

from csv_to_kafka._retry import RetryPolicy
from csv_to_kafka.errors import ConfigError, InfrastructureError, ObjectChangedError
from csv_to_kafka.source import S3Object, read_ahead

DATA = bytes(range(256)) * 400  # 102,400 bytes
FAST = RetryPolicy(total_seconds=5, initial_backoff=0.001, max_backoff=0.01)


@pytest.fixture
def s3(s3: Any) -> Any:
    """conftest's S3, with the object ``k``."""
    s3.put_object(Bucket="bkt", Key="k", Body=DATA)
    return s3


class BreakingBody:
    """A body that raises a connection reset (or ``error``) after ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int, error: Exception | None = None) -> None:
        self._data = io.BytesIO(data)
        self._left = limit
        self._error = error or botocore.exceptions.ResponseStreamingError(
            error=ConnectionResetError("reset")
        )

    def read(self, size: int) -> bytes:
        if self._left <= 0:
            raise self._error
        chunk = self._data.read(min(size, self._left))
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        pass


class Recording:
    """Wraps a real client and records the Range of each get_object."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.ranges: list[str | None] = []

    def head_object(self, **kw: Any) -> Any:
        return self._client.head_object(**kw)

    def get_object(self, **kw: Any) -> Any:
        self.ranges.append(kw.get("Range"))
        return self._client.get_object(**kw)


class Flaky(Recording):
    """Wraps a real client; each get_object's body breaks after 10,000 bytes."""

    def __init__(self, client: Any, error: Exception | None = None) -> None:
        super().__init__(client)
        self._error = error

    def get_object(self, **kw: Any) -> Any:
        response = super().get_object(**kw)
        response["Body"] = BreakingBody(response["Body"].read(), 10_000, self._error)
        return response


@pytest.mark.parametrize(
    "error",
    [
        None,  # a connection reset
        # The body ends before its Content-Length, the connection closed cleanly.
        botocore.exceptions.IncompleteReadError(actual_bytes=10_000, expected_bytes=102_400),
    ],
    ids=["reset", "truncated"],
)
def test_a_broken_stream_resumes_where_it_broke(s3, error) -> None:
    flaky = Flaky(s3, error)
    retries: list[BaseException] = []
    obj = S3Object("bkt", "k", retry=FAST, client=flaky, on_retry=retries.append, read_size=4096)
    info = obj.head()

    assert b"".join(obj.chunks(info, 0)) == DATA
    assert flaky.ranges[:3] == [None, "bytes=10000-", "bytes=20000-"]
    assert len(retries) == len(flaky.ranges) - 1


def test_reading_from_an_offset_and_read_ahead(s3) -> None:
    obj = S3Object("bkt", "k", retry=FAST, client=s3, read_size=1000)
    info = obj.head()
    assert b"".join(read_ahead(obj.chunks(info, 5000))) == DATA[5000:]
    assert list(obj.chunks(info, len(DATA))) == []


def test_a_replaced_object_is_not_mixed_in(s3) -> None:
    obj = S3Object("bkt", "k", retry=FAST, client=s3)
    info = obj.head()
    s3.put_object(Bucket="bkt", Key="k", Body=b"other")
    with pytest.raises(ObjectChangedError, match="changed while the job was running"):
        list(obj.chunks(info, 0))


def test_a_missing_object_is_a_configuration_error(s3) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        S3Object("bkt", "nope", retry=FAST, client=s3).head()


def test_an_error_in_the_reading_thread_reaches_the_reader() -> None:
    def chunks():
        yield b"one"
        raise InfrastructureError("boom")

    got = []
    with pytest.raises(InfrastructureError, match="boom"):
        for chunk in read_ahead(chunks()):
            got.append(chunk)
    assert got == [b"one"]


def test_the_retry_budget_ends_in_exit_4(s3) -> None:
    class Dead:
        def get_object(self, **kw: Any) -> Any:
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://x")

    obj = S3Object("bkt", "k", retry=RetryPolicy(0.05, 0.001, 0.01), client=Dead())
    info = S3Object("bkt", "k", retry=FAST, client=s3).head()
    with pytest.raises(InfrastructureError, match="kept failing at byte 0"):
        list(obj.chunks(info, 0))


@pytest.mark.parametrize("start", [1, 110, 4095, 4096, 70_000])
def test_a_start_near_the_beginning_is_one_plain_get(s3, start: int, monkeypatch) -> None:
    recording = Recording(s3)
    obj = S3Object("bkt", "k", retry=FAST, client=recording, read_size=4096)
    info = obj.head()
    assert b"".join(obj.chunks(info, start)) == DATA[start:]
    assert recording.ranges == [None]  # moto copies the whole object for a ranged GET

    monkeypatch.setattr("csv_to_kafka.source._UNRANGED_START_BYTES", start - 1)
    recording.ranges.clear()
    assert b"".join(obj.chunks(info, start)) == DATA[start:]
    assert recording.ranges == [f"bytes={start}-"]  # further in: a Range


def test_a_stream_broken_before_the_start_is_reopened_at_the_start(s3) -> None:
    flaky = Flaky(s3)  # every body breaks after 10,000 bytes
    obj = S3Object("bkt", "k", retry=FAST, client=flaky, read_size=4096)
    info = obj.head()
    assert b"".join(obj.chunks(info, 15_000)) == DATA[15_000:]
    assert flaky.ranges[:3] == [None, "bytes=15000-", "bytes=25000-"]


@pytest.mark.parametrize(("start", "end"), [(0, 50_000), (100, 60_000), (70_000, 90_001)])
def test_a_planned_part_reads_only_its_range(s3, start: int, end: int, monkeypatch) -> None:
    """A part of a plan: every GET asks for no byte at or after the end, also when the stream
    breaks and is re-opened, and from byte 0 near the start."""
    monkeypatch.setattr("csv_to_kafka.source._UNRANGED_START_BYTES", 1000)
    flaky = Flaky(s3)  # every body breaks after 10,000 bytes
    obj = S3Object("bkt", "k", retry=FAST, client=flaky, read_size=4096)
    info = obj.head()
    assert b"".join(obj.chunks(info, start, end)) == DATA[start:end]
    first = 0 if start <= 1000 else start
    assert flaky.ranges[0] == f"bytes={first}-{end - 1}"
    assert all(r is not None and r.endswith(f"-{end - 1}") for r in flaky.ranges)
    assert list(obj.chunks(info, end, end)) == []
    assert b"".join(obj.chunks(info, start, len(DATA) + 5)) == DATA[start:]  # past the end
