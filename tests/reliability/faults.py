"""How the faults are injected: processor runs that can be killed, paused and measured; the
local stack's broker, bounced and paused; the fault proxies of local/ as child processes.

Every fault targets 127.0.0.1 only: the broker of local/stack, moto, and the proxies' own
loopback ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.conftest import Job

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "local" / "stack"


class Run:
    """One processor process, its output in a file (a pipe could fill and block it)."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log: Path,
        *,
        session: bool = False,
        measure_rss: bool = False,
    ) -> None:
        self.log = log
        self.started = time.monotonic()
        self.ended: float | None = None
        self._rss_file = log.with_suffix(".maxrss") if measure_rss else None
        if self._rss_file is not None:
            # The processor is the wrapper's child: in a group of their own, so that cleanup()
            # kills both, not just the wrapper.
            session = True
            args = [
                sys.executable,
                str(Path(__file__).with_name("peak_rss.py")),
                str(self._rss_file),
                *args,
            ]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=session
            )
        self.pid = self.proc.pid
        self.session = session
        self.stopped = False
        self._reaping = threading.Lock()

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def poll(self) -> int | None:
        """The exit code once the process ended (-N for signal N), else None.

        Threads poll the same run (the test, and ``spot.Reclaimer`` playing EC2): one reaps
        the process, under the lock, and the others read the code it stored. (Unlocked, the
        second waitpid found no child and Popen took that for exit 0.)
        """
        with self._reaping:
            if self.proc.returncode is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.proc.returncode = os.waitstatus_to_exitcode(status)
                    self.ended = time.monotonic()
            return self.proc.returncode

    @property
    def max_rss_kb(self) -> int | None:
        """The peak resident memory of the command, if launched with ``measure_rss``."""
        if self._rss_file is None or self.poll() is None or not self._rss_file.exists():
            return None
        return int(self._rss_file.read_text())

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"pid {self.pid} still running after {timeout:.0f}s; its output ends "
                    f"with:\n{self.output()[-3000:]}"
                )
            time.sleep(0.05)
        return code

    def signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)
            if sig == signal.SIGSTOP:
                self.stopped = True
            elif sig == signal.SIGCONT:
                self.stopped = False

    def kill9(self) -> int:
        self.signal(signal.SIGKILL)
        return self.wait(30)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def cleanup(self) -> None:
        if self.poll() is None:
            if self.stopped:
                os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGKILL)
            self.wait(30)
        if self.session:  # what the process started in its own group (a watcher's child)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)


@dataclass
class FaultJob(Job):
    """A Job whose processor may reach Kafka and AWS through fault proxies.

    The oracle reads the broker and moto directly (``env``); the processor uses ``kafka_via``
    and ``aws_via`` when set.
    """

    kafka_via: str | None = None
    aws_via: str | None = None
    logs: Path = field(default_factory=lambda: Path("/tmp"))
    runs: list[Run] = field(default_factory=list)

    def args(self, *extra: str) -> list[str]:
        args = super().args(*extra)
        if self.kafka_via is not None:
            args[args.index("--bootstrap-servers") + 1] = self.kafka_via
        return args

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = super().process_env(extra)
        if self.aws_via is not None and "AWS_ENDPOINT_URL" not in (extra or {}):
            env["AWS_ENDPOINT_URL"] = self.aws_via
        return env

    def launch(
        self, *extra: str, env: dict[str, str] | None = None, measure_rss: bool = False
    ) -> Run:
        log = self.logs / f"run-{len(self.runs) + 1}-{self.client}.log"
        run = Run(self.args(*extra), self.process_env(env), log, measure_rss=measure_rss)
        self.runs.append(run)
        return run

    def cleanup(self) -> None:
        for run in self.runs:
            run.cleanup()


class Broker:
    """The local stack's broker, driven with the same ``local/stack`` (and environment: ports,
    state dir) that the ``stack`` fixture started it with."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.port = int(bootstrap.rpartition(":")[2])
        self.paused_pid: int | None = None
        self.restarts: list[float] = []  # seconds each `local/stack up` took

    def _stack(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(STACK), *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def unusable(self) -> str | None:
        """Why broker faults cannot be injected here, or None."""
        if int(os.environ.get("KAFKA_PORT", "9092")) != self.port:
            return (
                f"the broker at {self.bootstrap} is not local/stack's (KAFKA_PORT is "
                f"{os.environ.get('KAFKA_PORT', '9092')}): broker faults need the local stack"
            )
        if self._stack("kafka-pid").returncode != 0:
            return "local/stack runs no broker here: broker faults need the local stack"
        return None

    def pid(self) -> int:
        result = self._stack("kafka-pid")
        if result.returncode != 0:
            raise RuntimeError(f"no broker: {result.stderr}")
        return int(result.stdout.strip())

    def running(self) -> bool:
        return self._stack("kafka-pid").returncode == 0

    def kill(self) -> None:
        result = self._stack("kafka-kill")
        assert result.returncode == 0, result.stderr

    def stop(self) -> None:
        result = self._stack("kafka-stop")
        assert result.returncode == 0, result.stderr

    def up(self) -> None:
        started = time.monotonic()
        result = self._stack("up")
        assert result.returncode == 0, f"local/stack up failed:\n{result.stderr}"
        self.restarts.append(time.monotonic() - started)

    def pause(self) -> None:
        pid = self.pid()
        os.kill(pid, signal.SIGSTOP)
        self.paused_pid = pid

    def resume(self) -> None:
        if self.paused_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.paused_pid, signal.SIGCONT)
            self.paused_pid = None

    def ensure_up(self) -> None:
        self.resume()
        if not self.running():
            self.up()


class ControlledProcess:
    """A helper of local/ (a fault proxy, the IMDS stub) driven by lines on its stdin."""

    def __init__(self, script: str, *args: str, log: Path) -> None:
        self.log = log
        self._err = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "local" / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "listening":
            self.close()
            raise RuntimeError(f"{script} did not start: {first!r} (see {log})")
        self.address = first[1]

    def command(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        assert answer.get("ok"), f"{line!r}: {answer}"
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._err.close()


def wait_rows(checkpoints: Any, run: Run | None, rows: int, *, timeout: float = 180) -> int | None:
    """Wait until the checkpoint shows ``rows`` committed. Returns None when it does, or the
    exit code if ``run`` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = checkpoints.last()
        if last is not None and last.total_sent >= rows:
            return None
        if run is not None and (code := run.poll()) is not None:
            return code
        time.sleep(0.02)
    raise TimeoutError(f"no checkpoint with {rows} rows within {timeout}s")


def complete(
    job: FaultJob,
    oracle: Any,
    *extra: str,
    max_runs: int = 3,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> Run:
    """Rerun the job until it exits 0 (at most ``max_runs`` runs, each exiting 0 or 4)."""
    for _ in range(max_runs):
        run = job.launch(*extra, env=env)
        code = run.wait(timeout)
        oracle.ran(code)
        if code == 0:
            return run
        assert code == 4, f"a rerun exited {code}; its output ends with:\n{run.output()[-4000:]}"
    raise AssertionError(f"{max_runs} reruns did not complete the job: exits {oracle.exit_codes}")
