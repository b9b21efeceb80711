"""Our murmur2 partitioner against the Java client itself, run by the JVM on random keys.

tests/integration/java/JavaPartitions.java asks kafka-clients (the jars the local stack runs) for
``Utils.murmur2`` and ``BuiltInPartitioner.partitionForKey``: the Java producer's default
partitioner, which Kafka Streams and ksqlDB follow.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from csv_to_kafka.partitioning import murmur2, partition_for

ROOT = Path(__file__).resolve().parents[2]


def java_answers(lines: list[str]) -> list[tuple[int, int]]:
    result = subprocess.run(
        [
            str(ROOT / "local" / "stack"),
            "run-class",
            str(Path(__file__).with_name("java") / "JavaPartitions.java"),
        ],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [(int(h), int(p)) for h, p in (line.split() for line in result.stdout.splitlines())]


def test_random_keys_go_where_the_java_client_sends_them() -> None:
    rng = random.Random(20261204)
    cases: list[tuple[bytes, int]] = []
    for _ in range(2000):
        size = rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 64, 257])
        key = (
            rng.randbytes(size)
            if rng.random() < 0.5
            else rng.choice(
                [
                    f"customer-{rng.randrange(10**9)}",
                    f"{rng.randrange(-(10**6), 10**6)}",
                    "é日本€" * size,
                ]
            ).encode()
        )
        cases.append((key, rng.choice([1, 2, 3, 6, 12, 64, 1000])))
    answers = java_answers([f"{key.hex()} {partitions}" for key, partitions in cases])
    assert len(answers) == len(cases)
    for (key, partitions), (java_hash, java_partition) in zip(cases, answers, strict=True):
        assert murmur2(key) == java_hash, key.hex()
        assert partition_for(key, partitions) == java_partition, (key.hex(), partitions)
