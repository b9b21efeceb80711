"""Tell whether a local service answers: exit 0 if it does, 1 if not.

    probe.py kafka HOST PORT   one Kafka Metadata request; ready once the
                               broker lists at least one broker
    probe.py http URL          one HTTP GET; ready on a 2xx answer

Standard library only, so that `local/stack` can wait for its services on a
machine where no Kafka client is installed yet. A broker that merely accepts
TCP connections is not ready: a KRaft broker listens before it has caught up
with the metadata log, and only then does it answer Metadata with itself in
the broker list.
"""

from __future__ import annotations

import socket
import struct
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 2.0

# Metadata v4 is the oldest version Kafka 4.x still serves (KIP-896 removed
# v0-v3) and the newest one without the flexible (tagged-field) encoding,
# which keeps both the request and the parsing below short.
_METADATA_API_KEY = 3
_METADATA_VERSION = 4
_CORRELATION_ID = 0x43534B31  # arbitrary; checked in the answer
_CLIENT_ID = b"csv-to-kafka-local-probe"


def _metadata_request() -> bytes:
    header = struct.pack(
        ">hhih", _METADATA_API_KEY, _METADATA_VERSION, _CORRELATION_ID, len(_CLIENT_ID)
    )
    # topics: empty array (no topic metadata wanted); allow_auto_topic_creation: false
    body = struct.pack(">ib", 0, 0)
    payload = header + _CLIENT_ID + body
    return struct.pack(">i", len(payload)) + payload


def _read_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("connection closed mid-answer")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def probe_kafka(host: str, port: int) -> str:
    """Return 'broker N at H:P' for the first broker listed, or raise."""
    with socket.create_connection((host, port), timeout=TIMEOUT_S) as sock:
        sock.sendall(_metadata_request())
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        answer = _read_exact(sock, size)
    correlation_id, _throttle_ms, n_brokers = struct.unpack_from(">iii", answer, 0)
    if correlation_id != _CORRELATION_ID:
        raise ValueError(f"answer to another request: correlation id {correlation_id}")
    if n_brokers < 1:
        raise ValueError("broker answers but lists no brokers yet")
    node_id, host_len = struct.unpack_from(">ih", answer, 12)
    broker_host = answer[18 : 18 + host_len].decode()
    (broker_port,) = struct.unpack_from(">i", answer, 18 + host_len)
    return f"broker {node_id} at {broker_host}:{broker_port}"


def probe_http(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return f"HTTP {response.status} from {url}"


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 3 and argv[0] == "kafka":
            print(probe_kafka(argv[1], int(argv[2])))
        elif len(argv) == 2 and argv[0] == "http":
            print(probe_http(argv[1]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, ValueError, struct.error, urllib.error.URLError) as err:
        print(f"not ready: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
