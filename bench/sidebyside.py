"""Two layouts of the same copy, side by side: the harness of issue 15's speed figures.

``bench.keyed`` (keyed over 6 partitions against unkeyed) and ``bench.typed`` (5 of 13 columns
typed by a schema against no schema) are this loop with their own options. The same object
(bench/datagen.py's file) is copied with each client in each layout, on a fresh topic and job
each time; the layouts alternate within a round and swap order from one round to the next, so
that a shift of the machine's load falls on both. Each run is the CLI as a child process (wall
time from the fork to the exit, start-up included; CPU seconds of the process and its parser
from ``wait4``). Prints the medians per client and layout, the ratio of the rates (candidate /
baseline, against the issue's target) and the load average, as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import datagen
from .measure import run_child

__all__ = ["Comparison", "main"]

BUCKET = "csv-to-kafka-bench"
CLIENTS = ("confluent", "kafka-python")


@dataclass(frozen=True)
class Comparison:
    """What one benchmark compares: a candidate layout against a baseline, and its target."""

    prog: str
    description: str
    candidate: str
    baseline: str
    target: float
    add_arguments: Callable[[argparse.ArgumentParser], None]
    # The CLI arguments of each layout (candidate, baseline) from the parsed options.
    layouts: Callable[[argparse.Namespace], dict[str, list[str]]]
    # Facts of the layout for the JSON output, e.g. the partition count.
    details: Callable[[argparse.Namespace], dict[str, Any]]


def main(comparison: Comparison, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=comparison.prog, description=comparison.description)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--table", default="csv-to-kafka-bench-checkpoints")
    parser.add_argument("--strict", action="store_true", help="exit 3 below the target")
    comparison.add_arguments(parser)
    args = parser.parse_args(argv)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap or not os.environ.get("AWS_ENDPOINT_URL"):
        raise SystemExit(f'{comparison.prog}: run `eval "$(local/stack env)"` first')
    import boto3  # noqa: PLC0415 (after the environment check)

    csv_file = datagen.cached_csv(datagen.default_cache_dir(), args.rows, args.seed)
    source = datagen.upload(boto3.client("s3"), csv_file, BUCKET)
    clients = [c for c in args.clients.split(",") if c]
    layouts = comparison.layouts(args)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        c: {name: [] for name in layouts} for c in clients
    }
    with tempfile.TemporaryDirectory(prefix="bench-side-by-side-") as logs:
        for round_ in range(args.rounds):
            order = list(layouts) if round_ % 2 == 0 else list(reversed(layouts))
            for client in clients:
                for name in order:
                    tag = f"{name}-{uuid.uuid4().hex[:8]}"
                    child = run_child(
                        [sys.executable, "-m", "csv_to_kafka.cli", "run", "--source", source,
                         "--topic", f"bench-{tag}", "--job-id", f"bench-{tag}",
                         "--bootstrap-servers", bootstrap, "--checkpoint-table", args.table,
                         "--kafka-client", client, "--progress", "none", *layouts[name]],
                        Path(logs) / f"{tag}.log",
                        timeout=3600,
                    )  # fmt: skip
                    if child.exit_code != 0:
                        raise SystemExit(
                            f"{comparison.prog}: {client} {name} exited {child.exit_code}:\n"
                            f"{child.log_tail()}"
                        )
                    runs[client][name].append({"wall_s": child.wall_s, "cpu_s": child.cpu_s})
                    print(
                        f"round {round_ + 1} {client} {name}: {child.wall_s:.2f} s, "
                        f"cpu {child.cpu_s:.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    out: dict[str, Any] = {
        "rows": args.rows,
        "bytes": csv_file.bytes,
        **comparison.details(args),
        "rounds": args.rounds,
        "clients": {},
    }
    met = True
    for client in clients:
        figures: dict[str, Any] = {}
        for name in layouts:
            wall = statistics.median(r["wall_s"] for r in runs[client][name])
            cpu = statistics.median(r["cpu_s"] for r in runs[client][name])
            figures[name] = {
                "median_s": round(wall, 3),
                "rows_per_s": round(args.rows / wall),
                "median_cpu_s": round(cpu, 3),
                "runs_s": [round(r["wall_s"], 3) for r in runs[client][name]],
            }
        ratio = figures[comparison.baseline]["median_s"] / figures[comparison.candidate]["median_s"]
        figures[f"{comparison.candidate}_over_{comparison.baseline}"] = round(ratio, 3)
        figures["target_met"] = ratio >= comparison.target
        met = met and ratio >= comparison.target
        out["clients"][client] = figures
    out["target"] = comparison.target
    out["load_average"] = [round(load, 2) for load in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 3 if args.strict and not met else 0
