#!/usr/bin/env python3
"""An HTTP fault proxy in front of moto: AWS throttling, 5xx, resets and S3 bodies cut short.

    local/aws_fault_proxy.py --upstream http://127.0.0.1:5000 [--listen 127.0.0.1:0] [--seed N]

It prints ``listening http://HOST:PORT`` once bound; point a process's ``AWS_ENDPOINT_URL`` at
that address and its S3, DynamoDB and CloudWatch calls pass through here, faults included. The
service of a request is told by its ``X-Amz-Target`` header (DynamoDB, CloudWatch) or else taken
to be S3 (path-style, as botocore sends to an IP endpoint).

Fault kinds, each with a probability per request of its service:

    throttle     DynamoDB: 400 ThrottlingException; S3: 503 SlowDown; CloudWatch: 400 Throttling
    provisioned  DynamoDB: 400 ProvisionedThroughputExceededException
    500, 503     InternalError / ServiceUnavailable, in the service's own error format
    reset        the connection is reset (TCP RST) before the request is forwarded
    ambiguous    the request is forwarded (a write takes effect), its answer replaced by a 500
    cut          S3 GetObject: the body stops after a random part of it with a TCP RST (sent
                 0.2 s after the last byte, so that the client has read every byte sent)
    truncate     S3 GetObject: the body stops after a random part of it and the connection is
                 closed cleanly (FIN): a body shorter than its Content-Length

Commands, one per line on standard input, each answered by one JSON line on standard output:

    rule SERVICE KIND=P ...   set fault probabilities for s3, ddb or cw (others keep theirs)
    outage SERVICE SECONDS    every request to SERVICE fails (503) for that long, from now,
                              and S3 bodies being sent are cut
    max_faults N              inject at most N faults in all (default 10000)
    cut_max BYTES             break S3 bodies after up to BYTES of transfer (so a short body
                              may get through whole); default: anywhere inside the body
    next SERVICE KIND N       the next N requests to SERVICE get fault KIND, whatever the rules
    clear                     no faults
    stats                     requests and faults per service, operation and kind
    quit                      stop (so does the end of standard input)

Randomness comes from ``--seed``. Loopback only: the proxy refuses to listen on or forward to
any other address.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICES = ("s3", "ddb", "cw")
KINDS = ("throttle", "provisioned", "500", "503", "reset", "ambiguous", "cut", "truncate")
_BODY_FAULTS = ("cut", "truncate")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
_PIECE = 64 * 1024


def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"aws_fault_proxy: {host} is not a loopback address; refusing")
    return host


class Faults:
    """The rules, the outages and the counters, shared by the handler threads."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.rules: dict[str, dict[str, float]] = {service: {} for service in SERVICES}
        self.outage_until: dict[str, float] = {}
        self.max_faults = 10_000
        self.cut_max: int | None = None
        self.forced: dict[str, tuple[str, int] | None] = {}
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def choose(self, service: str, operation: str) -> str | None:
        with self.lock:
            self.requests[f"{service}.{operation}"] += 1
            if sum(self.faults.values()) >= self.max_faults:
                return None
            forced = self.forced.get(service)
            if time.monotonic() < self.outage_until.get(service, 0.0):
                kind: str | None = "outage"
            elif forced and (forced[0] not in _BODY_FAULTS or operation == "GetObject"):
                kind = forced[0]
                self.forced[service] = (forced[0], forced[1] - 1) if forced[1] > 1 else None
            else:
                kind = None
                draw = self.rng.random()
                for name, probability in self.rules[service].items():
                    if name in _BODY_FAULTS and operation != "GetObject":
                        continue
                    if draw < probability:
                        kind = name
                        break
                    draw -= probability
            if kind is not None:
                self.faults[f"{service}.{operation}.{kind}"] += 1
            return kind

    def in_outage(self, service: str) -> bool:
        with self.lock:
            return time.monotonic() < self.outage_until.get(service, 0.0)

    def cut_point(self, length: int) -> int | None:
        """Where to break a body of ``length`` bytes: after at least its first byte, so that a link
        that breaks every body still delivers some of each (a body of one byte is not broken);
        or, with ``cut_max``, after up to that many bytes of transfer, which may be past its end
        (then it is not broken)."""
        with self.lock:
            if self.cut_max is None:
                return self.rng.randrange(1, length) if length > 1 else None
            cut = self.rng.randrange(0, self.cut_max)
            return cut if cut < length else None

    def command(self, line: str) -> dict[str, Any]:
        words = line.split()
        if not words:
            return {"ok": True}
        verb, args = words[0], words[1:]
        with self.lock:
            if verb == "rule":
                service, settings = args[0], args[1:]
                if service not in SERVICES:
                    raise ValueError(f"unknown service {service!r}; one of {SERVICES}")
                rules = dict(self.rules[service])
                for setting in settings:
                    kind, _, value = setting.partition("=")
                    if kind not in KINDS:
                        raise ValueError(f"unknown fault kind {kind!r}; one of {KINDS}")
                    rules[kind] = float(value)
                if sum(rules.values()) > 1:
                    raise ValueError("the probabilities of one service add up to more than 1")
                self.rules[service] = rules
                return {"ok": True, "rules": self.rules}
            if verb == "outage":
                service, seconds = args[0], float(args[1])
                if service not in SERVICES:
                    raise ValueError(f"unknown service {service!r}; one of {SERVICES}")
                self.outage_until[service] = time.monotonic() + seconds
                return {"ok": True}
            if verb == "max_faults":
                self.max_faults = int(args[0])
                return {"ok": True}
            if verb == "next":
                service, kind, count = args[0], args[1], int(args[2])
                if service not in SERVICES or kind not in KINDS:
                    raise ValueError(f"next SERVICE KIND N: unknown {service!r} or {kind!r}")
                self.forced[service] = (kind, count)
                return {"ok": True}
            if verb == "cut_max":
                self.cut_max = int(args[0])
                return {"ok": True}
            if verb == "clear":
                self.rules = {service: {} for service in SERVICES}
                self.outage_until.clear()
                self.forced.clear()
                self.cut_max = None
                return {"ok": True}
            if verb == "stats":
                return {
                    "ok": True,
                    "requests": dict(self.requests),
                    "faults": dict(self.faults),
                    "faults_total": sum(self.faults.values()),
                }
        raise ValueError(f"unknown command {verb!r}")


