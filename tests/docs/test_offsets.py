"""The end offset of a job's partition, explained: docs/operations.md's arithmetic, on a real job.

A 50,000-row copy is killed (SIGKILL, at its own failpoint after 45,000 rows are sent) while its
one transaction is open with records on the broker, then rerun to the end: its first transaction
is aborted by the rerun, which commits the rows in transactions of about 5,000. Then, with
Kafka's own tools:

    end offset (GetOffsetShell --time -1)
        = committed records (console consumer, read_committed)
        + aborted records (read_uncommitted count - read_committed count)
        + one marker per transaction (DumpLogSegments: endTxnMarker COMMIT and ABORT)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from tests.integration.conftest import make_csv

from .conftest import ROOT, STACK, DocEnv

pytestmark = pytest.mark.docs

ROWS = 50_000
OPERATIONS = ROOT / "docs" / "operations.md"


def count(docenv: DocEnv, topic: str, isolation: str) -> int:
    """Records the console consumer prints, read until two reads agree: a consumer that gives up
    early (its 15 s timeout on a loaded machine) prints fewer lines and no error."""
    counts: list[int] = []
    while len(counts) < 2 or counts[-1] != counts[-2]:
        assert len(counts) < 5, f"{isolation} counts never agreed: {counts}"
        result = docenv.run(
            f'kafka-console-consumer.sh --bootstrap-server "$BOOTSTRAP" --topic {topic} '
            f"--partition 0 --offset earliest --isolation-level {isolation} --timeout-ms 15000 "
            "2>/dev/null | wc -l"
        )
        assert result.returncode == 0, result.stderr
        counts.append(int(result.stdout))
    return counts[-1]


def end_offset(docenv: DocEnv, topic: str) -> int:
    result = docenv.run(
        f'kafka-get-offsets.sh --bootstrap-server "$BOOTSTRAP" --topic {topic} '
        "--partitions 0 --time -1"
    )
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(rf"{re.escape(topic)}:0:(\d+)", result.stdout.strip())
    assert match, result.stdout
    return int(match.group(1))


def markers(topic: str) -> dict[str, int]:
    """Transaction markers in the partition's log segments, as Kafka's DumpLogSegments sees them."""
    state = Path(os.environ.get("CSV_TO_KAFKA_STACK_DIR", ROOT / "local" / ".state"))
    segments = sorted((state / "kafka-data" / f"{topic}-0").glob("*.log"))
    assert segments, f"no log segment of {topic} in {state}"
    result = subprocess.run(
        [
            str(STACK),
            "run-class",
            "org.apache.kafka.tools.DumpLogSegments",
            "--deep-iteration",
            "--files",
            ",".join(map(str, segments)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = re.findall(r"endTxnMarker: (COMMIT|ABORT)", result.stdout)
    return {"COMMIT": found.count("COMMIT"), "ABORT": found.count("ABORT")}


def test_the_end_offset_is_records_plus_aborted_plus_one_marker_per_transaction(
    docenv: DocEnv,
) -> None:
    tag = uuid.uuid4().hex[:10]
    bucket, topic, job = f"docs-offsets-{tag}", f"docs-offsets-{tag}", f"docs-offsets-{tag}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    boto3.client("s3").put_object(Bucket=bucket, Key="rows.csv", Body=make_csv(ROWS))
    args = [
        sys.executable,
        "-m",
        "csv_to_kafka.cli",
        "run",
        "--source",
        f"s3://{bucket}/rows.csv",
        "--topic",
        topic,
        "--bootstrap-servers",
        docenv.env["BOOTSTRAP"],
        "--job-id",
        job,
        "--checkpoint-table",
        docenv.env["TABLE"],
        "--progress",
        "none",
    ]
    # 1. One transaction for the whole file, killed (SIGKILL, by the run's own failpoint) once
    # 45 of its 50 batches of 1,000 rows are sent: the records of the first batches are on the
    # broker (linger.ms is 10), none is committed. A kill from outside, once the high watermark
    # moves, would race the run: a fast machine copies the 50,000 rows before the first poll.
    first = subprocess.run(
        [*args, "--checkpoint-every", "10000000", "--checkpoint-seconds", "3600"],
        env={**docenv.env, "CSV_TO_KAFKA_FAILPOINTS": "in-transaction=45"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert first.returncode == -signal.SIGKILL, first.stderr
    # 2. The rerun aborts it (init_transactions) and copies everything again, committed.
    rerun = subprocess.run(
        [*args, "--checkpoint-every", "5000"],
        env=docenv.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert rerun.returncode == 0, rerun.stderr

    end = end_offset(docenv, topic)
    committed = count(docenv, topic, "read_committed")
    every_record = count(docenv, topic, "read_uncommitted")
    aborted = every_record - committed
    seen = markers(topic)
    figures = {
        "rows": ROWS,
        "end_offset": end,
        "committed_records": committed,
        "aborted_records": aborted,
        "commit_markers": seen["COMMIT"],
        "abort_markers": seen["ABORT"],
    }
    print("offsets:", json.dumps(figures))
    assert committed == ROWS
    verify = subprocess.run(
        [sys.executable, "-m", "csv_to_kafka.cli", "verify", "--source", f"s3://{bucket}/rows.csv",
         "--topic", topic, "--bootstrap-servers", docenv.env["BOOTSTRAP"]],
        env=docenv.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert seen["ABORT"] >= 1, figures
    assert aborted > 0, figures
    assert end == committed + aborted + seen["COMMIT"] + seen["ABORT"], figures


def test_the_docs_state_the_arithmetic_and_their_examples_add_up() -> None:
    text = " ".join(OPERATIONS.read_text().split())
    assert (
        "end offset = committed records + aborted records + one marker per transaction "
        "(committed or aborted)"
    ) in text
    example = re.search(
        r"A ([\d,]+)-row job here ended at offset ([\d,]+): ([\d,]+) transactions", text
    )
    assert example, "the 2,000,000-row example is gone"
    rows, end, txns = (int(g.replace(",", "")) for g in example.groups())
    assert end == rows + txns
    measured = re.search(
        r"ended at offset ([\d,]+) = ([\d,]+) committed records \+ ([\d,]+) aborted records \+ "
        r"([\d,]+) markers \(([\d,]+) commits and ([\d,]+) abort\)",
        text,
    )
    assert measured, "the measured example is gone"
    end, committed, aborted, total, commits, aborts = (
        int(g.replace(",", "")) for g in measured.groups()
    )
    assert end == committed + aborted + total
    assert total == commits + aborts
    assert aborts >= 1
