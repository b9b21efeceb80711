"""Bad rows under ``--errors-tolerance all`` against the clean file (issue 14's speed target).

``python -m bench.dead_letters --rows 2M``: the benchmark's file (``bench/datagen.py``) and a
copy of it with 1% of its rows made bad (a field too many, on rows without a quote), read by
the parse stage exactly as the copy's parser process does (``parse_rows`` with the record
encoder, the C loop where it applies, then ``ready_batches``), in this process, no Kafka.
With ``--copy`` (the local stack's environment set), also one ``csv-to-kafka run`` of each
file, the damaged one with a dead-letter topic. Target: the damaged file at >= 0.9 x the clean
file's rate (a bad row must not knock the fast path off for its whole block).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from csv_to_kafka._parse_process import ready_batches
from csv_to_kafka.record import RecordEncoder
from csv_to_kafka.source import parse_header, parse_rows

from . import datagen

TARGET = 0.9
_CHUNK = 1024 * 1024


def _rows(text: str) -> int:
    text = text.lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def damage(clean: Path, out: Path, every: int = 100) -> int:
    """Copy ``clean`` to ``out`` with a field too many on every ``every``-th quote-free line."""
    bad = 0
    plain = 0
    with clean.open("rb") as src, out.open("wb") as dst:
        dst.write(src.readline())  # the header
        for line in src:
            out_line = line
            if b'"' not in line:
                plain += 1
                if plain % every == 0:
                    out_line = line[:-1] + b",extra\n"
                    bad += 1
            dst.write(out_line)
    return bad


def _chunks(path: Path, start: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        while chunk := f.read(_CHUNK):
            yield chunk


def parse_rate(path: Path, *, tolerate: bool) -> tuple[float, int, int]:
    """(CPU seconds, good rows, bad rows) of the parse stage over the whole file (CPU time: the
    machine is shared, and wall time measured others' work as much as ours)."""
    source = "s3://bench/data.csv"
    header = parse_header(_chunks(path, 0), source=source)
    encoder = RecordEncoder(header.names, source, 1_000_000)
    started = time.process_time()
    batches = parse_rows(
        _chunks(path, header.data_offset),
        source=source,
        start_offset=header.data_offset,
        start_line=header.data_line,
        expected_fields=len(header.names),
        batch_rows=1000,
        encoder=encoder,
        tolerate=tolerate,
    )
    good = bad = 0
    for ready in ready_batches(batches, encoder):
        good += len(ready.values)
        bad += len(ready.rejects)
    return time.process_time() - started, good, bad


def copy_rate(path: Path, *extra: str) -> float:
    """Seconds of one ``csv-to-kafka run`` of ``path`` (put in the stack's S3) to a new topic."""
    import boto3  # noqa: PLC0415

    bucket, key = "bench-dead-letters", f"{uuid.uuid4()}.csv"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(path), bucket, key)
    topic = f"bench-dlq-{uuid.uuid4()}"
    args = [sys.executable, "-m", "csv_to_kafka.cli", "run", "--source", f"s3://{bucket}/{key}"]
    args += ["--topic", topic, "--bootstrap-servers", os.environ["KAFKA_BOOTSTRAP_SERVERS"]]
    args += ["--job-id", topic, "--checkpoint-table", "bench-dead-letters", "--progress", "none"]
    started = time.perf_counter()
    subprocess.run([*args, *extra], check=True)  # noqa: S603 (our own CLI)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dead_letters", description=__doc__)
    parser.add_argument("--rows", type=_rows, default=2_000_000, help="data rows (default 2M)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each, the best kept")
    parser.add_argument("--copy", action="store_true", help="also time a copy of each file")
    args = parser.parse_args(argv)
    cache = datagen.default_cache_dir()
    clean = Path(datagen.cached_csv(cache, args.rows, args.seed).path)
    damaged = clean.with_name(clean.stem + "-1pct-bad.csv")
    made = damage(clean, damaged)
    print(f"damaged copy: {made:,} bad rows of {args.rows:,} ({made / args.rows:.2%})")
    results: dict[str, object] = {"rows": args.rows, "bad_rows": made}
    # The best of --repeat rounds each: the machine is shared, and only the fastest round is
    # free of others' work.
    clean_s, clean_rows, _ = min(parse_rate(clean, tolerate=False) for _ in range(args.repeat))
    all_clean_s, _, _ = min(parse_rate(clean, tolerate=True) for _ in range(args.repeat))
    bad_s, good_rows, bad_rows = min(parse_rate(damaged, tolerate=True) for _ in range(args.repeat))
    if bad_rows != made or good_rows + bad_rows != clean_rows:
        print(f"MISMATCH: {good_rows} good + {bad_rows} bad, expected {clean_rows - made} + {made}")
        return 1
    ratio = (clean_s / bad_s) * (clean_rows / (good_rows + bad_rows))
    results["parse"] = {
        "clean_none_rows_per_s": clean_rows / clean_s,
        "clean_all_rows_per_s": clean_rows / all_clean_s,
        "damaged_all_rows_per_s": (good_rows + bad_rows) / bad_s,
        "ratio": ratio,
    }
    damaged_rate = (good_rows + bad_rows) / bad_s
    print(
        f"parse stage: clean (none) {clean_rows / clean_s:,.0f} rows/s, clean (all) "
        f"{clean_rows / all_clean_s:,.0f} rows/s, 1% bad (all) {damaged_rate:,.0f} rows/s: "
        f"{ratio:.2f} x clean ({'met' if ratio >= TARGET else 'NOT MET'}: >= {TARGET})"
    )
    if args.copy:
        clean_copy = copy_rate(clean)
        dlq = f"bench-dlq-{uuid.uuid4()}"
        bad_copy = copy_rate(
            damaged, "--errors-tolerance", "all", "--dlq-topic", dlq, "--max-bad-rows", str(made)
        )
        copy_ratio = clean_copy / bad_copy
        results["copy"] = {"clean_s": clean_copy, "damaged_s": bad_copy, "ratio": copy_ratio}
        print(
            f"copy: clean {args.rows / clean_copy:,.0f} rows/s, 1% bad {args.rows / bad_copy:,.0f}"
            f" rows/s: {copy_ratio:.2f} x ({'met' if copy_ratio >= TARGET else 'NOT MET'})"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
