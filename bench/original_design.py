"""The original design's processor, re-implemented small and faithfully: the baseline that issue 3
asks csv-to-kafka to beat by 100x.

From /work/shared/original-spec.md ("Technical Design"):

- kafka-python ``KafkaProducer(value_serializer=json.dumps, max_in_flight_requests_per_connection=1,
  acks='all', retries=2147483647, enable_idempotence=True, compression_type='gzip')``;
- records processed sequentially, one at a time, and each write confirmed before the next
  (``send(...).get()``), to partition 0, no key;
- each record is the row's fields plus ``_source_line`` and ``_source_file``;
- a failed write retried up to 5 times with exponential backoff, then stop;
- the S3 object streamed (not downloaded); a checkpoint ``{job_id, last_line, total_sent,
  timestamp, status}`` written to DynamoDB every 10,000 records; on start, the checkpoint is read
  and the rows up to ``last_line`` are skipped.

One deviation, needed to run at all: kafka-python wants bytes from the serializer, and
``json.dumps`` returns str, so the serializer is ``json.dumps(...).encode()``. The CSV is read
with ``csv.DictReader`` over the streamed body, so quoted newlines stay inside their row.

Usage (the benchmark runs it on a slice of its file):
    python bench/original_design.py --source s3://B/K --topic T --bootstrap-servers H:P \
        --job-id J --checkpoint-table TABLE [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from kafka import KafkaProducer
from kafka.errors import KafkaError

CHECKPOINT_EVERY = 10_000
MAX_RETRIES = 5


def _checkpoint(table: Any, job_id: str, last_line: int, total_sent: int, status: str) -> None:
    table.put_item(
        Item={
            "job_id": job_id,
            "last_line": last_line,
            "total_sent": total_sent,
            "timestamp": datetime.now(UTC).isoformat(),
            "status": status,
        }
    )


def _ensure_table(name: str) -> Any:
    dynamodb = boto3.resource("dynamodb")
    client = dynamodb.meta.client
    try:
        client.describe_table(TableName=name)
    except client.exceptions.ResourceNotFoundException:
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(TableName=name)
    return dynamodb.Table(name)


def _send_confirmed(producer: KafkaProducer, topic: str, record: dict[str, Any]) -> None:
    """One record, confirmed before returning; up to 5 retries with exponential backoff."""
    for attempt in range(MAX_RETRIES + 1):
        try:
            producer.send(topic, value=record, partition=0).get(timeout=30)
        except KafkaError:
            if attempt == MAX_RETRIES:
                raise
            time.sleep(0.1 * 2**attempt)
        else:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="s3://BUCKET/KEY")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--checkpoint-table", required=True)
    parser.add_argument("--limit", type=int, default=0, help="stop after N rows (0: all)")
    args = parser.parse_args()

    bucket, _, key = args.source.removeprefix("s3://").partition("/")
    table = _ensure_table(args.checkpoint_table)
    stored = table.get_item(Key={"job_id": args.job_id}, ConsistentRead=True).get("Item")
    resume_after = int(stored["last_line"]) if stored else 0
    total_sent = int(stored["total_sent"]) if stored else 0

    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap_servers.split(","),
        value_serializer=lambda v: json.dumps(v).encode("utf-8"),
        max_in_flight_requests_per_connection=1,
        acks="all",
        retries=2147483647,
        enable_idempotence=True,
        compression_type="gzip",
    )
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    reader = csv.DictReader(io.TextIOWrapper(body, encoding="utf-8", newline=""))  # type: ignore[type-var]
    started = time.monotonic()
    sent_this_run = 0
    line = reader.line_num + 1
    status = "COMPLETED"
    try:
        for row in reader:
            row_line, line = line, reader.line_num + 1
            if row_line <= resume_after:
                continue
            record = {**row, "_source_line": row_line, "_source_file": args.source}
            _send_confirmed(producer, args.topic, record)
            total_sent += 1
            sent_this_run += 1
            if total_sent % CHECKPOINT_EVERY == 0:
                _checkpoint(table, args.job_id, row_line, total_sent, "RUNNING")
            if args.limit and sent_this_run >= args.limit:
                status = "STOPPED"  # the slice is done, the file is not
                break
        _checkpoint(table, args.job_id, line - 1, total_sent, status)
    finally:
        producer.close()
    seconds = time.monotonic() - started
    print(
        f"original design: {sent_this_run} rows in {seconds:.1f}s "
        f"({sent_this_run / seconds if seconds else 0:,.0f} rows/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
