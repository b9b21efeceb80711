"""Entrypoint of the image's batch-array target: one AWS Batch array child copies one manifest line.

The manifest (``CSV_TO_KAFKA_MANIFEST=s3://BUCKET/KEY``) is a CSV whose header is
``source,job_id,topic``; child N (``AWS_BATCH_JOB_ARRAY_INDEX``, from 0) takes data line N, sets
``CSV_TO_KAFKA_SOURCE``, ``CSV_TO_KAFKA_JOB_ID`` and ``CSV_TO_KAFKA_TOPIC`` from it and replaces
itself with ``csv-to-kafka`` (``exec``: the processor keeps PID 1 and receives SIGTERM itself).
Its arguments are passed on (``run`` by default). Without ``AWS_BATCH_JOB_ARRAY_INDEX`` (a job
that is not an array child) it runs ``csv-to-kafka`` with the environment as it is.

A manifest that is missing, unreadable or malformed is a configuration error: exit 2, which the
job definition does not retry. Any other failure to fetch it (throttling, the network) exits 4,
which Batch retries.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from urllib.parse import urlparse

import boto3
import botocore.exceptions

from csv_to_kafka.errors import EXIT_CONFIG, EXIT_INFRASTRUCTURE

# S3 answers that no retry will change.
_FINAL_S3_ERRORS = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "403", "404"}
COLUMNS = ("source", "job_id", "topic")


def fail(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"csv-to-kafka-manifest: {message}", file=sys.stderr, flush=True)
    return code


def manifest_line(text: str, index: int) -> dict[str, str]:
    """Data line ``index`` (from 0, blank lines skipped) of the manifest, as a dict."""
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(f.strip() for f in row)]
    if not rows or tuple(name.strip() for name in rows[0]) != COLUMNS:
        raise ValueError(f"the manifest's header must be {','.join(COLUMNS)}")
    data = rows[1:]
    if not 0 <= index < len(data):
        raise ValueError(f"array index {index} is past the manifest's {len(data)} lines")
    row = data[index]
    if len(row) != len(COLUMNS) or not all(field.strip() for field in row):
        raise ValueError(f"manifest line {index + 2} must have three non-empty fields: {row!r}")
    return dict(zip(COLUMNS, (field.strip() for field in row), strict=True))


def read_manifest(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"CSV_TO_KAFKA_MANIFEST must be s3://BUCKET/KEY, got {uri!r}")
    body = boto3.client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
    return str(body.read().decode("utf-8-sig"))


def main(argv: list[str]) -> int:
    args = argv or ["run"]
    index_text = os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX")
    if index_text is not None:
        manifest = os.environ.get("CSV_TO_KAFKA_MANIFEST")
        if not manifest:
            return fail("an array child needs CSV_TO_KAFKA_MANIFEST=s3://BUCKET/KEY")
        try:
            line = manifest_line(read_manifest(manifest), int(index_text))
        except (ValueError, UnicodeDecodeError) as err:
            return fail(str(err))
        except botocore.exceptions.ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            exit_code = EXIT_CONFIG if code in _FINAL_S3_ERRORS else EXIT_INFRASTRUCTURE
            return fail(f"could not read {manifest}: {err}", exit_code)
        except botocore.exceptions.BotoCoreError as err:
            return fail(f"could not read {manifest}: {err}", EXIT_INFRASTRUCTURE)
        os.environ["CSV_TO_KAFKA_SOURCE"] = line["source"]
        os.environ["CSV_TO_KAFKA_JOB_ID"] = line["job_id"]
        os.environ["CSV_TO_KAFKA_TOPIC"] = line["topic"]
        print(
            f"csv-to-kafka-manifest: child {index_text} copies {line['source']} "
            f"to {line['topic']} as job {line['job_id']}",
            file=sys.stderr,
            flush=True,
        )
    # exec is the point: csv-to-kafka takes over this process (PID 1 in the container), found on
    # PATH like the default target's ENTRYPOINT.
    os.execvp("csv-to-kafka", ["csv-to-kafka", *args])  # noqa: S606, S607
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
