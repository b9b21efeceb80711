"""Fixtures of the documentation tests: the fenced commands of docs/*.md and where they run.

A fenced ``bash`` block in docs/operations.md and docs/quick-reference.md is preceded by a
marker comment that says how it is tested (every such block must have one):

- ``<!-- doc-test: local [exit=N] [source=bad] [stdout=rows] -->``: run as it is, with
  ``bash -euo pipefail``, against the local stack, in the order of the page. The shell variables
  of the page's setup block point at this test's bucket, topic and table; ``kafka-*.sh`` are
  shims that run the same Kafka tools with ``local/stack run-class``.
- ``<!-- doc-test: aws -->``: needs an AWS account: each ``aws SERVICE OPERATION`` must exist and
  each of its flags must be in that operation's ``aws ... help``.
- ``<!-- doc-test: script -->``: a deployment script: each flag must be in its ``--help``.
- ``<!-- doc-test: setup -->``: the variables the page uses; the test sets its own.
- ``<!-- doc-test: skip REASON -->``.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import zstandard

from tests.integration.conftest import make_csv

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
STACK = ROOT / "local" / "stack"
VENV_BIN = Path(sys.executable).parent
ROWS = 20_000
PART_ROWS = 2_000  # rows of each object under the prefix

MARKER = re.compile(r"^<!-- doc-test: (\w+)(.*?) -->\s*$")
# The Kafka distribution's scripts, as the docs spell them, and the class each one runs.
KAFKA_TOOLS = {
    "kafka-console-consumer.sh": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-get-offsets.sh": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-configs.sh": "org.apache.kafka.tools.ConfigCommand",
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
}


@dataclass
class Block:
    page: str
    line: int  # of the opening fence
    kind: str
    options: dict[str, str]
    text: str

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"

    def commands(self) -> list[str]:
        """The block's commands, continuation lines joined, comments dropped."""
        joined = self.text.replace("\\\n", " ")
        out = []
        for raw in joined.splitlines():
            line = raw.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
        return out


@dataclass
class Page:
    name: str
    blocks: list[Block] = field(default_factory=list)
    unmarked: list[int] = field(default_factory=list)  # lines of bash fences with no marker


def parse(name: str) -> Page:
    page = Page(name)
    lines = (DOCS / name).read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```bash"):
            start = i
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            text = "\n".join(lines[start + 1 : j]) + "\n"
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            marker = MARKER.match(lines[k]) if k >= 0 else None
            if marker is None:
                page.unmarked.append(start + 1)
            else:
                kind, rest = marker.group(1), marker.group(2).strip()
                options = dict(o.split("=", 1) for o in shlex.split(rest) if "=" in o)
                if kind == "skip":
                    options["reason"] = rest
                page.blocks.append(Block(name, start + 1, kind, options, text))
            i = j
        i += 1
    return page


def bad_csv() -> bytes:
    """Good rows, then a row with one field too many at line 1,002."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name"])
    for i in range(1, 1001):
        writer.writerow([i, f"name {i}"])
    writer.writerow([1001, "name 1001", "one field too many"])
    writer.writerow([1002, "name 1002"])
    return out.getvalue().encode()


@dataclass
class DocEnv:
    """What the page's variables point at here, and the environment to run its blocks in."""

    env: dict[str, str]
    bad_source: str
    rows: int
    bin_dir: Path

    def run(
        self, script: str, *, extra: dict[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env={**self.env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )


def write_shims(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for script, cls in KAFKA_TOOLS.items():
        shim = directory / script
        shim.write_text(f'#!/usr/bin/env bash\nexec "{STACK}" run-class {cls} "$@"\n')
        shim.chmod(0o755)


@pytest.fixture(scope="module")
def docenv(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> DocEnv:
    if subprocess.run([str(STACK), "kafka-pid"], capture_output=True).returncode != 0:
        pytest.skip("the doc tests run Kafka's tools on local/stack's class path: no local stack")
    tag = uuid.uuid4().hex[:10]
    bucket = f"docs-{tag}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="orders.csv", Body=make_csv(ROWS))
    s3.put_object(Bucket=bucket, Key="orders-bad.csv", Body=bad_csv())
    # A prefix of several objects (docs/operations.md, "Many objects in one job"): gzip, zstd,
    # plain, and the _SUCCESS marker an export leaves.
    parts = [make_csv(PART_ROWS, seed=seed) for seed in range(3)]
    s3.put_object(Bucket=bucket, Key="parts/part-0000.csv.gz", Body=gzip.compress(parts[0]))
    zstd = zstandard.ZstdCompressor().compress(parts[1])
    s3.put_object(Bucket=bucket, Key="parts/part-0001.csv.zst", Body=zstd)
    s3.put_object(Bucket=bucket, Key="parts/part-0002.csv", Body=parts[2])
    s3.put_object(Bucket=bucket, Key="parts/_SUCCESS", Body=b"")
    bin_dir = tmp_path_factory.mktemp("bin")
    write_shims(bin_dir)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{VENV_BIN}:{os.environ['PATH']}",
        "JOB_ID": f"docs-{tag}",
        "SOURCE": f"s3://{bucket}/orders.csv",
        "PREFIX": f"s3://{bucket}/parts/",
        "TOPIC": f"docs-{tag}",
        "BOOTSTRAP": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        "TABLE": "csv-to-kafka-docs-checkpoints",
        "LOGS": "/csv-to-kafka/docs",
        "CSV_TO_KAFKA_RETRY_SECONDS": "60",
        "CSV_TO_KAFKA_METRICS_INTERVAL": "5",
    }
    return DocEnv(env, f"s3://{bucket}/orders-bad.csv", ROWS, bin_dir)
