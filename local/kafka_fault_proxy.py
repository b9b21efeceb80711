#!/usr/bin/env python3
"""A TCP fault proxy for Kafka on loopback: lost acknowledgements, delays and resets.

    local/kafka_fault_proxy.py --upstream 127.0.0.1:9092 [--listen 127.0.0.1:0] [--seed N]

It prints ``listening HOST:PORT`` once bound; clients then bootstrap from that address.

Kafka clients learn where the broker is from Metadata (and FindCoordinator, DescribeCluster)
responses, so a plain TCP proxy would only see the first connection. This one speaks just enough
of the protocol to keep every connection: in those three responses it replaces the upstream
broker's port with its own. Only the port (four bytes) changes, so the frame keeps its length and
is otherwise forwarded untouched. The broker's own connections (transaction markers to itself)
do not go through the proxy.

It pairs each response with its request by correlation id, so faults can aim at one kind of
request (Produce, EndTxn, ...):

- ``drop``: a response is swallowed and the connection becomes a black hole from then on (all
  later bytes, both ways, are discarded), as in a network partition: the broker has done the
  work, the client never hears of it. After ``drop_reset_ms`` the connection is reset (0: never;
  the client's request timeout ends it);
- ``delay``: a response is held back for a while (later responses on that connection wait too,
  as on a slow link);
- ``reset``: the connection is closed with a TCP RST, at a random frame boundary in either
  direction, or in the middle of a frame half the time.

Commands, one per line on standard input, each answered by one JSON line on standard output:

    set KEY=VALUE ...   change fault settings (keys below); an unknown key is an error
    clear               no faults (settings back to their defaults)
    reset               reset every open connection now
    stats               counters: connections, requests and responses per API, faults, rewrites
    quit                stop (so does the end of standard input)

Settings: ``apis`` (comma-separated names or numbers the drop and delay faults apply to, default
``produce,end_txn``), ``drop`` (probability per response), ``drop_reset_ms`` (default 1000),
``delay`` (probability), ``delay_ms`` (``MIN-MAX``, default ``500-3000``), ``reset``
(probability per frame, either direction), ``max_faults`` (stop injecting after this many,
default 1000). Randomness comes from ``--seed``, so a run can be repeated.

Loopback only: the proxy refuses to listen on or forward to any other address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import socket
import struct
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

API_NAMES = {
    "produce": 0,
    "fetch": 1,
    "list_offsets": 2,
    "metadata": 3,
    "find_coordinator": 10,
    "api_versions": 18,
    "init_producer_id": 22,
    "add_partitions_to_txn": 24,
    "end_txn": 26,
    "describe_cluster": 60,
}
API_BY_NUMBER = {number: name for name, number in API_NAMES.items()}
METADATA, FIND_COORDINATOR, API_VERSIONS, DESCRIBE_CLUSTER = 3, 10, 18, 60
# First version of each rewritten API whose messages are "flexible" (compact strings and arrays,
# tagged fields, response header v1).
_FLEXIBLE_FROM = {METADATA: 9, FIND_COORDINATOR: 3, DESCRIBE_CLUSTER: 0}


def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"kafka_fault_proxy: {host} is not a loopback address; refusing")
    return host


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return _loopback(host or "127.0.0.1"), int(port)


# -- the protocol, as little of it as needed --------------------------------------------------


class _Cursor:
    """Reads a Kafka response body and remembers where each broker's port is."""

    def __init__(self, frame: bytes | bytearray, pos: int, flexible: bool) -> None:
        self.buf = frame
        self.pos = pos
        self.flexible = flexible

    def take(self, n: int) -> int:
        start = self.pos
        self.pos += n
        if self.pos > len(self.buf):
            raise ValueError("truncated")
        return start

    def int8(self) -> int:
        return int(self.buf[self.take(1)])

    def int16(self) -> int:
        return int(struct.unpack_from(">h", self.buf, self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack_from(">i", self.buf, self.take(4))[0])

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.int8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def string(self) -> None:
        """Skip a (nullable) string, compact or not."""
        length = self.uvarint() - 1 if self.flexible else self.int16()
        if length > 0:
            self.take(length)

    def array_length(self) -> int:
        return self.uvarint() - 1 if self.flexible else self.int32()

    def tags(self) -> None:
        if self.flexible:
            for _ in range(self.uvarint()):
                self.uvarint()
                self.take(self.uvarint())

    def port(self) -> int:
        """Skip the port, returning where it is."""
        return self.take(4)


def port_positions(api: int, version: int, frame: bytes | bytearray) -> list[int]:
    """Where the broker ports are in a Metadata, FindCoordinator or DescribeCluster response.

    ``frame`` starts with the correlation id (the size prefix removed).
    """
    flexible = version >= _FLEXIBLE_FROM[api]
    cur = _Cursor(frame, 4, flexible)
    cur.tags()  # response header v1
    ports: list[int] = []
    if api == METADATA:
        if version >= 3:
            cur.int32()  # throttle_time_ms
        for _ in range(cur.array_length()):
            cur.int32()  # node_id
            cur.string()  # host
            ports.append(cur.port())
            if version >= 1:
                cur.string()  # rack
            cur.tags()
    elif api == FIND_COORDINATOR:
        if version >= 1:
            cur.int32()  # throttle_time_ms
        if version < 4:
            cur.int16()  # error_code
            if version >= 1:
                cur.string()  # error_message
            cur.int32()  # node_id
            cur.string()  # host
            ports.append(cur.port())
        else:
            for _ in range(cur.array_length()):
                cur.string()  # key
                cur.int32()  # node_id
                cur.string()  # host
                ports.append(cur.port())
                cur.int16()  # error_code
                cur.string()  # error_message
                cur.tags()
    elif api == DESCRIBE_CLUSTER:
        cur.int32()  # throttle_time_ms
        cur.int16()  # error_code
        cur.string()  # error_message
        if version >= 1:
            cur.int8()  # endpoint_type
        cur.string()  # cluster_id
        cur.int32()  # controller_id
        for _ in range(cur.array_length()):
            cur.int32()  # broker_id
            cur.string()  # host
            ports.append(cur.port())
            cur.string()  # rack
            if version >= 2:
                cur.int8()  # is_fenced
            cur.tags()
    return ports


def rewrite_ports(api: int, version: int, frame: bytearray, old: int, new: int) -> int:
    """Replace broker port ``old`` by ``new`` in place; returns how many were replaced."""
    replaced = 0
    for at in port_positions(api, version, frame):
        if struct.unpack_from(">i", frame, at)[0] == old:
            struct.pack_into(">i", frame, at, new)
            replaced += 1
    return replaced


# -- faults ------------------------------------------------------------------------------------


@dataclass
class Settings:
    apis: frozenset[int] = frozenset({API_NAMES["produce"], API_NAMES["end_txn"]})
    drop: float = 0.0
    drop_reset_ms: int = 1000
    delay: float = 0.0
    delay_ms: tuple[int, int] = (500, 3000)
    reset: float = 0.0
    max_faults: int = 1000

    def update(self, key: str, value: str) -> None:
        if key == "apis":
            self.apis = frozenset(
                API_NAMES[name] if name in API_NAMES else int(name)
                for name in value.split(",")
                if name
            )
        elif key in {"drop", "delay", "reset"}:
            probability = float(value)
            if not 0 <= probability <= 1:
                raise ValueError(f"{key} is a probability, got {value}")
            setattr(self, key, probability)
        elif key == "delay_ms":
            low, _, high = value.partition("-")
            self.delay_ms = (int(low), int(high or low))
        elif key in {"drop_reset_ms", "max_faults"}:
            setattr(self, key, int(value))
        else:
            raise KeyError(f"unknown setting {key!r}")

    def describe(self) -> dict[str, Any]:
        return {
            "apis": sorted(API_BY_NUMBER.get(a, str(a)) for a in self.apis),
            "drop": self.drop,
            "drop_reset_ms": self.drop_reset_ms,
            "delay": self.delay,
            "delay_ms": list(self.delay_ms),
            "reset": self.reset,
            "max_faults": self.max_faults,
        }


@dataclass
class Stats:
    connections: int = 0
    open: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    rewritten_ports: int = 0
    unparsed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "open": self.open,
            "requests": dict(self.requests),
            "responses": dict(self.responses),
            "faults": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "rewritten_ports": self.rewritten_ports,
            "unparsed": self.unparsed,
        }


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Connection:
    def __init__(
        self, proxy: Proxy, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, tuple[int, int]] = {}
        self.black_hole = False
        self.closed = False

    def close(self, *, rst: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for writer in (self.client_writer, self.upstream_writer):
            if writer is None:
                continue
            if rst:
                _rst(writer)
            else:
                writer.close()

    async def run(self) -> None:
        proxy = self.proxy
        try:
            up_reader, self.upstream_writer = await asyncio.open_connection(*proxy.upstream)
        except OSError:
            self.close(rst=True)
            return
        proxy.connections.add(self)
        proxy.stats.connections += 1
        proxy.stats.open += 1
        try:
            await asyncio.gather(
                self._requests(self.client_reader, self.upstream_writer),
                self._responses(up_reader, self.client_writer),
            )
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            proxy.stats.open -= 1
            proxy.connections.discard(self)
            self.close(rst=False)

    async def _frame(self, reader: asyncio.StreamReader) -> bytearray | None:
        try:
            size_bytes = await reader.readexactly(4)
        except asyncio.IncompleteReadError:
            return None
        (size,) = struct.unpack(">i", size_bytes)
        return bytearray(size_bytes + await reader.readexactly(size))

    async def _cut(self, writer: asyncio.StreamWriter, frame: bytearray, where: str) -> None:
        """The reset fault: RST, after half the frame one time in two."""
        proxy = self.proxy
        if proxy.rng.random() < 0.5:
            writer.write(bytes(frame[: max(1, len(frame) // 2)]))
            with contextlib.suppress(OSError, ConnectionError):
                await writer.drain()
            proxy.count_fault(f"reset-mid-{where}")
        else:
            proxy.count_fault(f"reset-before-{where}")
        self.close(rst=True)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy = self.proxy
        while not self.closed:
            frame = await self._frame(reader)
            if frame is None:
                break
            if self.black_hole:
                continue
            api, version, correlation = struct.unpack_from(">hhi", frame, 4)
            self.pending[correlation] = (api, version)
            proxy.stats.requests[API_BY_NUMBER.get(api, str(api))] += 1
            if proxy.injecting() and proxy.rng.random() < proxy.settings.reset:
                await self._cut(writer, frame, "request")
                return
            writer.write(bytes(frame))
            await writer.drain()
        self.close(rst=False)

    async def _responses(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy = self.proxy
        settings = proxy.settings
        while not self.closed:
            frame = await self._frame(reader)
            if frame is None:
                break
            if self.black_hole:
                continue
            (correlation,) = struct.unpack_from(">i", frame, 4)
            api, version = self.pending.pop(correlation, (-1, -1))
            proxy.stats.responses[API_BY_NUMBER.get(api, str(api))] += 1
            if api in _FLEXIBLE_FROM:
                try:
                    body = frame[4:]
                    proxy.stats.rewritten_ports += rewrite_ports(
                        api, version, body, proxy.upstream[1], proxy.listen_port
                    )
                    frame[4:] = body
                except (ValueError, struct.error):
                    proxy.stats.unparsed += 1
            if proxy.injecting() and api in settings.apis:
                if proxy.rng.random() < settings.drop:
                    proxy.count_fault(f"drop-{API_BY_NUMBER.get(api, api)}")
                    self.black_hole = True
                    if settings.drop_reset_ms > 0:
                        asyncio.get_running_loop().call_later(
                            settings.drop_reset_ms / 1000, self.close, rst=True
                        )
                    continue
                if proxy.rng.random() < settings.delay:
                    proxy.count_fault(f"delay-{API_BY_NUMBER.get(api, api)}")
                    low, high = settings.delay_ms
                    await asyncio.sleep(proxy.rng.uniform(low, high) / 1000)
            if proxy.injecting() and proxy.rng.random() < settings.reset:
                await self._cut(writer, frame, "response")
                return
            writer.write(bytes(frame))
            await writer.drain()
        self.close(rst=False)


class Proxy:
    def __init__(self, upstream: tuple[str, int], seed: int) -> None:
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.settings = Settings()
        self.stats = Stats()
        self.connections: set[_Connection] = set()
        self.listen_port = 0

    def injecting(self) -> bool:
        return sum(self.stats.faults.values()) < self.settings.max_faults

    def count_fault(self, kind: str) -> None:
        self.stats.faults[kind] += 1

    async def serve(self, host: str, port: int) -> asyncio.Server:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _Connection(self, (reader, writer)).run()

        server = await asyncio.start_server(accept, host, port)
        self.listen_port = server.sockets[0].getsockname()[1]
        return server

    def command(self, line: str) -> dict[str, Any]:
        words = line.split()
        if not words:
            return {"ok": True}
        verb, args = words[0], words[1:]
        if verb == "set":
            for arg in args:
                key, _, value = arg.partition("=")
                self.settings.update(key, value)
            return {"ok": True, "settings": self.settings.describe()}
        if verb == "clear":
            self.settings = Settings()
            return {"ok": True, "settings": self.settings.describe()}
        if verb == "reset":
            connections = list(self.connections)
            for connection in connections:
                connection.close(rst=True)
            self.stats.faults["reset-all"] += len(connections)
            return {"ok": True, "reset": len(connections)}
        if verb == "stats":
            return {"ok": True, **self.stats.as_dict()}
        raise KeyError(f"unknown command {verb!r}")


async def _main(args: argparse.Namespace) -> None:
    proxy = Proxy(_host_port(args.upstream), args.seed)
    host, port = _host_port(args.listen)
    server = await proxy.serve(host, port)
    print(f"listening {host}:{proxy.listen_port}", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    async with server:
        while True:
            line = (await stdin.readline()).decode()
            if not line or line.strip() == "quit":
                break
            try:
                answer = proxy.command(line)
            except (KeyError, ValueError) as err:
                answer = {"ok": False, "error": str(err)}
            print(json.dumps(answer), flush=True)
        for connection in list(proxy.connections):
            connection.close(rst=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream", required=True, help="the broker, HOST:PORT (loopback)")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default: any port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault choices")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
