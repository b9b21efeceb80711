#!/usr/bin/env python3
"""A stub of the EC2 instance metadata service (IMDSv2 only) with a Spot interruption notice.

    local/imds_stub.py [--listen 127.0.0.1:0] [--notice-after SECONDS] [--action terminate]

It prints ``listening http://HOST:PORT`` once bound. Point a Spot watcher at that address
instead of 169.254.169.254. As on an instance that requires IMDSv2:

- ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds`` (1-21600) returns a
  token; a PUT without the header is 400;
- every ``GET /latest/meta-data/...`` needs ``X-aws-ec2-metadata-token`` with a live token,
  else 401;
- ``GET /latest/meta-data/spot/instance-action`` is 404 until the notice is given, then 200 with
  ``{"action": "terminate", "time": "<now + 120 s, UTC>"}``;
- ``instance-id``, ``instance-life-cycle`` (spot) and ``placement/region`` answer fixed values.

The notice is given ``--notice-after`` seconds after start, or by the command ``notice [ACTION]``
on standard input. Commands, each answered by one JSON line on standard output: ``notice
[terminate|stop|hibernate]``, ``clear`` (back to 404), ``stats`` (requests by path and status),
``quit`` (so does the end of standard input, unless ``--until-killed``: then standard input is
not read and the stub serves until SIGTERM or SIGINT, for use in the background).

Loopback only: the stub refuses to listen on any other address.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOTICE_SECONDS = 120
_FIXED = {
    "/latest/meta-data/instance-id": "i-0123456789abcdef0",
    "/latest/meta-data/instance-life-cycle": "spot",
    "/latest/meta-data/placement/region": "us-east-1",
}


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.action: str | None = None
        self.notice_time: str | None = None
        self.requests: Counter[str] = Counter()

    def notice(self, action: str) -> dict[str, Any]:
        with self.lock:
            self.action = action
            when = datetime.now(UTC) + timedelta(seconds=NOTICE_SECONDS)
            self.notice_time = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            return {"ok": True, "action": action, "time": self.notice_time}

    def command(self, line: str) -> dict[str, Any]:
        words = line.split()
        if not words:
            return {"ok": True}
        if words[0] == "notice":
            action = words[1] if len(words) > 1 else "terminate"
            if action not in {"terminate", "stop", "hibernate"}:
                return {"ok": False, "error": f"unknown action {action!r}"}
            return self.notice(action)
        if words[0] == "clear":
            with self.lock:
                self.action = self.notice_time = None
            return {"ok": True}
        if words[0] == "stats":
            with self.lock:
                return {"ok": True, "requests": dict(self.requests), "action": self.action}
        return {"ok": False, "error": f"unknown command {words[0]!r}"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        with self.server.state.lock:
            self.server.state.requests[f"{self.command} {self.path} {status}"] += 1
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path != "/latest/api/token":
            self._answer(404, "Not Found")
            return
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            self._answer(400, "Bad Request")
            return
        token = secrets.token_urlsafe(32)
        with self.server.state.lock:
            self.server.state.tokens[token] = time.monotonic() + int(ttl)
        self._answer(200, token)

    def do_GET(self) -> None:
        state = self.server.state
        token = self.headers.get("X-aws-ec2-metadata-token", "")
        with state.lock:
            valid = state.tokens.get(token, 0.0) > time.monotonic()
            action, when = state.action, state.notice_time
        if not valid:
            self._answer(401, "Unauthorized")
            return
        if self.path == "/latest/meta-data/spot/instance-action":
            if action is None:
                self._answer(404, "Not Found")
            else:
                self._answer(200, json.dumps({"action": action, "time": when}), "application/json")
            return
        if self.path in _FIXED:
            self._answer(200, _FIXED[self.path])
            return
        self._answer(404, "Not Found")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: tuple[str, int]) -> None:
        super().__init__(listen, _Handler)
        self.state = _State()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default: any port)")
    parser.add_argument("--notice-after", type=float, help="give the notice after this many s")
    parser.add_argument("--action", default="terminate", choices=["terminate", "stop", "hibernate"])
    parser.add_argument(
        "--until-killed", action="store_true", help="do not read commands; serve until a signal"
    )
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    host = host or "127.0.0.1"
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"imds_stub: {host} is not a loopback address; refusing")
    server = _Server((host, int(port)))
    threading.Thread(target=server.serve_forever, name="serve", daemon=True).start()
    if args.notice_after is not None:
        timer = threading.Timer(args.notice_after, server.state.notice, (args.action,))
        timer.daemon = True
        timer.start()
    bound_host, bound_port = server.server_address[:2]
    print(f"listening http://{bound_host}:{bound_port}", flush=True)
    if args.until_killed:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
        return
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        print(json.dumps(server.state.command(line)), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
