"""The benchmark harness (``make bench``, bench/) still runs: a tiny smoke of it, one client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_writes_its_results(stack: dict[str, str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--rows",
            "20000",
            "--runs",
            "confluent",
            "--no-warmup",
            "--results-dir",
            str(results),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    [path] = results.glob("bench-*.json")
    document = json.loads(path.read_text())
    assert {"machine", "csv", "runs", "targets", "table", "started_at", "duration_s"} <= set(
        document
    )
    assert {"nproc", "cpu_model", "python", "confluent_kafka", "kafka_python"} <= set(
        document["machine"]
    )
    assert document["csv"]["rows"] == 20_000
    confluent = document["runs"]["confluent"]
    assert {"rows_per_s", "mb_per_s", "cpu_s", "max_rss_mb", "wall_s", "check_ok"} <= set(confluent)
    assert confluent["rows"] == 20_000
    assert confluent["exit_code"] == 0
    assert confluent["check_ok"] is True  # csv-to-kafka verify: exact
    assert confluent["rows_per_s"] > 0
    assert confluent["max_rss_mb"] > 0
    assert confluent["cpu_s"] > 0
    # the rate between the first and the last record's CreateTime, without the start-up
    assert confluent["extra"]["span_rows_per_s"] > confluent["rows_per_s"]
    assert "confluent rows/s" in document["table"]
    assert str(path) in run.stdout


def test_bench_dead_letters_case(stack: dict[str, str], tmp_path: Path) -> None:
    """``--dead-letters`` (issue 14): the clean file and its 1%-bad copy, one round, both
    topics verified; the ratio is recorded (not asserted: it is the machine's, not the code's)."""
    results = tmp_path / "results"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            *("--rows", "20000", "--runs", "none", "--no-warmup"),
            *("--dead-letters", "--dead-letters-repeat", "1"),
            *("--results-dir", str(results), "--cache-dir", str(tmp_path / "cache")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [path] = results.glob("bench-*.json")
    dead = json.loads(path.read_text())["dead_letters"]
    assert dead["bad_rows"] > 0
    assert dead["verified"] is True
    (round_,) = dead["rounds"]
    assert round_["damaged"]["check_ok"] is True
    assert "dead letters in" in round_["damaged"]["check"]
    assert dead["ratio"] > 0
