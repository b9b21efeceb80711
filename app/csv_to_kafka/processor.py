"""The pipeline: S3 bytes -> rows -> records -> Kafka transactions -> checkpoint -> metrics.

The only module that knows every stage. One run:

1. Pin the object (ETag, VersionId, size) and read the stored checkpoint.
2. Check the topic.
3. Start the transactional producer (this fences older instances of the job and aborts what they
   left open), then read the job's last committed record from Kafka: its headers say which row
   and which byte the copy continues from (none: from the first byte). Kafka is the truth; the
   checkpoint is a hint and the operators' view.
4. Stream the object from that byte (the parser reads the header row from the same GET, or,
   resuming, from one of its own), one transaction per ``checkpoint_every`` rows (or
   ``checkpoint_seconds``); after each commit the checkpoint is written (in the background,
   never moving backwards) and metrics recorded.
5. On a Kafka error with an unknown outcome, throw the producer away and go back to 3.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import metrics as m
from ._failpoint import failpoint
from ._parse_process import ParseJob, ParseProcess, ReadyBatch
from ._retry import RetryPolicy, retry_call
from .checkpoint import Checkpoint, CheckpointStore, Status, utc_now_iso
from .config import Config
from .errors import (
    BadInputError,
    ConfigError,
    CsvToKafkaError,
    FencedError,
    InfrastructureError,
    ObjectChangedError,
    StoppedError,
)
from .metrics import MetricsEmitter
from .plan import Part, Plan, load_plan, part_config, part_index
from .record import ResumePoint
from .sink import Sink, open_sink
from .source import ObjectInfo, S3Object

logger = logging.getLogger(__name__)

__all__ = ["Processor", "ProgressListener", "RunResult"]

_BATCH_ROWS = 1000


def _retryable_kafka_error(error: BaseException) -> bool:
    return isinstance(error, InfrastructureError) and not isinstance(error, FencedError)


@dataclass(frozen=True)
class RunResult:
    job_id: str
    rows_total: int  # rows of the job committed, in all runs
    rows_this_run: int
    bytes_this_run: int
    seconds: float
    already_complete: bool

    @property
    def rows_per_second(self) -> float:
        return self.rows_this_run / self.seconds if self.seconds > 0 else 0.0


class ProgressListener(Protocol):
    """Told after every batch sent and every commit (the CLI draws a bar or logs JSON)."""

    def started(self, job_id: str, rows: int, byte_offset: int, total_bytes: int) -> None: ...

    def advanced(self, rows: int, byte_offset: int, *, committed: bool) -> None: ...


class _Quiet:
    def started(self, job_id: str, rows: int, byte_offset: int, total_bytes: int) -> None:
        pass

    def advanced(self, rows: int, byte_offset: int, *, committed: bool) -> None:
        pass


class _CheckpointWriter:
    """Writes the newest checkpoint in a thread, so DynamoDB never holds up the copy.

    Checkpoints that arrive while a write is in flight are coalesced: only the newest is written.
    A write that fails after the store's retries is kept in ``error`` for the processor to raise.
    """

    def __init__(self, store: CheckpointStore, metrics: MetricsEmitter) -> None:
        self._store = store
        self._metrics = metrics
        self._cond = threading.Condition()
        self._pending: Checkpoint | None = None
        self._busy = False
        self._closed = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def submit(self, checkpoint: Checkpoint) -> None:
        with self._cond:
            self._pending = checkpoint
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until every submitted checkpoint is written (or has failed)."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is None and not self._busy)

    def close(self) -> None:
        self.drain()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return
                checkpoint, self._pending, self._busy = self._pending, None, True
            started = time.monotonic()
            try:
                self._store.save(checkpoint)
                self._metrics.observe(m.CHECKPOINT_LATENCY, (time.monotonic() - started) * 1000)
                failpoint("after-checkpoint")
            except BaseException as err:  # noqa: BLE001 (raised by the processor's thread)
                self.error = err
                self._metrics.count(m.ERRORS)
                logger.error("writing the checkpoint failed: %s", err)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def _cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """The CPUs this process may use: its cpuset, capped by a cgroup CPU quota (a container's
    ``--cpus``, an ECS task's vCPUs), which the cpuset does not show."""
    try:
        cpus: float = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        cpus = os.cpu_count() or 1
    try:  # cgroup v2: "QUOTA PERIOD", or "max PERIOD" for no quota
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:  # cgroup v1: the quota is -1 for none
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return cpus
    try:
        limit = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):  # "max": no quota
        return cpus
    return min(cpus, limit) if limit > 0 else cpus


