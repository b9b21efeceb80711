"""Issue 15's resume figure: how long finding a job's last commit takes across partitions.

Copies the same rows twice on the local stack, keyed by ``customer`` into ``--partitions``
partitions and unkeyed into one, then times ``Sink.last_committed`` (no hint, as a keyed resume
does) with each client::

    eval "$(local/stack env)"; .venv/bin/python -m bench.keyed_resume --rows 200000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import uuid

import boto3

from csv_to_kafka.config import Config, parse_source_uri
from csv_to_kafka.sink import open_sink


def rows_csv(rows: int) -> bytes:
    rng = random.Random(15)  # noqa: S311 (test data, not secrets)
    lines = ["id,customer,amount"]
    lines += [f"{i},customer-{rng.randrange(500)},{rng.random() * 100:.2f}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bucket = f"keys-resume-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="d.csv", Body=rows_csv(args.rows))
    source = f"s3://{bucket}/d.csv"
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    for keyed in (True, False):
        topic, job = f"resume-{uuid.uuid4()}", f"job-{uuid.uuid4()}"
        extra = ["--key-column", "customer", "--partitions", str(args.partitions)] if keyed else []
        copy = subprocess.run(  # noqa: S603 (our own CLI)
            [sys.executable, "-m", "csv_to_kafka.cli", "run", "--source", source, "--topic", topic,
             "--bootstrap-servers", bootstrap, "--job-id", job, "--checkpoint-table",
             "csv-to-kafka-bench", "--progress", "none", "--checkpoint-every", "2000", *extra],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if copy.returncode != 0:
            sys.exit(copy.stderr)
        layout = f"keyed, {args.partitions} partitions" if keyed else "unkeyed, 1 partition"
        for client in ("confluent", "kafka-python"):
            config = Config(
                source=parse_source_uri(source),
                topic=topic,
                bootstrap_servers=bootstrap,
                job_id=job,
                checkpoint_table="-",
                kafka_client=client,
                create_topic=False,
                key_columns=("customer",) if keyed else (),
            )
            times = []
            for _ in range(args.repeat):
                sink = open_sink(config)
                sink.ensure_topic()
                started = time.monotonic()
                point = sink.last_committed(job, None)
                times.append(time.monotonic() - started)
                sink.close()
                if point is None or point.rows != args.rows:
                    sys.exit(f"{layout} {client}: found {point}, not {args.rows} rows")
            print(
                f"{layout}, {client}: last_committed median {statistics.median(times):.2f} s "
                f"({', '.join(f'{t:.2f}' for t in times)})",
                flush=True,
            )


if __name__ == "__main__":
    main()
