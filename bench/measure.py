"""How the benchmark measures: one child process at a time, with its own resource usage, plus
the Kafka and machine facts around it.

- ``run_child`` starts a command and reaps it with ``os.wait4``, which returns the rusage of that
  child alone: user and system CPU seconds, and its peak RSS (``ru_maxrss``). The
  ``RUSAGE_CHILDREN`` totals would do for CPU as deltas, but their ``ru_maxrss`` is the largest
  of every child ever waited for, so it cannot tell one run's peak from an earlier one's.
- Peak RSS is of the whole process tree: csv-to-kafka parses in a second process, and a user
  pays for both. ``ru_maxrss`` only knows the larger of the two, so the waiting loop also samples
  the sum of the tree's resident sets from /proc every 50 ms and keeps the larger figure.
- ``ServiceCpu`` reads the broker's and moto's CPU seconds from /proc, found by their listening
  ports, so that the table can say what the stack spent on each run (it shares the cores).
"""

# ruff: noqa: S603, S607 (the benchmark runs the commands it builds, found on PATH like make)
from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Child",
    "Kafka",
    "ServiceCpu",
    "machine_info",
    "run_child",
    "start_child",
]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A finished (or running) child process and what it cost."""

    argv: list[str]
    started: float  # time.time() just before the fork: the reference for record timestamps
    started_mono: float
    proc: subprocess.Popen[bytes]
    log_path: str
    exit_code: int | None = None
    wall_s: float = 0.0
    user_s: float = 0.0
    sys_s: float = 0.0
    max_rss_mb: float = 0.0

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def wait(self, timeout: float | None = None) -> Child:
        """Reap the child with wait4 (SIGKILL after ``timeout`` more seconds); note its costs."""
        if self.exit_code is not None:
            return self
        deadline = None if timeout is None else time.monotonic() + timeout
        tree_kb = 0
        next_sample = 0.0
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.monotonic() > deadline:
                self.proc.kill()
                pid, status, usage = os.wait4(self.proc.pid, 0)
                break
            if time.monotonic() >= next_sample:
                tree_kb = max(tree_kb, tree_rss_kb(self.proc.pid))
                next_sample = time.monotonic() + 0.05
            time.sleep(0.005)
        self.wall_s = time.monotonic() - self.started_mono
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.exit_code  # so that Popen does not try to reap it again
        self.user_s = usage.ru_utime
        self.sys_s = usage.ru_stime
        self.max_rss_mb = max(usage.ru_maxrss, tree_kb) / 1024  # kilobytes on Linux
        return self

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signum)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def tree_rss_kb(root: int) -> int:
    """The resident set of ``root`` and all its descendants, in KiB (0 if it is gone)."""
    total = 0
    pending = [root]
    while pending:
        pid = pending.pop()
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE_KB
            for task in os.scandir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"{task.path}/children") as f:
                    pending += [int(child) for child in f.read().split()]
    return total


def start_child(
    argv: Sequence[str],
    log_path: str | os.PathLike[str],
    *,
    env: dict[str, str] | None = None,
    stdin_path: str | None = None,
) -> Child:
    """Start ``argv`` with stdout and stderr to ``log_path`` (and stdin from a file)."""
    log = open(log_path, "wb")  # noqa: SIM115 (the child holds it; closed below once forked)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        started, started_mono = time.time(), time.monotonic()
        proc = subprocess.Popen(
            list(argv), stdin=stdin, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    finally:
        log.close()
        if stdin_path:
            stdin.close()  # type: ignore[union-attr]
    return Child(list(argv), started, started_mono, proc, str(log_path))


def run_child(
    argv: Sequence[str],
    log_path: str | os.PathLike[str],
    *,
    env: dict[str, str] | None = None,
    stdin_path: str | None = None,
    timeout: float | None = None,
) -> Child:
    return start_child(argv, log_path, env=env, stdin_path=stdin_path).wait(timeout)


# -- the stack's processes ---------------------------------------------------------------------


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f, None)
            for line in f:
                parts = line.split()
                local, state, inode = parts[1], parts[3], parts[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def pid_listening_on(port: int) -> int | None:
    """The pid of the local process that listens on ``port`` (Linux /proc; None if unknown)."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return None
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in wanted:
                        return int(entry.name)
    return None


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class ServiceCpu:
    """CPU seconds the local broker and moto spend between ``start()`` and ``stop()``."""

    pids: dict[str, int] = field(default_factory=dict)
    _before: dict[str, float] = field(default_factory=dict)

    @classmethod
    def find(cls, bootstrap: str, endpoint: str) -> ServiceCpu:
        pids: dict[str, int] = {}
        for name, address in (("broker", bootstrap.split(",", maxsplit=1)[0]), ("moto", endpoint)):
            match = re.search(r"(?:^|//)(127\.0\.0\.1|localhost):(\d+)", address)
            if match:
                pid = pid_listening_on(int(match.group(2)))
                if pid is not None:
                    pids[name] = pid
        return cls(pids)

    def start(self) -> None:
        self._before = {
            name: cpu for name, pid in self.pids.items() if (cpu := _cpu_seconds(pid)) is not None
        }

    def stop(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, before in self._before.items():
            now = _cpu_seconds(self.pids[name])
            if now is not None:
                out[name] = round(now - before, 2)
        return out


# -- Kafka -------------------------------------------------------------------------------------


class Kafka:
    """The few broker operations the benchmark needs, on confluent-kafka."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka.admin import AdminClient  # noqa: PLC0415

        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create_topic(self, topic: str) -> None:
        from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]  # noqa: PLC0415

        futures = self.admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=30)
        futures[topic].result(timeout=60)
        # A producer started at once may find no leader yet and back off (about a second for
        # kcat's librdkafka 2.0): the runs that use a ready-made topic start with a leader.
        wait_until(lambda: self._has_leader(topic), timeout=30, interval=0.05)

    def _has_leader(self, topic: str) -> bool:
        metadata = self.admin.list_topics(topic, timeout=10)
        found = metadata.topics.get(topic)
        return bool(
            found is not None
            and found.error is None
            and 0 in found.partitions
            and found.partitions[0].leader >= 0
        )

    def delete_topics(self, topics: Sequence[str]) -> None:
        if not topics:
            return
        futures = self.admin.delete_topics(list(topics), operation_timeout=30)
        for future in futures.values():
            with contextlib.suppress(Exception):
                future.result(timeout=60)

    def consumer(self, *, committed: bool, **extra: Any) -> Any:
        from confluent_kafka import Consumer  # noqa: PLC0415

        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"bench-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed" if committed else "read_uncommitted",
                **extra,
            }
        )

    def end_offset(self, topic: str, consumer: Any = None, timeout: float = 10) -> int:
        """Partition 0's high watermark (records, uncommitted ones and commit markers included)."""
        from confluent_kafka import TopicPartition  # noqa: PLC0415

        own = consumer is None
        consumer = consumer or self.consumer(committed=False)
        try:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, 0), timeout=timeout, cached=False
            )
            return int(high)
        finally:
            if own:
                consumer.close()

    def record_span(self, topic: str, timeout: float = 10) -> tuple[float, float]:
        """CreateTime (s) of the first and the last committed record of partition 0."""
        from confluent_kafka import TopicPartition  # noqa: PLC0415

        consumer = self.consumer(committed=True)
        try:
            high = self.end_offset(topic, consumer)
            found = []
            for offset in (0, max(0, high - 2)):  # the last record, before the last marker
                consumer.assign([TopicPartition(topic, 0, offset)])
                deadline = time.monotonic() + timeout
                while True:
                    message = consumer.poll(0.5)
                    if message is not None and not message.error():
                        found.append(message.timestamp()[1] / 1000)
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no committed record at offset {offset} of {topic}")
            return found[0], found[1]
        finally:
            consumer.close()


