"""Appending many plain records to kafka-python's open producer batch at once.

kafka-python's ``send()`` is pure Python: for each record it checks the producer and the
transaction, builds a future, takes two locks and encodes the record with a varint function per
field, about 10 µs a record on the benchmark machine (81% of the copying thread in py-spy). The
sink sends a transaction's records in order to one partition, with no key and, but for the last
record, no headers (with ``--key-column``: a key each, and records of one partition in order);
so it sends the first record of every producer batch through ``send()``,
which does every check, opens the batch and wakes the sender, and appends the records after it
to that batch here, under the accumulator's lock for the partition, while the batch has room.

The records written here are byte for byte what ``DefaultRecordBatchBuilder.append`` writes
(a unit test compares the batches), and the builder's and the batch's counters are kept as
``append`` keeps them. Only the kafka-python versions this was checked against take this path
(``bulk_appender`` returns None for any other, and the sink sends every record with ``send()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

try:
    import kafka
    from kafka.producer.producer_batch import ProducerBatch
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from kafka.record.memory_records import MemoryRecordsBuilder
except ImportError:  # pragma: no cover (kafka-python is a dependency)
    kafka = None

__all__ = ["Appender", "bulk_appender", "encode_varint"]

# The kafka-python releases whose internals this module was written against.
_CHECKED_VERSIONS = ("3.0.",)

# Appender(values, start, stop[, keys]) appends values[start:stop] (with keys[start:stop] as
# their keys, if given) in order to the partition's open batch while it has room and returns the
# index of the first value not appended.
Appender = Callable[..., int]


def encode_varint(value: int) -> bytes:
    """Kafka's zigzag varint (the record fields of message format v2)."""
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Varints of the small numbers (offset deltas and lengths below 16 KiB), looked up, not built.
_SMALL = 1 << 14
_VARINTS = tuple(encode_varint(n) for n in range(_SMALL))


def _varint(value: int) -> bytes:
    return _VARINTS[value] if 0 <= value < _SMALL else encode_varint(value)


def _supported(producer: Any) -> bool:
    if kafka is None or not str(getattr(kafka, "__version__", "")).startswith(_CHECKED_VERSIONS):
        return False
    accumulator = getattr(producer, "_accumulator", None)
    return (
        accumulator is not None
        and callable(getattr(accumulator, "_tp_lock", None))
        and isinstance(getattr(accumulator, "_batches", None), dict)
        and hasattr(accumulator, "_appends_in_progress")
        and {"_builder", "_next_offset", "_closed"} <= set(MemoryRecordsBuilder.__slots__)
        and {"_buffer", "_batch_size", "_num_records", "_last_offset", "_first_timestamp"}
        <= set(DefaultRecordBatchBuilder.__slots__)
        and {"max_record_size", "last_append", "records"}
        <= set(ProducerBatch.__init__.__code__.co_names)
    )


def bulk_appender(producer: Any, tp: Any) -> Appender | None:
    """An Appender for partition ``tp`` of ``producer``, or None where this kafka-python's
    internals are not the ones this module knows."""
    if not _supported(producer):
        return None
    accumulator = producer._accumulator
    lock = accumulator._tp_lock(tp)
    batches = accumulator._batches
    in_progress = accumulator._appends_in_progress

    def append(
        values: Sequence[bytes], start: int, stop: int, keys: Sequence[bytes] | None = None
    ) -> int:
        if start >= stop:
            return start
        in_progress.increment()
        try:
            with lock:
                if accumulator._closed:
                    return start
                dq = batches.get(tp)
                if not dq:
                    return start
                if keys is None:
                    return _append_to(dq[-1], values, start, stop)
                return _append_keyed(dq[-1], values, keys, start, stop)
        finally:
            in_progress.decrement()

    return append


def _append_to(batch: Any, values: Sequence[bytes], start: int, stop: int) -> int:
    records = batch.records
    if records._closed or not isinstance(records._builder, DefaultRecordBatchBuilder):
        return start  # being sent
    builder = records._builder
    if builder._first_timestamp is None:  # send() opens a batch with its first record
        return start
    timestamp = int(time.time() * 1000)
    timestamp_delta = _varint(timestamp - builder._first_timestamp)
    # A record: length, attributes 0, timestamp delta, offset delta, key null (-1), value
    # length, value, 0 headers.
    fixed = 3 + len(timestamp_delta)  # attributes, key null, header count, timestamp delta
    room = builder._batch_size - len(builder._buffer)
    offset = records._next_offset
    varints = _VARINTS
    small = _SMALL
    parts: list[bytes] = []
    add = parts.append
    index = start
    while index < stop:
        value = values[index]
        size = len(value)
        offset_delta = varints[offset] if offset < small else encode_varint(offset)
        value_size = varints[size] if size < small else encode_varint(size)
        body = fixed + len(offset_delta) + len(value_size) + size
        length = varints[body] if body < small else encode_varint(body)
        total = len(length) + body
        if total > room:
            break
        room -= total
        add(b"%b\x00%b%b\x01%b%b\x00" % (length, timestamp_delta, offset_delta, value_size, value))
        offset += 1
        index += 1
    count = index - start
    if count:
        builder._buffer += b"".join(parts)
        builder._num_records += count
        builder._last_offset = offset - 1
        builder._max_timestamp = max(builder._max_timestamp, timestamp)
        records._next_offset = offset
        batch.max_record_size = max(batch.max_record_size, *map(len, parts))
        batch.last_append = time.monotonic()
    return index


def _append_keyed(
    batch: Any, values: Sequence[bytes], keys: Sequence[bytes], start: int, stop: int
) -> int:
    """``_append_to`` for records with keys (``--key-column``)."""
    records = batch.records
    if records._closed or not isinstance(records._builder, DefaultRecordBatchBuilder):
        return start  # being sent
    builder = records._builder
    if builder._first_timestamp is None:  # send() opens a batch with its first record
        return start
    timestamp = int(time.time() * 1000)
    timestamp_delta = _varint(timestamp - builder._first_timestamp)
    # A record: length, attributes 0, timestamp delta, offset delta, key length, key, value
    # length, value, 0 headers.
    fixed = 2 + len(timestamp_delta)  # attributes, header count, timestamp delta
    room = builder._batch_size - len(builder._buffer)
    offset = records._next_offset
    varints = _VARINTS
    small = _SMALL
    parts: list[bytes] = []
    add = parts.append
    index = start
    while index < stop:
        value = values[index]
        key = keys[index]
        size = len(value)
        key_size = len(key)
        offset_delta = varints[offset] if offset < small else encode_varint(offset)
        value_size = varints[size] if size < small else encode_varint(size)
        key_length = varints[key_size] if key_size < small else encode_varint(key_size)
        body = fixed + len(offset_delta) + len(key_length) + key_size + len(value_size) + size
        length = varints[body] if body < small else encode_varint(body)
        total = len(length) + body
        if total > room:
            break
        room -= total
        add(
            b"%b\x00%b%b%b%b%b%b\x00"
            % (length, timestamp_delta, offset_delta, key_length, key, value_size, value)
        )
        offset += 1
        index += 1
    count = index - start
    if count:
        builder._buffer += b"".join(parts)
        builder._num_records += count
        builder._last_offset = offset - 1
        builder._max_timestamp = max(builder._max_timestamp, timestamp)
        records._next_offset = offset
        batch.max_record_size = max(batch.max_record_size, *map(len, parts))
        batch.last_append = time.monotonic()
    return index
