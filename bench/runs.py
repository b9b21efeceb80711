"""Step 2 of the benchmark: the runs. Each gets a fresh topic (and job id), runs alone as one
child process, and is checked afterwards:

- ``product``: ``csv-to-kafka run`` with one Kafka client, then ``csv-to-kafka verify`` (exit 0);
- ``kcat``: ``kcat -P`` piping the file's raw lines (from the local cache) into the broker with
  acks=all, idempotence, the same compression and the product's batching; checked by the
  partition's end offset = the file's line count;
- ``original``: ``bench/original_design.py`` on a slice (a prefix) of the file; checked by the
  end offset = the slice's rows;
- the resume case, the memory case, and a profiled product run.
"""

from __future__ import annotations

import contextlib
import re
import signal
import statistics
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from csv_to_kafka.sink import ZSTD_LEVEL

from .datagen import CsvFile
from .measure import Child, Kafka, ServiceCpu, run_child, start_child, wait_until

__all__ = [
    "Bench",
    "RunResult",
    "median_run",
]

ROOT = Path(__file__).resolve().parent.parent
ORIGINAL_SCRIPT = Path(__file__).resolve().parent / "original_design.py"
# The product's producer batching (app/csv_to_kafka/sink.py), given to kcat as well, so that the
# baseline differs in the work done (no parsing, JSON or transactions), not in the batching.
KCAT_BATCHING = {
    "linger.ms": "10",
    "batch.size": str(1024 * 1024),
    "batch.num.messages": "100000",
    "queue.buffering.max.messages": "1000000",
    "queue.buffering.max.kbytes": str(256 * 1024),
}
_SUMMARY = re.compile(r"(\d+) sent in this run in ([0-9.]+)s")


@dataclass
class RunResult:
    """One measured run."""

    name: str  # confluent | kafka-python | kcat | original | resume-* | memory-*
    rows: int  # data rows of the CSV this run moved
    records: int | None  # records it wrote (kcat: the file's raw lines); None: not counted
    csv_bytes: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float
    exit_code: int | None
    check_ok: bool | None  # None: not checked
    check: str
    topic: str
    job_id: str | None
    command: list[str]
    log: str
    stack_cpu_s: dict[str, float] = field(default_factory=dict)
    own_rows_per_s: float | None = None  # what the product's summary line says
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.csv_bytes / 1e6 / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.check_ok is not False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            cpu_s=round(self.cpu_s, 3),
            rows_per_s=round(self.rows_per_s, 1),
            mb_per_s=round(self.mb_per_s, 3),
            cpu_percent_of_wall=round(100 * self.cpu_s / self.wall_s, 1) if self.wall_s else None,
        )
        for key in ("wall_s", "user_s", "sys_s", "max_rss_mb"):
            data[key] = round(data[key], 3)
        return data