def wait_until(check: Callable[[], bool], timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


# -- the machine -------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(cmd: Sequence[str], pattern: str) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(list(cmd), check=False, capture_output=True, text=True, timeout=60)
        match = re.search(pattern, out.stdout + out.stderr)
        if match:
            return match.group(1)
    return None


def _package_version(name: str) -> str | None:
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(root: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "app"],
            check=False,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return {"commit": head or None, "app_dirty": bool(dirty)}
    return {"commit": None, "app_dirty": None}


def _broker_version(root: Path, pid: int | None) -> str | None:
    """From the broker's class path (``.../kafka-4.4.0/libs/*``), else from local/stack."""
    if pid is not None:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
            match = re.search(rb"kafka[_-](?:2\.\d+-)?(\d+\.\d+\.\d+)", f.read())
            if match:
                return match.group(1).decode()
    return os.environ.get("KAFKA_VERSION") or _version(
        [str(root / "local" / "stack"), "status"], r"\(Kafka ([0-9.]+)\)"
    )


def machine_info(root: Path, broker_pid: int | None = None) -> dict[str, Any]:
    """nproc, CPU, memory, load, and the versions of everything in the measured path."""
    import confluent_kafka  # noqa: PLC0415

    mem_total = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_total = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "hostname": platform.node(),
        "nproc": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gb": mem_total,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "kafka_broker": _broker_version(root, broker_pid),
        "confluent_kafka": _package_version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka_python": _package_version("kafka-python"),
        "orjson": _package_version("orjson"),
        "boto3": _package_version("boto3"),
        "moto": _package_version("moto"),
        "kcat": _version(["kcat", "-V"], r"Version ([^\s]+)"),
        "kcat_librdkafka": _version(["kcat", "-V"], r"librdkafka ([0-9.]+)"),
        "csv_to_kafka": _package_version("csv-to-kafka"),
        "git": _git(root),
    }


def terminate(child: Child, grace: float = 30) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaps the child."""
    if child.exit_code is not None:
        return
    child.signal(signal.SIGTERM)
    child.wait(grace)