def _classify(method: str, path: str, headers: Any, body: bytes) -> tuple[str, str]:
    target = headers.get("X-Amz-Target", "")
    if target.startswith("DynamoDB_"):
        return "ddb", target.partition(".")[2] or "unknown"
    if "GraniteServiceVersion" in target or "GraniteServiceVersion" in path:
        return "cw", target.partition(".")[2] or path.rsplit("/", 1)[-1]
    if b"Action=PutMetricData" in body:
        return "cw", "PutMetricData"
    parts = urllib.parse.urlsplit(path).path.lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    if method == "GET" and has_key:
        return "s3", "GetObject"
    if method == "HEAD" and has_key:
        return "s3", "HeadObject"
    return "s3", f"{method}"


def _error(service: str, kind: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of the error a service answers for fault ``kind``."""
    if service == "ddb":
        status, code = {
            "throttle": (400, "ThrottlingException"),
            "provisioned": (400, "ProvisionedThroughputExceededException"),
            "503": (503, "ServiceUnavailable"),
            "outage": (503, "ServiceUnavailable"),
        }.get(kind, (500, "InternalServerError"))
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected fault"}
        )
        return status, "application/x-amz-json-1.0", body.encode()
    status, code = {
        "throttle": (503, "SlowDown") if service == "s3" else (400, "Throttling"),
        "503": (503, "ServiceUnavailable"),
        "outage": (503, "ServiceUnavailable"),
    }.get(kind, (500, "InternalError"))
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>injected fault</Message>"
        "<RequestId>fault-proxy</RequestId></Error>"
    )
    return status, "application/xml", body.encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _upstream(self) -> http.client.HTTPConnection:
        local = self.server.local
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(*self.server.upstream, timeout=120)
            local.conn = conn
        return conn

    def _forward(self, body: bytes) -> http.client.HTTPResponse:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        for attempt in (1, 2):
            conn = self._upstream()
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                return conn.getresponse()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.server.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _rst(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.close()
        self.close_connection = True

    def _close_after_sent(self) -> None:
        """Close with a FIN once what was written is on its way: the client reads every byte
        sent, then finds the body short (an RST would make its kernel drop unread bytes)."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
        self.close_connection = True

    def _send_error(self, service: str, kind: str) -> None:
        status, content_type, body = _error(service, kind)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-amzn-RequestId", "fault-proxy")
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            pieces = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(pieces)
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        service, operation = _classify(self.command, self.path, self.headers, body)
        kind = self.server.faults.choose(service, operation)
        if kind == "reset":
            self._rst()
            return
        if kind not in (None, "ambiguous", *_BODY_FAULTS):
            self._send_error(service, kind)
            return
        try:
            response = self._forward(body)
        except (OSError, http.client.HTTPException):
            self._send_error(service, "503")
            return
        if kind == "ambiguous":
            response.read()
            self._send_error(service, "500")
            return
        length = response.getheader("Content-Length")
        content: bytes | None = None
        if length is None and self.command != "HEAD":
            content = response.read()
            length = str(len(content))
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", length or "0")
        self.end_headers()
        if self.command == "HEAD":
            response.read()
            return
        total = int(length or 0)
        cut = self.server.faults.cut_point(total) if kind in _BODY_FAULTS else None
        sent = 0
        pieces = (
            iter([content]) if content is not None else iter(lambda: response.read(_PIECE), b"")
        )
        for piece in pieces:
            if self.server.faults.in_outage(service):
                cut, kind = sent, "cut"  # an outage also breaks the streams already open
            if cut is not None and sent + len(piece) >= cut:
                self.wfile.write(piece[: cut - sent])
                self.wfile.flush()
                self._upstream().close()  # the rest of the body is not wanted
                self.server.local.conn = None
                if kind == "truncate":
                    self._close_after_sent()
                else:
                    time.sleep(0.2)
                    self._rst()
                return
            self.wfile.write(piece)
            sent += len(piece)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], seed: int) -> None:
        super().__init__(listen, _Handler)
        self.upstream = upstream
        self.faults = Faults(seed)
        self.local = threading.local()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a reset connection is what this server is for


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream", required=True, help="moto's URL, http://HOST:PORT")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default: any port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault choices")
    args = parser.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.scheme != "http" or upstream.hostname is None or upstream.port is None:
        raise SystemExit("--upstream must be http://HOST:PORT")
    host, _, port = args.listen.rpartition(":")
    server = _Server(
        (_loopback(host or "127.0.0.1"), int(port)),
        (_loopback(upstream.hostname), upstream.port),
        args.seed,
    )
    threading.Thread(target=server.serve_forever, name="serve", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    print(f"listening http://{bound_host}:{bound_port}", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        try:
            answer = server.faults.command(line)
        except (ValueError, IndexError) as err:
            answer = {"ok": False, "error": str(err)}
        print(json.dumps(answer), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
