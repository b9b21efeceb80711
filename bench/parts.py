"""The parts benchmark (issue 16): ``plan`` against ``check``, and N parts side by side
against one copy of the same object.

    eval "$(local/stack env)"; .venv/bin/python -m bench.parts --rows 2000000 --parts 2

    .venv/bin/python -m bench.parts --rows 2000000 --plan-vs-check 7 [--dead-letters]

``--plan-vs-check N`` runs only ``check`` and ``plan --output -`` (the plan to stdout: the same
S3 requests as check, one HEAD and one GET), N times each, interleaved (check, plan, check,
plan, ...) so that a drift of the shared machine weighs on both alike, and reports the medians.
With ``--dead-letters`` a third command joins them: ``plan --errors-tolerance all`` of
bench.dead_letters's copy of the file with 1% bad rows (its planned bad rows checked).

``--where N`` splits plan's time, in this process (no start-up): the object's GET drained
alone, then the whole plan pass (``plan --parts 16`` to a scratch file), N times each, medians.

Each case runs the CLI as a child process (wall time from the fork to the exit, start-up
included), on a fresh topic and job id; every copy is checked by ``verify`` (``--plan`` for
the parts). Prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from . import datagen

BUCKET = "csv-to-kafka-bench"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "csv_to_kafka.cli", *args]


def _timed(args: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 (our own CLI, with our interpreter)
        args, capture_output=True, text=True, check=False, timeout=3600
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(
            f"bench.parts: {' '.join(args[3:5])} exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return seconds, done.stdout


def _side_by_side(commands: list[list[str]]) -> float:
    started = time.monotonic()
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
        for c in commands
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"bench.parts: a part exited {proc.returncode}: {err[-2000:]}")
    return time.monotonic() - started


def _plan_vs_check(
    source: str, parts: int, rounds: int, damaged: tuple[str, int] | None = None
) -> dict[str, Any]:
    """check and plan of ``source``, interleaved; with ``damaged`` (its source and bad-row
    count) also ``plan --errors-tolerance all`` of that copy with 1% bad rows."""
    plan_args = ["--parts", str(parts), "--output", "-", "--progress", "none"]
    commands = {
        "check": _cli("check", "--source", source, "--progress", "none"),
        "plan": _cli("plan", "--source", source, *plan_args),
    }
    if damaged:
        bad_source, bad_rows = damaged
        tolerate = ["--errors-tolerance", "all", "--max-bad-rows", str(bad_rows)]
        commands["plan_all_1pct_bad"] = _cli("plan", "--source", bad_source, *plan_args, *tolerate)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _round in range(rounds):
        for name, args in commands.items():
            seconds, out = _timed(args)
            times[name].append(round(seconds, 3))
            if name == "plan_all_1pct_bad":
                planned = sum(part["bad_rows"] for part in json.loads(out)["parts"])
                if planned != bad_rows:
                    raise SystemExit(f"bench.parts: plan counted {planned} bad rows of {bad_rows}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    result: dict[str, Any] = {"rounds": rounds}
    for name in commands:
        result[f"{name}_s"] = times[name]
        result[f"{name}_median_s"] = medians[name]
    result["plan_over_check"] = round(medians["plan"] / medians["check"], 3)
    if damaged:
        result["plan_all_1pct_bad_over_plan"] = round(
            medians["plan_all_1pct_bad"] / medians["plan"], 3
        )
    return result


def _damaged_source(s3: Any, csv_file: datagen.CsvFile) -> tuple[str, int]:
    """bench.dead_letters's copy of the file with 1% bad rows (a field too many), in S3."""
    from .dead_letters import damage  # noqa: PLC0415

    clean = Path(csv_file.path)
    damaged = clean.with_name(clean.stem + "-1pct-bad.csv")
    bad = damage(clean, damaged)
    stand_in = dataclasses.replace(csv_file, path=str(damaged), bytes=damaged.stat().st_size)
    key = f"bench/{damaged.name}"
    return datagen.upload(s3, stand_in, BUCKET, key=key), bad


