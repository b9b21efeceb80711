"""Helpers for the deployment tests that run the job: a stub IMDSv2 server, CSV data, a reader."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition


def make_csv(rows: int) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "note"])
    for i in range(1, rows + 1):
        writer.writerow([i, f"name {i}", f'says "hi", {i}' if i % 7 == 0 else f"note {i}"])
    return out.getvalue().encode()


def create_checkpoint_table(name: str) -> None:
    """The table as modules/core creates it (the deployments run with --no-create-table)."""
    client = boto3.client("dynamodb")
    with suppress(client.exceptions.ResourceInUseException):
        client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )


def checkpoint(table: str, job_id: str) -> dict[str, Any] | None:
    item = (
        boto3.client("dynamodb")
        .get_item(TableName=table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        return None
    return {name: next(iter(value.values())) for name, value in item.items()}


def wait_for_rows(table: str, job_id: str, rows: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cp = checkpoint(table, job_id)
        if cp is not None and int(cp.get("total_sent", 0)) >= rows:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id}: no checkpoint with {rows} rows within {timeout}s")


def committed_lines(bootstrap: str, topic: str) -> list[int]:
    """``_source_line`` of every committed record of partition 0 (read_committed), in order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"deployment-test-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            return []
        consumer.assign([TopicPartition(topic, 0, 0)])
        lines: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1.0):
                if message.error():
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        return lines
                    raise RuntimeError(message.error().str())
                lines.append(int(orjson.loads(message.value())["_source_line"]))
        raise TimeoutError(f"reading {topic} did not reach its end")
    finally:
        consumer.close()


def data_lines(rows: int) -> list[int]:
    """``_source_line`` of each row of make_csv(rows): the header is line 1, no multi-line rows."""
    return list(range(2, rows + 2))


# --- IMDSv2 stub ---------------------------------------------------------------------------------


@dataclass
class Imds:
    """What the stub serves and what it saw."""

    url: str = ""
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    notice: dict[str, str] | None = None
    requests: list[tuple[str, str, bool]] = field(default_factory=list)

    def interrupt(self) -> None:
        self.notice = {"action": "terminate", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _handler(state: Imds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            state.requests.append(("PUT", self.path, ttl is not None))
            if self.path != "/latest/api/token" or ttl is None:
                self._send(400)
            else:
                self._send(200, state.token)

        def do_GET(self) -> None:
            authorized = self.headers.get("X-aws-ec2-metadata-token") == state.token
            state.requests.append(("GET", self.path, authorized))
            if not authorized:  # IMDSv2 only: a request without the token is refused
                self._send(401)
            elif self.path == "/latest/meta-data/instance-id":
                self._send(200, "i-0123456789abcdef0")
            elif self.path == "/latest/meta-data/spot/instance-action":
                if state.notice is None:
                    self._send(404, "Not Found")
                else:
                    self._send(200, json.dumps(state.notice))
            else:
                self._send(404, "Not Found")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def imds_stub() -> Iterator[Imds]:
    """An IMDSv2 look-alike on 127.0.0.1: token PUT, then GETs that carry the token."""
    state = Imds()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
