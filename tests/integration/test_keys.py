"""Keyed copies (issue 15): each record's key, its partition as the Java client picks it, file
order within each partition, and exactly once across partitions through kills.

The partition is checked against ``java_partition`` below, a reference written here from the
Java client's ``Utils.murmur2``/``toPositive`` (not the product's partitioning.py), itself
checked against vectors the Java client gave.
"""

from __future__ import annotations

import csv
import io
import random
import signal
import struct
import subprocess
import sys
import time
from typing import Any

import orjson
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from tests.reliability.oracle import _consumer

from .conftest import Job, kill


def java_murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, transcribed line by line with Java's int overflow."""

    def to_int(x: int) -> int:
        x &= 0xFFFFFFFF
        return x - (1 << 32) if x >= 1 << 31 else x

    def ushr(x: int, n: int) -> int:  # Java's >>>
        return (x & 0xFFFFFFFF) >> n

    length = len(data)
    seed = to_int(0x9747B28C)
    m = 0x5BD1E995
    r = 24
    h = to_int(seed ^ length)
    length4 = length // 4
    for i in range(length4):
        (k,) = struct.unpack_from("<i", data, i * 4)
        k = to_int(k * m)
        k = to_int(k ^ ushr(k, r))
        k = to_int(k * m)
        h = to_int(h * m)
        h = to_int(h ^ k)
    rest = length % 4
    if rest == 3:
        h = to_int(h ^ ((data[(length & ~3) + 2] & 0xFF) << 16))
    if rest >= 2:
        h = to_int(h ^ ((data[(length & ~3) + 1] & 0xFF) << 8))
    if rest >= 1:
        h = to_int(h ^ (data[length & ~3] & 0xFF))
        h = to_int(h * m)
    h = to_int(h ^ ushr(h, 13))
    h = to_int(h * m)
    return to_int(h ^ ushr(h, 15))


def java_partition(key: bytes, partitions: int) -> int:
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


def test_the_reference_agrees_with_known_java_hashes() -> None:
    # Utils.murmur2 of these, from the Java client (tests/integration/test_partitioning.py
    # runs the JVM on 2,000 random keys against the product's function).
    assert java_murmur2(b"21") == -973932308
    assert java_murmur2(b"foobar") == -790332482
    assert java_murmur2(b"a-little-bit-long-string") == -985981536
    assert java_murmur2(b"abc") == 479470107


def keyed_csv(rows: int, seed: int = 15) -> bytes:
    """Customers (some empty, some non-ASCII), regions (some empty), quoted commas, newlines."""
    rng = random.Random(seed)
    customers = [f"customer-{n}" for n in range(40)] + ["", "Zoë, café", 'a "quoted" one']
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "customer", "region", "amount", "note"])
    for i in range(1, rows + 1):
        note = f"line one\nline two {i}" if i % 17 == 0 else f"note {i}"
        region = rng.choice(["eu", "us", "", "ap"])
        writer.writerow([i, rng.choice(customers), region, f"{rng.random() * 100:.2f}", note])
    return out.getvalue().encode()


def read_all(job: Job, partitions: int) -> list[tuple[int, int, bytes | None, dict[str, Any]]]:
    """Every committed record of every partition: (partition, offset, key, value)."""
    consumer = _consumer(job.bootstrap)
    out: list[tuple[int, int, bytes | None, dict[str, Any]]] = []
    try:
        consumer.assign([TopicPartition(job.topic, p, 0) for p in range(partitions)])
        ended: set[int] = set()
        deadline = time.monotonic() + 120
        while len(ended) < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"partitions {ended} of {partitions} read")
            for message in consumer.consume(10_000, timeout=0.1):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        ended.add(message.partition())
                        continue
                    raise RuntimeError(error.str())
                out.append(
                    (
                        message.partition(),
                        message.offset(),
                        message.key(),
                        orjson.loads(message.value()),
                    )
                )
    finally:
        consumer.close()
    return out


def assert_keyed_exact(job: Job, partitions: int, columns: list[str], separator: str) -> None:
    """Each record's key and partition; file order in each partition; the union exactly once."""
    got = read_all(job, partitions)
    want = job.expected()
    by_line = {record["_source_line"]: record for record in want}
    lines = [value["_source_line"] for _p, _o, _k, value in got]
    assert len(lines) == len(set(lines)), "duplicates in the topic"
    assert sorted(lines) == sorted(by_line), f"{len(lines)} records, {len(by_line)} rows"
    used = set()
    for partition in range(partitions):
        mine = [(o, v["_source_line"]) for p, o, _k, v in got if p == partition]
        assert [line for _o, line in sorted(mine)] == sorted(line for _o, line in mine), (
            f"partition {partition} out of file order"
        )
    for partition, _offset, key, value in got:
        record = by_line[value["_source_line"]]
        assert value == record
        expected_key = separator.join(record[c] for c in columns).encode()
        assert key == expected_key
        assert partition == java_partition(expected_key, partitions), expected_key
        used.add(partition)
    assert len(used) == partitions, f"only partitions {sorted(used)} used"


