"""sink.read_partitions: a keyed job's partitions read side by side, each reader its own."""

from __future__ import annotations

import threading

import pytest

from csv_to_kafka.sink import MAX_READERS, read_partitions


class Readers:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.opened: list[int] = []
        self.closed: list[int] = []

    def open(self) -> int:
        with self.lock:
            self.opened.append(len(self.opened))
            return self.opened[-1]

    def close(self, reader: int) -> None:
        with self.lock:
            self.closed.append(reader)


def test_partitions_are_read_side_by_side_and_returned_in_order() -> None:
    readers = Readers()
    # Every read waits for the others: it passes only if the six are read at the same time.
    together = threading.Barrier(6, timeout=30)

    def read(reader: int, partition: int) -> str:
        together.wait()
        return f"p{partition}"

    assert read_partitions(readers.open, readers.close, read, range(6)) == [
        f"p{n}" for n in range(6)
    ]
    assert sorted(readers.opened) == sorted(readers.closed) == list(range(6))


def test_at_most_max_readers_open_and_each_is_closed() -> None:
    readers = Readers()
    seen: dict[int, list[int]] = {}

    def read(reader: int, partition: int) -> int:
        with readers.lock:
            seen.setdefault(reader, []).append(partition)
        return partition * 10

    got = read_partitions(readers.open, readers.close, read, list(range(12)))
    assert got == [n * 10 for n in range(12)]
    assert len(readers.opened) == MAX_READERS
    assert sorted(readers.closed) == readers.opened
    assert sorted(p for ps in seen.values() for p in ps) == list(range(12))


def test_one_reader_reads_in_this_thread() -> None:
    readers = Readers()
    threads: set[str] = set()

    def read(reader: int, partition: int) -> int:
        threads.add(threading.current_thread().name)
        return partition

    assert read_partitions(readers.open, readers.close, read, [3, 1], readers=1) == [3, 1]
    assert threads == {threading.current_thread().name}
    assert readers.closed == [0]
    assert read_partitions(readers.open, readers.close, read, []) == []


def test_an_error_in_one_partition_is_raised_and_every_reader_closed() -> None:
    readers = Readers()

    def read(reader: int, partition: int) -> int:
        if partition == 4:
            raise RuntimeError("partition 4 failed")
        return partition

    with pytest.raises(RuntimeError, match="partition 4 failed"):
        read_partitions(readers.open, readers.close, read, range(12), readers=3)
    assert sorted(readers.closed) == sorted(readers.opened)