def _where(source: str, rounds: int) -> dict[str, Any]:
    """The GET alone against the whole plan pass, in this process."""
    import contextlib  # noqa: PLC0415
    import io  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from csv_to_kafka._retry import RetryPolicy  # noqa: PLC0415
    from csv_to_kafka.cli import main as cli_main  # noqa: PLC0415
    from csv_to_kafka.config import parse_source_uri  # noqa: PLC0415
    from csv_to_kafka.source import S3Object  # noqa: PLC0415

    uri = parse_source_uri(source)
    s3 = S3Object(uri.bucket, uri.key, retry=RetryPolicy(total_seconds=60))
    times: dict[str, list[float]] = {"read": [], "plan": []}
    with tempfile.TemporaryDirectory() as scratch:
        args = ["plan", "--source", source, "--parts", "16", "--output", f"{scratch}/p.json"]
        for _round in range(rounds):
            started = time.monotonic()
            info = s3.head()
            size = sum(map(len, s3.chunks(info)))
            times["read"].append(round(time.monotonic() - started, 3))
            if size != info.size:
                raise SystemExit(f"bench.parts: read {size} of {info.size} bytes")
            started = time.monotonic()
            with contextlib.redirect_stdout(io.StringIO()):
                code = cli_main([*args, "--progress", "none"])
            times["plan"].append(round(time.monotonic() - started, 3))
            if code:
                raise SystemExit(f"bench.parts: plan exited {code}")
    read_s, plan_s = statistics.median(times["read"]), statistics.median(times["plan"])
    return {
        "rounds": rounds,
        "read_s": times["read"],
        "plan_s": times["plan"],
        "read_median_s": read_s,
        "plan_median_s": plan_s,
        "read_share": round(read_s / plan_s, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parts", description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--table", default="csv-to-kafka-bench-checkpoints")
    parser.add_argument(
        "--plan-vs-check",
        type=int,
        metavar="N",
        help="only check and plan, N times each, interleaved; their medians",
    )
    parser.add_argument(
        "--dead-letters",
        action="store_true",
        help="with --plan-vs-check: also plan --errors-tolerance all of a copy with 1%% bad rows",
    )
    parser.add_argument(
        "--where",
        type=int,
        metavar="N",
        help="only the GET drained alone and the plan pass in-process, N times each; medians",
    )
    args = parser.parse_args(argv)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap or not os.environ.get("AWS_ENDPOINT_URL"):
        raise SystemExit('bench.parts: run `eval "$(local/stack env)"` first')
    import boto3  # noqa: PLC0415

    csv_file = datagen.cached_csv(datagen.default_cache_dir(), args.rows, args.seed)
    source = datagen.upload(boto3.client("s3"), csv_file, BUCKET)
    if args.where:
        result = {"rows": args.rows, "bytes": csv_file.bytes}
        result.update(_where(source, args.where))
        print(json.dumps(result, indent=2))
        return 0
    if args.plan_vs_check:
        result = {"rows": args.rows, "bytes": csv_file.bytes, "parts": args.parts}
        damaged = _damaged_source(boto3.client("s3"), csv_file) if args.dead_letters else None
        result.update(_plan_vs_check(source, args.parts, args.plan_vs_check, damaged))
        print(json.dumps(result, indent=2))
        return 0
    plan = f"{source}.plan.json"
    tag = uuid.uuid4().hex[:8]
    kafka = ["--bootstrap-servers", bootstrap, "--checkpoint-table", args.table]
    out: dict[str, Any] = {"rows": args.rows, "bytes": csv_file.bytes, "parts": args.parts}

    out["check_s"], _ = _timed(_cli("check", "--source", source, "--progress", "none"))
    out["plan_s"], _ = _timed(
        _cli(
            "plan",
            "--source",
            source,
            "--parts",
            str(args.parts),
            "--output",
            plan,
            "--progress",
            "none",
        )
    )
    one = ["--topic", f"bench-one-{tag}", "--job-id", f"bench-one-{tag}", *kafka]
    out["one_s"], _ = _timed(_cli("run", "--source", source, *one, "--progress", "none"))
    _timed(
        _cli(
            "verify",
            "--source",
            source,
            "--topic",
            f"bench-one-{tag}",
            "--bootstrap-servers",
            bootstrap,
        )
    )
    parts = ["--topic", f"bench-parts-{tag}", "--job-id", f"bench-parts-{tag}", *kafka]
    out["side_by_side_s"] = _side_by_side(
        [
            _cli("run", "--plan", plan, "--part", str(i), *parts, "--progress", "none")
            for i in range(args.parts)
        ]
    )
    _timed(
        _cli(
            "verify",
            "--plan",
            plan,
            "--topic",
            f"bench-parts-{tag}",
            "--bootstrap-servers",
            bootstrap,
        )
    )
    out["plan_over_check"] = round(out["plan_s"] / out["check_s"], 3)
    out["speedup"] = round(out["one_s"] / out["side_by_side_s"], 3)
    for name in ("one", "side_by_side"):
        out[f"{name}_rows_per_s"] = round(args.rows / out[f"{name}_s"])
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