def test_keyed_copy_into_six_partitions(job: Job) -> None:
    """A compound key with empty parts (and an all-empty key) into six partitions: keys and
    partitions as Java's, order per partition, every row once."""
    job.put(keyed_csv(5_000))
    result = job.run(
        "--key-column",
        "customer",
        "--key-column",
        "region",
        "--key-separator",
        "/",
        "--partitions",
        "6",
        "--checkpoint-every",
        "700",
    )
    assert result.returncode == 0, result.stderr
    assert_keyed_exact(job, 6, ["customer", "region"], "/")
    cp = job.checkpoint()
    assert cp is not None
    assert cp["partitions"] == "6"
    assert cp["key_columns"] == "customer,region"
    shown = subprocess.run(
        [sys.executable, "-m", "csv_to_kafka.cli", "status", "--job-id", job.job_id,
         "--checkpoint-table", job.table],
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "6 partition(s), key customer,region" in shown.stdout
    keyed = ("--key-column", "customer", "--key-column", "region", "--key-separator", "/")
    verified = verify(job, *keyed)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verify OK: rows in CSV 5000, records in topic 5000" in verified.stdout
    # Another separator: every key differs from what run gives, and verify says so.
    wrong = verify(job, "--key-column", "customer", "--key-column", "region")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "wrong key or partition 5000" in wrong.stdout


def verify(job: Job, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csv_to_kafka.cli", "verify", "--source", job.source,
         "--topic", job.topic, "--bootstrap-servers", job.bootstrap,
         "--kafka-client", job.client, *extra],
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip


def test_key_columns_from_the_environment(job: Job) -> None:
    job.put(keyed_csv(300, seed=3))
    result = job.run(env={"CSV_TO_KAFKA_KEY_COLUMNS": "customer", "CSV_TO_KAFKA_PARTITIONS": "3"})
    assert result.returncode == 0, result.stderr
    assert_keyed_exact(job, 3, ["customer"], "|")


def test_a_key_column_missing_from_the_header_is_exit_3(job: Job) -> None:
    job.put(keyed_csv(10))
    result = job.run("--key-column", "client", "--partitions", "2")
    assert result.returncode == 3, result.stderr
    assert "key column 'client' is not in the header" in result.stderr
    assert read_all(job, 2) == []


def test_an_existing_topic_of_another_count_is_exit_2(job: Job) -> None:
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_topics([NewTopic(job.topic, num_partitions=4)])[job.topic].result()
    job.put(keyed_csv(10))
    result = job.run("--key-column", "customer", "--partitions", "6")
    assert result.returncode == 2, result.stderr
    assert "has 4 partitions, not --partitions 6" in result.stderr
    # Without --partitions, the topic's count is used.
    result = job.run("--key-column", "customer")
    assert result.returncode == 0, result.stderr
    assert_keyed_exact(job, 4, ["customer"], "|")


def test_unkeyed_multi_partition_topic_is_still_refused(job: Job) -> None:
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_topics([NewTopic(job.topic, num_partitions=2)])[job.topic].result()
    job.put(keyed_csv(10))
    result = job.run()
    assert result.returncode == 2, result.stderr
    assert "--key-column" in result.stderr


def run_until(job: Job, target: int, *extra: str) -> Any:
    proc = job.start(*extra)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        cp = job.checkpoint()
        if cp is not None and int(cp.get("total_sent", 0)) >= target:
            break
        time.sleep(0.02)
    return proc


def test_a_changed_partition_count_is_exit_3(job: Job) -> None:
    job.put(keyed_csv(60_000, seed=5))
    args = ("--key-column", "customer", "--partitions", "3", "--checkpoint-every", "500")
    # killed by its own failpoint after its 4th checkpoint (2,000 rows), on any machine's speed
    crashed = job.run(*args, env={"CSV_TO_KAFKA_FAILPOINTS": "after-checkpoint=4"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    other = job.run("--key-column", "region")
    assert other.returncode == 2, other.stderr
    assert "started with --key-column customer, not --key-column region" in other.stderr
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_partitions([NewPartitions(job.topic, 5)])[job.topic].result()
    result = job.run("--key-column", "customer")
    assert result.returncode == 3, result.stderr
    assert "has 5 partitions, but job" in result.stderr
    assert "started with 3" in result.stderr


def test_keyed_copy_killed_9_at_random_instants(job: Job) -> None:
    """Three kills at random instants of a keyed copy into six partitions (the reliability
    tier's --torture runs twenty on a larger file); the finished topic is exact."""
    keyed_kill_rounds(job, kills=3, rows=40_000)


def keyed_kill_rounds(job: Job, *, kills: int, rows: int) -> None:
    """kill -9 at ``kills`` random instants of a keyed copy into 6 partitions, then a run to the
    end: keys and partitions as Java's, file order per partition, the union exact."""
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    job.put(keyed_csv(rows, seed=seed))
    args = ("--key-column", "customer", "--partitions", "6", "--checkpoint-every", "500")
    landed = 0
    for target in sorted(rng.sample(range(1_000, rows * 8 // 10), kills)):
        proc = run_until(job, target, *args)
        time.sleep(rng.uniform(0, 0.1))  # short: a fast machine must not reach the end first
        if proc.poll() is not None:
            proc.communicate()
            continue
        landed += 1
        assert kill(proc) == -signal.SIGKILL
    final = job.run(*args)
    assert final.returncode == 0, final.stderr
    assert landed >= 1, f"no kill landed before the end (seed {seed})"
    assert_keyed_exact(job, 6, ["customer"], "|")
    verified = verify(job, "--key-column", "customer")
    assert verified.returncode == 0, verified.stdout + verified.stderr