class Processor:
    """Copies one CSV object into one Kafka partition, exactly once, in order."""

    def __init__(
        self,
        config: Config,
        *,
        stop: threading.Event | None = None,
        progress: ProgressListener | None = None,
        sink_factory: Callable[[Config], Sink] = open_sink,
        store: CheckpointStore | None = None,
        metrics: MetricsEmitter | None = None,
        s3: S3Object | None = None,
        plan: Plan | None = None,
    ) -> None:
        self._retry = RetryPolicy(total_seconds=config.retry_seconds)
        # A planned part (--plan): its own job id, partition and byte range (plan.py).
        self.plan: Plan | None = None
        self.part: Part | None = None
        if config.plan is not None or plan is not None:
            self.plan = plan if plan is not None else load_plan(str(config.plan), self._retry)
            index = part_index(config)
            config = part_config(config, self.plan, index)
            self.part = self.plan.part(index)
        self.config = config
        self._stop = stop if stop is not None else threading.Event()
        self._stop_signal = 0
        self._progress: ProgressListener = progress if progress is not None else _Quiet()
        self._metrics = (
            metrics
            if metrics is not None
            else MetricsEmitter(
                config.metrics_namespace, config.job_id, interval=config.metrics_interval
            )
        )
        self._store = (
            store
            if store is not None
            else CheckpointStore(
                config.checkpoint_table,
                retry=self._retry,
                create_table=config.create_table,
                on_retry=self._count_retry,
            )
        )
        self._s3 = (
            s3
            if s3 is not None
            else S3Object(
                config.source.bucket,
                config.source.key,
                retry=self._retry,
                on_retry=self._count_retry,
            )
        )
        self._sink_factory = sink_factory
        # A second process only pays when there is a second CPU to run it, and it reads the
        # object with its own client, so not when the caller hands in an S3Object.
        self._parse_process = config.parse_process and s3 is None and _cpus() >= 2

    def request_stop(self, signum: int) -> None:
        """Finish the open transaction, checkpoint, and stop (called from a signal handler)."""
        self._stop_signal = signum
        self._stop.set()

    def _count_retry(self, _err: BaseException) -> None:
        self._metrics.count(m.RETRIES)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> RunResult:
        self._metrics.start()
        # The copy allocates a list per row and a dict per record, all short-lived and free of
        # cycles: the default collector would walk them every 700 allocations. Collect rarely,
        # and never walk the modules and clients loaded so far.
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(100_000, 50, 100)
        try:
            return self._run()
        except CsvToKafkaError:
            self._metrics.count(m.ERRORS)
            raise
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            self._metrics.close()

    def _run(self) -> RunResult:
        config = self.config
        started = time.monotonic()
        info = self._s3.head()
        if self.plan is not None:
            self.plan.check_object(info)  # exit 3: the plan's ranges fit another version
        stored = self._store.load(config.job_id)
        self._check_stored(stored, info)
        if stored is not None and stored.status is Status.COMPLETED:
            logger.info(
                "job %s is already complete (%d rows); nothing to do",
                config.job_id,
                stored.total_sent,
            )
            return RunResult(config.job_id, stored.total_sent, 0, 0, 0.0, already_complete=True)

        sink = self._sink_factory(config)
        try:
            retry_call(
                sink.ensure_topic,
                what=f"checking topic {config.topic}",
                policy=self._retry,
                is_transient=_retryable_kafka_error,
                on_retry=self._count_retry,
            )
            run = _Run(self, sink, info=info, stored=stored)
            rows_total = run.copy_with_retries()
        finally:
            sink.close()
        return RunResult(
            config.job_id,
            rows_total,
            run.rows_this_run,
            run.bytes_this_run,
            time.monotonic() - started,
            already_complete=False,
        )

    def _check_stored(self, stored: Checkpoint | None, info: ObjectInfo) -> None:
        config = self.config
        if stored is None:
            return
        if stored.source != str(config.source) or stored.topic != config.topic:
            raise ConfigError(
                f"job id {config.job_id} already names the copy of {stored.source} to topic "
                f"{stored.topic}; a job id names one copy, so use another --job-id"
            )
        if stored.etag != info.etag or (stored.version_id or None) != (info.version_id or None):
            raise ObjectChangedError(
                f"the object changed since job {config.job_id} started (ETag {stored.etag}, now "
                f"{info.etag}); copying on would mix two versions. Start a new --job-id to copy "
                "the new version",
                source=info.uri,
            )


