"""murmur2 and the keyed partition, against the Java client's answers for 64 keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from csv_to_kafka.partitioning import murmur2, partition_for, to_positive

TABLE = json.loads((Path(__file__).parents[1] / "data" / "murmur2_java.json").read_text())["keys"]


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row["key"][:16] or "empty")
def test_murmur2_and_the_partition_are_the_java_clients(row: dict[str, object]) -> None:
    key = bytes.fromhex(str(row["key"]))
    assert murmur2(key) == row["murmur2"]
    partitions = row["partition"]
    assert isinstance(partitions, dict)
    for count, partition in partitions.items():
        assert partition_for(key, int(count)) == partition, f"{count} partitions"


def test_the_table_covers_every_tail_length_and_negative_java_bytes_and_hashes() -> None:
    keys = [bytes.fromhex(str(row["key"])) for row in TABLE]
    assert {len(key) % 4 for key in keys} == {0, 1, 2, 3}
    assert any(byte >= 0x80 for key in keys for byte in key)  # a Java byte is signed
    assert any(int(str(row["murmur2"])) < 0 for row in TABLE)


def test_to_positive_masks_the_sign_bit_as_java_does_not_abs() -> None:
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0  # abs() would give 2**31, past any partition count's range
    assert to_positive(5) == 5


def test_a_topic_has_at_least_one_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for(b"k", 0)