def _short(rows: int) -> str:
    for scale, suffix in ((1_000_000, "M"), (1_000, "k")):
        if rows >= scale and rows % (scale // 10) == 0:
            return f"{rows / scale:g}{suffix}"
    return f"{rows:,}"


def median_run(samples: list[RunResult]) -> RunResult:
    """The sample with the median rows/s (the lower middle one for an even count)."""
    ordered = sorted(samples, key=lambda r: r.rows_per_s)
    return ordered[(len(ordered) - 1) // 2]


def _own_rate(child: Child) -> float | None:
    match = _SUMMARY.search(child.log_tail(5))
    if not match or float(match.group(2)) <= 0:
        return None
    return int(match.group(1)) / float(match.group(2))


@dataclass
class Bench:
    """What every run needs: the stack, the names, where logs go, and the common options."""

    bootstrap: str
    bucket: str
    table: str
    out_dir: Path
    compression: str = "zstd"
    run_args: list[str] = field(default_factory=list)
    kcat_args: list[str] = field(default_factory=list)
    verify: bool = True
    keep_topics: bool = False
    timeout: float = 3600
    log: Any = print
    kafka: Kafka = field(init=False)
    services: ServiceCpu = field(init=False)

    def __post_init__(self) -> None:
        import os  # noqa: PLC0415

        self.kafka = Kafka(self.bootstrap)
        self.services = ServiceCpu.find(self.bootstrap, os.environ.get("AWS_ENDPOINT_URL", ""))
        self.out_dir.mkdir(parents=True, exist_ok=True)

    # -- helpers -------------------------------------------------------------------------------

    def _names(self, label: str) -> tuple[str, str]:
        suffix = uuid.uuid4().hex[:10]
        return f"bench-{label}-{suffix}", f"bench-{label}-{suffix}"

    def _log_path(self, label: str) -> Path:
        return self.out_dir / f"{label}.log"

    def product_argv(
        self, source: str, topic: str, job_id: str, client: str, *extra: str
    ) -> list[str]:
        return [
            sys.executable,
            "-m",
            "csv_to_kafka.cli",
            "run",
            "--source",
            source,
            "--topic",
            topic,
            "--bootstrap-servers",
            self.bootstrap,
            "--job-id",
            job_id,
            "--checkpoint-table",
            self.table,
            "--kafka-client",
            client,
            "--compression",
            self.compression,
            "--progress",
            "none",
            *self.run_args,
            *extra,
        ]

    def _verify(self, source: str, topic: str, label: str, *extra: str) -> tuple[bool | None, str]:
        if not self.verify:
            return None, "not verified (--no-verify)"
        self.log(f"  verify {topic} ...")
        child = run_child(
            [
                sys.executable,
                "-m",
                "csv_to_kafka.cli",
                "verify",
                "--source",
                source,
                "--topic",
                topic,
                "--bootstrap-servers",
                self.bootstrap,
                *extra,
            ],
            self._log_path(f"{label}-verify"),
            timeout=self.timeout,
        )
        summary = next(
            (ln for ln in child.log_tail(5).splitlines() if ln.startswith("verify ")),
            f"verify exit {child.exit_code}",
        )
        ok = child.exit_code == 0
        return ok, f"verify {'OK' if ok else 'FAILED'} ({child.wall_s:.0f}s): {summary}"

    def _end_offset(self, topic: str) -> int:
        """The partition's end offset; 0 if the run never made the topic."""
        try:
            return self.kafka.end_offset(topic)
        except Exception:  # noqa: BLE001 (a run that failed early left no topic behind)
            return 0

    def _record_span(self, topic: str, rows: int) -> dict[str, float]:
        """The rate between the first and the last committed record's CreateTime: the copy
        without the process's start-up and its last commit (which a 100M-row run amortizes)."""
        try:
            first, last = self.kafka.record_span(topic)
        except Exception as err:  # noqa: BLE001 (a figure of the table, not a check)
            self.log(f"  no record span for {topic}: {err}")
            return {}
        if last <= first:
            return {}
        return {
            "records_span_s": round(last - first, 3),
            "span_rows_per_s": round((rows - 1) / (last - first), 1),
        }

    def _cleanup(self, *topics: str) -> None:
        if not self.keep_topics:
            self.kafka.delete_topics(topics)

    def _measured(
        self, argv: list[str], label: str, stdin_path: str | None = None
    ) -> tuple[Child, dict[str, float]]:
        """Run ``argv`` alone; its costs, and the broker's and moto's CPU seconds meanwhile."""
        self.services.start()
        child = run_child(argv, self._log_path(label), stdin_path=stdin_path, timeout=self.timeout)
        return child, self.services.stop()

    # -- the four runs -------------------------------------------------------------------------

    def product(
        self,
        csv_file: CsvFile,
        source: str,
        client: str,
        label: str,
        name: str | None = None,
        *,
        bad_rows: int | None = None,
    ) -> RunResult:
        """One run of the product; ``bad_rows`` (the dead-letters case): the file has that many
        bad rows, sent under --errors-tolerance all to a dead-letter topic, and verify checks
        both topics."""
        topic, job_id = self._names(label)
        extra: tuple[str, ...] = ()
        verify_extra: tuple[str, ...] = ()
        if bad_rows is not None:
            dlq = f"{topic}-dlq"
            verify_extra = ("--dlq-topic", dlq)
            extra = ("--errors-tolerance", "all", *verify_extra, "--max-bad-rows", str(bad_rows))
        argv = self.product_argv(source, topic, job_id, client, *extra)
        self.log(f"run {label}: csv-to-kafka run --kafka-client {client} -> {topic}")
        child, stack = self._measured(argv, label)
        if child.exit_code == 0:
            check_ok, check = self._verify(source, topic, label, *verify_extra)
        else:
            check_ok, check = False, f"exit {child.exit_code}: {child.log_tail(3)}"
        result = RunResult(
            name=name or client,
            rows=csv_file.rows,
            # verify counted them; otherwise the end offset also counts transaction markers
            records=csv_file.rows if check_ok else None,
            csv_bytes=csv_file.bytes,
            wall_s=child.wall_s,
            user_s=child.user_s,
            sys_s=child.sys_s,
            max_rss_mb=child.max_rss_mb,
            exit_code=child.exit_code,
            check_ok=check_ok,
            check=check,
            topic=topic,
            job_id=job_id,
            command=argv,
            log=child.log_path,
            stack_cpu_s=stack,
            own_rows_per_s=_own_rate(child),
            extra={
                "end_offset": self._end_offset(topic),
                **self._record_span(topic, csv_file.rows),
            },
        )
        self._cleanup(topic, *([f"{topic}-dlq"] if bad_rows is not None else []))
        return result

    def kcat_argv(self, topic: str) -> list[str]:
        props = {
            "enable.idempotence": "true",
            "acks": "all",
            "compression.type": self.compression,
            **KCAT_BATCHING,
        }
        if self.compression == "zstd":  # the product's zstd level (sink.ZSTD_LEVEL)
            props["compression.level"] = str(ZSTD_LEVEL)
        argv = ["kcat", "-P", "-b", self.bootstrap, "-t", topic, "-p", "0"]
        for name, value in props.items():
            argv += ["-X", f"{name}={value}"]
        return [*argv, *self.kcat_args]

    def kcat(self, csv_file: CsvFile, label: str = "kcat") -> RunResult:
        topic, _ = self._names(label)
        self.kafka.create_topic(topic)
        argv = self.kcat_argv(topic)
        self.log(f"run {label}: kcat -P < {Path(csv_file.path).name} -> {topic}")
        child, stack = self._measured(argv, label, stdin_path=csv_file.path)
        records = self._end_offset(topic)
        check_ok = child.exit_code == 0 and records == csv_file.lines
        result = RunResult(
            name="kcat",
            rows=csv_file.rows,
            records=records,
            csv_bytes=csv_file.bytes,
            wall_s=child.wall_s,
            user_s=child.user_s,
            sys_s=child.sys_s,
            max_rss_mb=child.max_rss_mb,
            exit_code=child.exit_code,
            check_ok=check_ok,
            check=f"end offset {records:,} {'=' if records == csv_file.lines else '!='} "
            f"{csv_file.lines:,} lines",
            topic=topic,
            job_id=None,
            command=[*argv, "<", csv_file.path],
            log=child.log_path,
            stack_cpu_s=stack,
        )
        self._cleanup(topic)
        return result

    def original(self, slice_file: CsvFile, source: str, label: str = "original") -> RunResult:
        topic, job_id = self._names(label)
        self.kafka.create_topic(topic)
        argv = [
            sys.executable,
            str(ORIGINAL_SCRIPT),
            "--source",
            source,
            "--topic",
            topic,
            "--bootstrap-servers",
            self.bootstrap,
            "--job-id",
            job_id,
            "--checkpoint-table",
            f"{self.table}-original",
        ]
        self.log(f"run {label}: bench/original_design.py on {slice_file.rows:,} rows -> {topic}")
        child, stack = self._measured(argv, label)
        records = self._end_offset(topic)
        check_ok = child.exit_code == 0 and records == slice_file.rows
        result = RunResult(
            name="original",
            rows=slice_file.rows,
            records=records,
            csv_bytes=slice_file.bytes,
            wall_s=child.wall_s,
            user_s=child.user_s,
            sys_s=child.sys_s,
            max_rss_mb=child.max_rss_mb,
            exit_code=child.exit_code,
            check_ok=check_ok,
            check=f"end offset {records:,} {'=' if records == slice_file.rows else '!='} "
            f"{slice_file.rows:,} rows",
            topic=topic,
            job_id=job_id,
            command=argv,
            log=child.log_path,
            stack_cpu_s=stack,
        )
        self._cleanup(topic)
        return result

    # -- the resume case -----------------------------------------------------------------------

    def resume(
        self, csv_file: CsvFile, source: str, client: str, at: float, kill: bool
    ) -> dict[str, Any]:
        """Copy to ``at`` (e.g. 0.9) of the file, stop, restart: how soon is a new record there?

        The first run is stopped with SIGTERM (a clean stop: the open transaction is committed)
        once the partition's end offset passes ``at`` x rows, or with SIGKILL if ``kill``. The
        restart's start-up is timed from just before its fork to the first record after the old
        end offset, as a read_uncommitted consumer sees it ("sent"), as its CreateTime says
        (librdkafka stamps it at produce()), and as a read_committed consumer sees it
        (committed). The consumers are assigned and connected before the restart.
        """
        topic, job_id = self._names("resume")
        argv = self.product_argv(source, topic, job_id, client)
        target = int(csv_file.rows * at)
        self.log(
            f"resume: copying {csv_file.rows:,} rows with {client} until the end offset passes "
            f"{target:,} ({at:.0%}), then {'SIGKILL' if kill else 'SIGTERM'} -> {topic}"
        )
        first = start_child(argv, self._log_path("resume-1"))
        watcher = self.kafka.consumer(committed=False)
        offsets: list[int] = [0]

        def passed() -> bool:
            if first.proc.poll() is not None:
                return True
            with contextlib.suppress(Exception):
                offsets[0] = self.kafka.end_offset(topic, watcher, timeout=5)
            return offsets[0] >= target

        try:
            wait_until(passed, timeout=self.timeout, interval=0.02)
            stopped_at_offset = offsets[0]
            first.signal(signal.SIGKILL if kill else signal.SIGTERM)
            first.wait(120)
        finally:
            watcher.close()
        if first.exit_code not in (143, -signal.SIGKILL):
            raise RuntimeError(
                f"the first run ended with exit {first.exit_code} before it was stopped "
                f"(end offset {offsets[0]:,} of {target:,} wanted); a larger --resume-rows "
                f"gives the stop more time. Log: {first.log_path}\n{first.log_tail()}"
            )
        checkpoint = self._checkpoint(job_id)
        checkpoint_rows = int(checkpoint.get("total_sent", 0)) if checkpoint else 0
        old_end = self.kafka.end_offset(topic)
        self.log(
            f"resume: stopped (exit {first.exit_code}); the checkpoint "
            f"({checkpoint.get('status')}) says {checkpoint_rows:,} rows; restarting"
        )

        sent = _FirstRecord(self.kafka, topic, old_end, committed=False)
        committed = _FirstRecord(self.kafka, topic, old_end, committed=True)
        sent.ready.wait(30)
        committed.ready.wait(30)
        self.services.start()
        second = start_child(argv, self._log_path("resume-2"))
        second.wait(self.timeout)
        stack = self.services.stop()
        for watcher_thread in (sent, committed):
            watcher_thread.finish(10)
        # The restart says where it resumed (Kafka's last commit); after a SIGKILL the checkpoint
        # may be a transaction behind.
        match = re.search(
            r"resuming at row (\d+)", Path(second.log_path).read_text(errors="replace")
        )
        resumed_at = int(match.group(1)) if match else None
        stopped_rows = resumed_at if resumed_at is not None else checkpoint_rows
        check_ok, check = (
            self._verify(source, topic, "resume")
            if second.exit_code == 0
            else (False, f"exit {second.exit_code}: {second.log_tail(3)}")
        )
        self._cleanup(topic)
        rows_after = csv_file.rows - stopped_rows
        return {
            "client": client,
            "rows": csv_file.rows,
            "csv_bytes": csv_file.bytes,
            "stop_signal": "SIGKILL" if kill else "SIGTERM",
            "stop_requested_at_end_offset": stopped_at_offset,
            "first_run": {
                "exit_code": first.exit_code,
                "wall_s": round(first.wall_s, 3),
                "rows_committed": stopped_rows,
                "checkpoint_total_sent": checkpoint_rows,
                "percent": round(100 * stopped_rows / csv_file.rows, 2),
                "checkpoint_status": checkpoint.get("status") if checkpoint else None,
                "log": first.log_path,
            },
            "restart": {
                "exit_code": second.exit_code,
                "wall_s": round(second.wall_s, 3),
                "resumed_at_row": resumed_at,
                "rows": rows_after,
                "rows_per_s": round(rows_after / second.wall_s, 1) if second.wall_s else None,
                "user_s": round(second.user_s, 3),
                "sys_s": round(second.sys_s, 3),
                "max_rss_mb": round(second.max_rss_mb, 1),
                "stack_cpu_s": stack,
                "log": second.log_path,
            },
            "import_floor_s": self.import_floor(client),
            "first_record_seen_s": sent.after(second.started, "seen_at"),
            "first_record_created_s": sent.after(second.started, "created_at"),
            "first_record_line": sent.line,
            "checkpoint_last_line": int(checkpoint.get("last_line", 0)) if checkpoint else None,
            "first_commit_seen_s": committed.after(second.started, "seen_at"),
            "check_ok": check_ok,
            "check": check,
            "topic": topic,
            "job_id": job_id,
        }

    def _checkpoint(self, job_id: str) -> dict[str, Any]:
        import boto3  # noqa: PLC0415

        item = (
            boto3.client("dynamodb")
            .get_item(TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
            .get("Item")
        )
        return {k: next(iter(v.values())) for k, v in (item or {}).items()}

    # -- the memory case -----------------------------------------------------------------------

    def memory(self, csv_file: CsvFile, source: str, client: str) -> RunResult:
        return self.product(
            csv_file,
            source,
            client,
            f"memory-{csv_file.rows}",
            name=f"{client} memory {_short(csv_file.rows)}",
        )

    def warm_up(self, csv_file: CsvFile, source: str) -> None:
        """One small unmeasured run: creates the checkpoint table and Kafka's transaction state
        (a fresh broker's first transactional producer waits for its coordinator to load) and
        brings the code into the page cache, so that the first measured run pays none of it."""
        self.log(f"warm-up: csv-to-kafka run on {csv_file.rows:,} rows (not measured)")
        topic, job_id = self._names("warmup")
        child = run_child(
            self.product_argv(source, topic, job_id, "confluent"),
            self._log_path("warmup"),
            timeout=self.timeout,
        )
        self._cleanup(topic)
        if child.exit_code != 0:
            raise RuntimeError(
                f"the warm-up run failed with exit {child.exit_code}:\n{child.log_tail()}"
            )

    def import_floor(self, client: str) -> float:
        """Seconds for a bare interpreter to import what ``csv-to-kafka run`` imports."""
        module = "confluent_kafka" if client == "confluent" else "kafka"
        child = run_child(
            [sys.executable, "-c", f"import csv_to_kafka.processor, boto3, {module}"],
            self._log_path("import-floor"),
            timeout=120,
        )
        return round(child.wall_s, 3)

    # -- profiling -----------------------------------------------------------------------------

    def profile(self, csv_file: CsvFile, source: str, client: str, tool: str) -> dict[str, Any]:
        """One product run under pyinstrument or py-spy; the profile files land in out_dir."""
        topic, job_id = self._names(f"profile-{client}")
        run = self.product_argv(source, topic, job_id, client)[3:]  # after "-m csv_to_kafka.cli"
        stem = self.out_dir / f"profile-{client}-{tool}"
        outputs: list[str] = []
        bindir = Path(sys.executable).parent
        if tool == "pyinstrument":
            session = f"{stem}.pyisession"
            argv = [
                str(bindir / "pyinstrument"),
                "-r",
                "pyisession",
                "-o",
                session,
                "-m",
                "csv_to_kafka.cli",
                *run,
            ]
        else:
            argv = [
                str(bindir / "py-spy"),
                "record",
                "--threads",
                "--idle",
                "--rate",
                "200",
                "--format",
                "flamegraph",
                "-o",
                f"{stem}.svg",
                "--",
                sys.executable,
                "-m",
                "csv_to_kafka.cli",
                *run,
            ]
        self.log(f"profile: {tool} on csv-to-kafka run --kafka-client {client} -> {topic}")
        child = run_child(argv, self._log_path(f"profile-{client}-{tool}"), timeout=self.timeout)
        if tool == "pyinstrument" and Path(session).exists():
            for renderer, suffix in (("text", "txt"), ("html", "html")):
                out = f"{stem}.{suffix}"
                run_child(
                    [
                        str(bindir / "pyinstrument"),
                        "--load",
                        session,
                        "-r",
                        renderer,
                        "-o",
                        out,
                        *(["--unicode"] if renderer == "text" else []),
                    ],
                    self._log_path(f"profile-render-{suffix}"),
                )
                outputs.append(out)
        elif Path(f"{stem}.svg").exists():
            outputs.append(f"{stem}.svg")
        self._cleanup(topic)
        return {
            "tool": tool,
            "client": client,
            "rows": csv_file.rows,
            "exit_code": child.exit_code,
            "wall_s": round(child.wall_s, 3),
            "outputs": outputs,
            "log": child.log_path,
        }


class _FirstRecord(threading.Thread):
    """Waits for the first record at or after ``start`` in partition 0 and notes when."""

    def __init__(self, kafka: Kafka, topic: str, start: int, *, committed: bool) -> None:
        super().__init__(daemon=True, name=f"first-{'committed' if committed else 'sent'}")
        self.kafka, self.topic, self.start_offset, self.committed = kafka, topic, start, committed
        self.ready = threading.Event()
        self.seen_at: float | None = None  # time.time() when this consumer got it
        self.created_at: float | None = None  # its CreateTime
        self.line: int | None = None
        self._done = threading.Event()
        self.start()

    def finish(self, timeout: float) -> None:
        """Give the consumer ``timeout`` more seconds to see a record, then stop it."""
        self.join(timeout)
        self._done.set()
        self.join(5)

    def after(self, t0: float, attr: str) -> float | None:
        value = getattr(self, attr)
        return None if value is None else round(value - t0, 3)

    def run(self) -> None:
        import orjson  # noqa: PLC0415
        from confluent_kafka import TopicPartition  # noqa: PLC0415

        consumer = self.kafka.consumer(
            committed=self.committed,
            **{"fetch.wait.max.ms": 5, "fetch.error.backoff.ms": 5},
        )
        try:
            consumer.assign([TopicPartition(self.topic, 0, self.start_offset)])
            consumer.poll(0.5)  # connect and fetch once: nothing is there yet
            self.ready.set()
            while not self._done.is_set():
                message = consumer.poll(0.05)
                if message is None or message.error():
                    continue
                self.seen_at = time.time()
                _kind, stamp_ms = message.timestamp()
                self.created_at = stamp_ms / 1000 if stamp_ms > 0 else None
                with contextlib.suppress(Exception):
                    self.line = int(orjson.loads(message.value())["_source_line"])
                return
        finally:
            self.ready.set()
            consumer.close()


def summarize_samples(samples: list[RunResult]) -> dict[str, Any]:
    rates = [r.rows_per_s for r in samples]
    return {
        "n": len(samples),
        "rows_per_s_median": round(statistics.median(rates), 1),
        "rows_per_s_min": round(min(rates), 1),
        "rows_per_s_max": round(max(rates), 1),
    }
