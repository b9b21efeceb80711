"""_kp_append writes the producer batches kafka-python's own send path writes, byte for byte."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from kafka import TopicPartition
from kafka.producer.record_accumulator import RecordAccumulator
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.util import encode_varint as kafka_encode_varint

from csv_to_kafka import _kp_append

TP = TopicPartition("t", 0)
TIMESTAMP = 1_764_000_000_123


def _accumulator(batch_size: int) -> RecordAccumulator:
    return RecordAccumulator(batch_size=batch_size, compression_attrs=0, message_version=2)


def _batches(accumulator: RecordAccumulator) -> list[bytes]:
    out = []
    for batch in accumulator._batches[TP]:
        batch.records.close()
        out.append(bytes(batch.records.buffer()))
    return out


def _by_send(values: list[bytes], batch_size: int) -> tuple[list[bytes], list[int]]:
    """Every record through kafka-python's accumulator, as send() does; the indexes of the
    records that opened a batch."""
    accumulator = _accumulator(batch_size)
    opened = []
    for index, value in enumerate(values):
        if accumulator.append(TP, TIMESTAMP, None, value, [])[2]:
            opened.append(index)
    return _batches(accumulator), opened


def _by_appender(
    values: list[bytes], batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[bytes], list[int]]:
    """The sink's loop: one record through the accumulator, then the appender."""
    monkeypatch.setattr(_kp_append.time, "time", lambda: TIMESTAMP / 1000)
    accumulator = _accumulator(batch_size)
    append = _kp_append.bulk_appender(SimpleNamespace(_accumulator=accumulator), TP)
    assert append is not None
    opened = []
    index = 0
    while index < len(values):
        if accumulator.append(TP, TIMESTAMP, None, values[index], [])[2]:
            opened.append(index)
        index = append(values, index + 1, len(values))
    return _batches(accumulator), opened


def _values(count: int, sizes: tuple[int, int], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(*sizes)) for _ in range(count)]


@pytest.mark.parametrize(
    ("count", "sizes", "batch_size"),
    [
        (1, (10, 10), 1 << 20),  # the first record alone
        (2_000, (0, 400), 1 << 20),  # one batch; empty values too
        (2_000, (50, 400), 16_384),  # many batches: the appender stops where send() would
        (40, (16_000, 70_000), 100_000),  # lengths past the varint table; a batch of one
        (20_000, (0, 3), 1 << 20),  # offset deltas past the varint table
    ],
)
def test_batches_are_the_same_bytes_as_sends(
    count: int, sizes: tuple[int, int], batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = _values(count, sizes, seed=count)
    expected, expected_opened = _by_send(values, batch_size)
    got, opened = _by_appender(values, batch_size, monkeypatch)
    assert opened == expected_opened
    assert got == expected
    records = [r.value for b in got for r in DefaultRecordBatch(b)]
    assert records == values


def test_varints_are_kafkas() -> None:
    for value in [0, 1, 63, 64, 8191, 8192, 16_383, 16_384, 1 << 20, (1 << 31) - 1, -1, -64]:
        out = bytearray()
        kafka_encode_varint(value, out.append)
        assert _kp_append.encode_varint(value) == bytes(out), value


def test_nothing_is_appended_without_an_open_batch() -> None:
    accumulator = _accumulator(1 << 20)
    append = _kp_append.bulk_appender(SimpleNamespace(_accumulator=accumulator), TP)
    assert append is not None
    assert append([b"a", b"b"], 0, 2) == 0  # no batch: send() must open one
    accumulator.append(TP, TIMESTAMP, None, b"first", [])
    accumulator._batches[TP][-1].records.close()  # drained by the sender
    assert append([b"a", b"b"], 0, 2) == 0


def test_other_kafka_python_versions_send_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kp_append.kafka, "__version__", "3.1.0")
    producer = SimpleNamespace(_accumulator=_accumulator(1 << 20))
    assert _kp_append.bulk_appender(producer, TP) is None


def _keyed_by_send(
    values: list[bytes], keys: list[bytes], batch_size: int
) -> tuple[list[bytes], list[int]]:
    accumulator = _accumulator(batch_size)
    opened = []
    for index, (value, key) in enumerate(zip(values, keys, strict=True)):
        if accumulator.append(TP, TIMESTAMP, key, value, [])[2]:
            opened.append(index)
    return _batches(accumulator), opened


def _keyed_by_appender(
    values: list[bytes], keys: list[bytes], batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[bytes], list[int]]:
    monkeypatch.setattr(_kp_append.time, "time", lambda: TIMESTAMP / 1000)
    accumulator = _accumulator(batch_size)
    append = _kp_append.bulk_appender(SimpleNamespace(_accumulator=accumulator), TP)
    assert append is not None
    opened = []
    index = 0
    while index < len(values):
        if accumulator.append(TP, TIMESTAMP, keys[index], values[index], [])[2]:
            opened.append(index)
        index = append(values, index + 1, len(values), keys)
    return _batches(accumulator), opened


@pytest.mark.parametrize(
    ("count", "sizes", "key_sizes", "batch_size"),
    [
        (1, (10, 10), (3, 3), 1 << 20),
        (2_000, (0, 400), (0, 40), 1 << 20),  # empty keys and values too
        (2_000, (50, 400), (1, 30), 16_384),  # many batches
        (40, (16_000, 70_000), (16_000, 20_000), 200_000),  # keys past the varint table
        (20_000, (0, 3), (0, 2), 1 << 20),  # offset deltas past the varint table
    ],
)
def test_keyed_batches_are_the_same_bytes_as_sends(
    count: int,
    sizes: tuple[int, int],
    key_sizes: tuple[int, int],
    batch_size: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = _values(count, sizes, seed=count)
    keys = _values(count, key_sizes, seed=count + 1)
    expected, expected_opened = _keyed_by_send(values, keys, batch_size)
    got, opened = _keyed_by_appender(values, keys, batch_size, monkeypatch)
    assert opened == expected_opened
    assert got == expected
    records = [(r.key, r.value) for b in got for r in DefaultRecordBatch(b)]
    assert records == list(zip(keys, values, strict=True))
