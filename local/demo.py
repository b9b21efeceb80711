"""`make demo`: put a 1M-row CSV in the local S3, copy it into Kafka, verify, print rows/s.

Run with the local stack's environment (`eval "$(local/stack env)"`); `make demo` does that.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid

import boto3


def make_csv(path: str, rows: int, seed: int = 1) -> None:
    """About 150 bytes a row; 5% of rows have quoted commas, quotes or newlines."""
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "id",
                "first_name",
                "last_name",
                "email",
                "amount",
                "currency",
                "created_at",
                "country",
                "status",
                "comment",
            ]
        )
        names = ["Ada", "Grace", "Linus", "Zoë", "José", "Chloé", "Ming", "Olu", "Priya", "Sven"]
        buffer = io.StringIO()
        chunk = csv.writer(buffer, lineterminator="\n")
        for i in range(1, rows + 1):
            first = names[i % len(names)]
            special = rng.random() < 0.05
            comment = f'he said "ok", then\nleft #{i}' if special else f"order {i} shipped"
            chunk.writerow(
                [
                    i,
                    first,
                    f"Last{i % 997}",
                    f"{first.lower()}.{i}@example.com",
                    f"{rng.random() * 10_000:.2f}",
                    "EUR",
                    f"2026-0{1 + i % 9}-1{i % 10}T12:{i % 60:02d}:00Z",
                    "DE",
                    "PAID" if i % 3 else "OPEN",
                    comment,
                ]
            )
            if i % 50_000 == 0:
                out.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
        out.write(buffer.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    bucket, key = "csv-to-kafka-demo", f"exports/demo-{args.rows}.csv"
    topic, job = f"demo-{uuid.uuid4().hex[:8]}", f"demo-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "demo.csv")
        print(f"writing a {args.rows:,}-row CSV ...", flush=True)
        make_csv(path, args.rows)
        size = os.path.getsize(path)
        print(f"uploading {size / 1e6:.0f} MB to s3://{bucket}/{key} ...", flush=True)
        s3.upload_file(path, bucket, key)
    source = f"s3://{bucket}/{key}"
    cli = [sys.executable, "-m", "csv_to_kafka.cli"]
    started = time.monotonic()
    run = subprocess.run(
        [
            *cli,
            "run",
            "--source",
            source,
            "--topic",
            topic,
            "--bootstrap-servers",
            bootstrap,
            "--job-id",
            job,
            "--checkpoint-table",
            "csv-to-kafka-demo",
        ],
        check=False,
    )
    seconds = time.monotonic() - started
    if run.returncode != 0:
        print(f"run failed with exit {run.returncode}")
        return run.returncode
    check = subprocess.run(
        [*cli, "verify", "--source", source, "--topic", topic, "--bootstrap-servers", bootstrap],
        check=False,
    )
    print(
        f"demo: {args.rows:,} rows copied in {seconds:.1f}s ({args.rows / seconds:,.0f} rows/s "
        f"including start-up); verify {'OK' if check.returncode == 0 else 'FAILED'}"
    )
    return check.returncode


if __name__ == "__main__":
    sys.exit(main())
