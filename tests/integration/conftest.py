"""Integration fixtures: a fresh topic, bucket and job per test, the CLI as a subprocess, and an
independent read_committed consumer to check what landed in Kafka."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from csv_to_kafka.config import KafkaClient
from tests.reliability.oracle import expected_records, read_partition

CLIENTS = ["confluent", "kafka-python"]


def committed(bootstrap: str, topic: str) -> list[tuple[int, dict[str, Any]]]:
    """Every committed record of partition 0, from offset 0: (offset, decoded value)."""
    return [
        (offset, orjson.loads(value))
        for offset, value in read_partition(bootstrap, topic, timeout=60)
    ]


@dataclass
class Job:
    """One copy job under test: its object, topic, table, and how to run the CLI on it."""

    env: dict[str, str]
    client: KafkaClient
    bucket: str
    key: str = "data.csv"
    topic: str = field(default_factory=lambda: f"test-{uuid.uuid4()}")
    job_id: str = field(default_factory=lambda: f"job-{uuid.uuid4()}")
    table: str = "csv-to-kafka-test-checkpoints"
    data: bytes = b""
    # The listener the CLI connects to, when not the plaintext one, and its --auth options; the
    # test's own reads (records) always use the plaintext listener.
    listener: str | None = None
    kafka_args: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def cli_bootstrap(self) -> str:
        return self.listener or self.bootstrap

    def put(self, data: bytes) -> None:
        self.data = data
        boto3.client("s3").put_object(Bucket=self.bucket, Key=self.key, Body=data)

    def args(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "csv_to_kafka.cli",
            "run",
            "--source",
            self.source,
            "--topic",
            self.topic,
            "--bootstrap-servers",
            self.cli_bootstrap,
            *self.kafka_args,
            "--job-id",
            self.job_id,
            "--checkpoint-table",
            self.table,
            "--kafka-client",
            self.client,
            "--progress",
            "json",
            "--metrics-interval",
            "5",
            *extra,
        ]

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, **self.env, **(extra or {})}
        env.setdefault("CSV_TO_KAFKA_RETRY_SECONDS", "60")
        return env

    def command(
        self, name: str, *extra: str, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        """``csv-to-kafka NAME --source SOURCE EXTRA...`` (check, infer-schema), to its end."""
        return subprocess.run(
            [sys.executable, "-m", "csv_to_kafka.cli", name, "--source", self.source, *extra],
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run(
        self, *extra: str, env: dict[str, str] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(*extra),
            env=self.process_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.args(*extra),
            env=self.process_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def verify(
        self, *extra: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "csv_to_kafka.cli",
                "verify",
                "--source",
                self.source,
                "--topic",
                self.topic,
                "--bootstrap-servers",
                self.cli_bootstrap,
                *self.kafka_args,
                "--kafka-client",
                self.client,
                *extra,
            ],
            env=self.process_env(env),
            capture_output=True,
            text=True,
            timeout=240,
        )

    def records(self) -> list[dict[str, Any]]:
        return [value for _offset, value in committed(self.bootstrap, self.topic)]

    def expected(self, **fmt: Any) -> list[dict[str, Any]]:
        return expected_records(self.data, self.source, **fmt)

    def checkpoint(self) -> dict[str, Any] | None:
        dynamodb = boto3.client("dynamodb")
        try:
            item = dynamodb.get_item(
                TableName=self.table, Key={"job_id": {"S": self.job_id}}, ConsistentRead=True
            ).get("Item")
        except dynamodb.exceptions.ResourceNotFoundException:
            return None  # the first run creates the table: none yet is no checkpoint yet
        if item is None:
            return None
        return {name: next(iter(value.values())) for name, value in item.items()}

    def assert_exact(self, **fmt: Any) -> None:
        """The oracle: the committed records are the CSV's rows, in order, once each."""
        got = self.records()
        want = self.expected(**fmt)
        lines = [record["_source_line"] for record in got]
        assert len(lines) == len(set(lines)), "duplicates in the topic"
        assert lines == sorted(lines), "records out of order"
        assert len(got) == len(want), f"{len(got)} records, {len(want)} rows"
        assert got == want


def wait_for_progress(
    proc: subprocess.Popen[str], job: Job, rows: int, timeout: float = 120
) -> None:
    """Wait until the job's checkpoint shows at least ``rows`` committed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cp = job.checkpoint()
        if cp is not None and int(cp.get("total_sent", 0)) >= rows:
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended early with {proc.returncode}: "
                f"{proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint with {rows} rows within {timeout}s")


def kill(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> int:
    proc.send_signal(sig)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert_no_parser_left(proc.pid)
    return proc.returncode


def parser_processes(parent: int) -> list[int]:
    """The pids of the parser processes that ``parent`` started and that are still running."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        mine = b"csv_to_kafka._parse_process" in argv and argv[-2:-1] == [str(parent).encode()]
        if mine and state != "Z":
            found.append(int(entry.name))
    return found


def assert_no_parser_left(parent: int, timeout: float = 10) -> None:
    """However the copy ended, its parser process ends with it (it dies with its parent)."""
    deadline = time.monotonic() + timeout
    while parser_processes(parent) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert parser_processes(parent) == [], f"parser processes of {parent} outlived it"


@pytest.fixture(scope="session")
def bucket(stack: dict[str, str]) -> str:
    name = f"test-{uuid.uuid4()}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def job(stack: dict[str, str], bucket: str, client: str) -> Iterator[Job]:
    return Job(env=stack, client=client, bucket=bucket, key=f"{uuid.uuid4()}.csv")


def make_csv(rows: int, *, seed: int = 7) -> bytes:
    """A CSV that exercises the parser: quoted commas, quotes, newlines, non-ASCII, empties."""
    import random

    rng = random.Random(seed)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "email", "amount", "note"])
    for i in range(1, rows + 1):
        kind = i % 20
        note = {
            0: f"line one\nline two {i}",
            1: f'says "hi", {i}',
            2: "",
            3: f"Zoë naïve café {i} — ✓",
            4: f"  spaced {i}  ",
        }.get(kind, f"note {rng.randrange(10**6)}")
        writer.writerow([i, f"name{i}", f"user{i}@example.com", f"{rng.random() * 1000:.2f}", note])
    return out.getvalue().encode()
