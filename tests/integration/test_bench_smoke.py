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


def test_bench_parts_plan_vs_check_reports_interleaved_medians(stack: dict[str, str]) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.parts", "--rows", "2000", "--plan-vs-check", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout[run.stdout.index("{\n") :])  # after datagen's lines
    assert result["rounds"] == 2
    assert len(result["check_s"]) == len(result["plan_s"]) == 2
    assert result["plan_median_s"] > 0
    assert result["check_median_s"] > 0
    assert result["plan_over_check"] == round(result["plan_median_s"] / result["check_median_s"], 3)


def test_bench_parts_where_splits_the_get_from_the_plan_pass(stack: dict[str, str]) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.parts", "--rows", "2000", "--where", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout[run.stdout.index("{\n") :])  # after datagen's lines
    assert result["rounds"] == 2
    assert len(result["read_s"]) == len(result["plan_s"]) == 2
    assert result["plan_median_s"] > 0
    assert result["read_share"] == round(result["read_median_s"] / result["plan_median_s"], 3)