class _Run:
    """One run's state: the position, the open transaction, and what has been done."""

    def __init__(
        self,
        processor: Processor,
        sink: Sink,
        *,
        info: ObjectInfo,
        stored: Checkpoint | None,
    ) -> None:
        self.p = processor
        self.config = processor.config
        self.sink = sink
        self.info = info
        self.stored = stored
        self.started_at = stored.started_at if stored is not None else utc_now_iso()
        self.rows_this_run = 0
        self.bytes_this_run = 0
        self.writer = _CheckpointWriter(processor._store, processor._metrics)
        self.rate_clock = time.monotonic()
        self.rate_rows = 0
        self.rate_bytes = 0
        self.rows_per_second = 0.0
        self.bytes_per_second = 0.0
        self.committed: ResumePoint | None = None  # the last position known to be committed
        # Progress counts bytes of the range being copied: a planned part's, else the object's.
        part = processor.part
        self.base = part.first_byte if part is not None else 0
        self.span = part.end_byte - part.first_byte if part is not None else info.size

    def copy_with_retries(self) -> int:
        next_sleep = self.p._retry.backoffs()
        progress = -1  # rows committed when the retry budget was last renewed
        try:
            while True:
                try:
                    return self._copy()
                except (FencedError, ConfigError, BadInputError, StoppedError):
                    raise
                except InfrastructureError as err:
                    self.sink.abort()
                    self.sink.close()
                    self.p._metrics.count(m.RETRIES)
                    rows = self.committed.rows if self.committed is not None else -1
                    if rows > progress:  # the budget is for failing in a row, not for the run
                        next_sleep, progress = self.p._retry.backoffs(), rows
                    delay = next_sleep()
                    if delay is None:
                        self._record_failure(err)
                        raise
                    logger.warning(
                        "%s; starting again from Kafka's last commit in %.1fs", err, delay
                    )
                    if self.p._stop.wait(delay):
                        raise StoppedError(self.p._stop_signal or 15) from err
        finally:
            self.writer.close()

    def _position(self) -> ResumePoint:
        """Start the producer, then read where the job stands from Kafka's committed records."""
        self.sink.start()
        hint = self.stored.kafka_offset if self.stored and self.stored.kafka_offset >= 0 else None
        point = self.sink.last_committed(self.config.job_id, hint)
        if point is None:
            if self.stored is not None and self.stored.total_sent > 0:
                raise ConfigError(
                    f"the checkpoint of job {self.config.job_id} says {self.stored.total_sent} "
                    f"rows were committed, but topic {self.config.topic} holds none of them: "
                    "the topic was deleted or truncated. Use a new --job-id (or delete the "
                    "checkpoint) to copy again"
                )
            part = self.p.part
            if part is not None:  # from the part's first row; the header has a GET of its own
                return ResumePoint(
                    self.config.job_id,
                    0,
                    part.first_line - 1,
                    part.first_line,
                    part.first_byte,
                    self.info.etag,
                )
            # From the first byte: the parser reads the header on its way to the first row.
            return ResumePoint(self.config.job_id, 0, 0, 1, 0, self.info.etag)
        if point.etag != self.info.etag:
            raise ObjectChangedError(
                f"job {self.config.job_id} copied ETag {point.etag} up to row {point.rows}, but "
                f"the object is now ETag {self.info.etag}; copying on would mix two versions. "
                "Start a new --job-id to copy the new version",
                source=self.info.uri,
            )
        return point

    def _batches(self, point: ResumePoint, parser: ParseProcess | None) -> Iterator[ReadyBatch]:
        config = self.config
        job = ParseJob(
            bucket=config.source.bucket,
            key=config.source.key,
            info=self.info,
            retry=self.p._retry,
            start_offset=point.byte_offset,
            start_line=point.next_line,
            delimiter=config.delimiter,
            quotechar=config.quotechar,
            encoding=config.encoding,
            max_bytes=self.sink.max_message_bytes,
            batch_rows=min(_BATCH_ROWS, config.checkpoint_every),
            compression=config.input_compression,
            member_offset=point.member_offset,
            member_text_offset=point.member_text_offset,
            end_offset=self.p.part.end_byte if self.p.part is not None else -1,
        )
        if parser is not None:
            return parser.batches(job, on_retry=lambda: self.p._metrics.count(m.RETRIES))
        return job.ready_batches(self.p._s3)

    def _copy(self) -> int:
        # The parser process starts first: its start-up overlaps finding the position in Kafka.
        parser = ParseProcess() if self.p._parse_process else None
        try:
            return self._copy_with(parser)
        finally:
            if parser is not None:
                parser.close()

    def _copy_with(self, parser: ParseProcess | None) -> int:
        config = self.config
        point = self._position()
        stored = self.stored
        if point.member_offset >= 0 and stored is not None and stored.total_sent == point.rows:
            # A compressed object: Kafka's record says which member holds the point, the
            # checkpoint how far into the stored bytes the reader had got (progress only).
            point = dataclasses.replace(point, stored_offset=stored.byte_offset)
        committed = self.committed = point
        logger.info(
            "job %s: %s at row %d, line %d, byte %d of %d%s",
            config.job_id,
            "resuming" if point.rows else "starting",
            point.rows,
            point.next_line,
            point.byte_offset,
            self.info.size,
            f" (decoded; decoding from compressed byte {point.member_offset}, where byte "
            f"{point.member_text_offset} starts)"
            if point.member_offset > 0
            else "",
        )
        self.p._progress.started(
            config.job_id, point.rows, point.stored_position - self.base, self.span
        )
        self._checkpoint(point, Status.RUNNING, sync=True)
        stop = self.p._stop
        if stop.is_set():
            self._stopped(point)
        every = config.checkpoint_every
        seconds = config.checkpoint_seconds
        in_txn = False
        txn_rows = 0
        txn_started = 0.0
        sent = point
        try:
            for ready in self._batches(point, parser):
                values = ready.values
                if not in_txn:
                    self.sink.begin()
                    in_txn, txn_rows, txn_started = True, 0, time.monotonic()
                n = len(values)
                sent = ResumePoint(
                    config.job_id,
                    rows=sent.rows + n,
                    line=ready.last_line,
                    next_line=ready.next_line,
                    byte_offset=ready.next_offset,
                    etag=self.info.etag,
                    member_offset=ready.member_offset,
                    member_text_offset=ready.member_text_offset,
                    stored_offset=ready.stored_offset,
                )
                self.sink.send(values, sent.to_headers())
                txn_rows += n
                self.p._progress.advanced(
                    sent.rows, sent.stored_position - self.base, committed=False
                )
                failpoint("in-transaction")
                if in_txn and (
                    txn_rows >= every or stop.is_set() or time.monotonic() - txn_started >= seconds
                ):
                    committed = self._commit(committed, sent, txn_rows)
                    in_txn = False
                if stop.is_set():
                    self._stopped(committed)
        except BadInputError as bad:
            # Everything before the bad row is committed; nothing from it on is sent.
            if in_txn:
                committed = self._commit(committed, sent, txn_rows)
            self._checkpoint(committed, Status.FAILED, sync=True, error=str(bad))
            raise
        if in_txn:
            committed = self._commit(committed, sent, txn_rows)
        self._checkpoint(committed, Status.COMPLETED, sync=True)
        logger.info("job %s: complete, %d rows", config.job_id, committed.rows)
        return committed.rows

    def _commit(self, committed: ResumePoint, sent: ResumePoint, txn_rows: int) -> ResumePoint:
        metrics = self.p._metrics
        started = time.monotonic()
        offset = self.sink.commit()
        metrics.observe(m.COMMIT_LATENCY, (time.monotonic() - started) * 1000)
        failpoint("after-commit")
        now = dataclasses.replace(sent, kafka_offset=offset)
        bytes_read = now.stored_position - committed.stored_position
        self.rows_this_run += txn_rows
        self.bytes_this_run += bytes_read
        metrics.count(m.RECORDS_SENT, txn_rows)
        metrics.count(m.BYTES_READ, bytes_read, "Bytes")
        metrics.count(m.TRANSACTIONS_COMMITTED)
        self._update_rate(txn_rows, bytes_read)
        done = now.stored_position - self.base
        if self.span:
            metrics.gauge(m.PROGRESS_PERCENT, done / self.span * 100, "Percent")
        metrics.gauge(m.ROWS_PER_SECOND, self.rows_per_second, "Count/Second")
        if self.bytes_per_second > 0:
            eta = (self.span - done) / self.bytes_per_second
            metrics.gauge(m.ETA_SECONDS, eta, "Seconds")
        if self.writer.error is not None:
            raise InfrastructureError(f"the checkpoint could not be written: {self.writer.error}")
        self._checkpoint(now, Status.RUNNING)
        self.p._progress.advanced(now.rows, now.stored_position - self.base, committed=True)
        self.committed = now
        return now

    def _record_failure(self, err: BaseException) -> None:
        """Mark the checkpoint FAILED at the last known commit, as well as DynamoDB allows."""
        if self.committed is None:
            return
        try:
            self._checkpoint(self.committed, Status.FAILED, sync=True, error=str(err))
        except CsvToKafkaError as failure:
            logger.warning("could not mark job %s FAILED: %s", self.config.job_id, failure)

    def _update_rate(self, rows: int, nbytes: int) -> None:
        self.rate_rows += rows
        self.rate_bytes += nbytes
        elapsed = time.monotonic() - self.rate_clock
        if elapsed >= 5 or self.rows_per_second == 0:
            self.rows_per_second = self.rate_rows / elapsed if elapsed > 0 else 0.0
            self.bytes_per_second = self.rate_bytes / elapsed if elapsed > 0 else 0.0
            if elapsed >= 5:
                self.rate_clock, self.rate_rows, self.rate_bytes = time.monotonic(), 0, 0

    def _checkpoint(
        self, point: ResumePoint, status: Status, *, sync: bool = False, error: str | None = None
    ) -> None:
        checkpoint = Checkpoint(
            job_id=self.config.job_id,
            status=status,
            source=str(self.config.source),
            topic=self.config.topic,
            etag=self.info.etag,
            version_id=self.info.version_id,
            last_line=point.line,
            total_sent=point.rows,
            # A planned part counts the bytes of its own range (percent and ETA of the part).
            byte_offset=point.stored_position - self.base,
            kafka_offset=point.kafka_offset,
            total_bytes=self.span,
            rows_per_second=self.rows_per_second,
            bytes_per_second=self.bytes_per_second,
            started_at=self.started_at,
            updated_at=utc_now_iso(),
            error=error,
        )
        self.writer.submit(checkpoint)
        if sync:
            self.writer.drain()
            if self.writer.error is not None:
                raise InfrastructureError(
                    f"the checkpoint could not be written: {self.writer.error}"
                ) from self.writer.error

    def _stopped(self, committed: ResumePoint) -> None:
        signum = self.p._stop_signal or 15
        self._checkpoint(
            committed, Status.INTERRUPTED, sync=True, error=f"stopped by signal {signum}"
        )
        logger.info(
            "job %s: stopped at row %d (byte %d) after a clean checkpoint",
            self.config.job_id,
            committed.rows,
            committed.byte_offset,
        )
        raise StoppedError(signum)
