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
from .deadletter import DeadLetters
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
from .objects import JobObjects, PinnedObjects, check_still_listed, list_objects, read_manifest
from .plan import Part, Plan, load_plan, part_config, part_index
from .record import ResumePoint
from .schema import schema_digest
from .sink import PARTITION, Sink, open_sink
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
    bad_rows: int = 0  # bad rows of the job (dead letters or dropped), in all runs

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
        job_id = config.job_id  # a part's ProgressPercent also goes under the job's own id
        if config.plan is not None or plan is not None:
            self.plan = plan if plan is not None else load_plan(str(config.plan), self._retry)
            index = part_index(config)
            config = part_config(config, self.plan, index)
            self.part = self.plan.part(index)
        self.config = config
        self._schema_sha256 = ""  # --schema's digest (schema.schema_digest), found by run
        self._stop = stop if stop is not None else threading.Event()
        self._stop_signal = 0
        self._progress: ProgressListener = progress if progress is not None else _Quiet()
        self._metrics = (
            metrics
            if metrics is not None
            else MetricsEmitter(
                config.metrics_namespace,
                config.job_id,
                interval=config.metrics_interval,
                part_of=(job_id, self.part.index) if self.part is not None else None,
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
        info = None if config.multi_object else self._s3.head()
        if self.plan is not None and info is not None:
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
        self._schema_sha256 = schema_digest(config.schema) if config.schema else ""
        self._check_schema(stored)
        objects = JobObjects((info,)) if info is not None else self._pin(stored)

        sink = self._sink_factory(config)
        # The dead-letter topic's own view: created like the topic but with one partition
        # (dead letters go to partition 0, whatever the topic's keys or parts), read back when
        # resuming (its records are written by ``sink``'s producer, in the same transactions).
        dlq = (
            self._sink_factory(dlq_view(config, config.dlq_topic))
            if config.dlq_topic and config.errors_tolerance == "all"
            else None
        )
        try:
            for each in (sink, dlq):
                if each is None:
                    continue
                retry_call(
                    each.ensure_topic,
                    what=f"checking topic {config.topic if each is sink else config.dlq_topic}",
                    policy=self._retry,
                    is_transient=_retryable_kafka_error,
                    on_retry=self._count_retry,
                )
            self._check_partitions(stored, sink.partitions)
            run = _Run(self, sink, objects=objects, stored=stored, dlq=dlq)
            rows_total = run.copy_with_retries()
        finally:
            sink.close()
            if dlq is not None:
                dlq.close()
        return RunResult(
            config.job_id,
            rows_total,
            run.rows_this_run,
            run.bytes_this_run,
            time.monotonic() - started,
            already_complete=False,
            bad_rows=run.bad_rows,
        )

    def _check_schema(self, stored: Checkpoint | None) -> None:
        """A job keeps its --schema (by content): a record's value, and so its key, depend on
        it. Checkpoints written before schemas were pinned (None) are not checked."""
        if stored is None or stored.schema_sha256 is None:
            return
        if stored.schema_sha256 == self._schema_sha256:
            return

        def named(location: str | None, digest: str) -> str:
            return f"--schema {location} (sha256 {digest[:12]})" if digest else "no --schema"

        raise ConfigError(
            f"job {self.config.job_id} started with {named(stored.schema, stored.schema_sha256)}, "
            f"not {named(self.config.schema, self._schema_sha256)}: a job keeps its schema "
            "(its records' values and keys depend on it). Give the job its first schema back, "
            "or use a new --job-id"
        )

    def _check_partitions(self, stored: Checkpoint | None, partitions: int) -> None:
        """A job keeps its key columns and its topic's partition count: a key's partition
        depends on both."""
        if stored is None or stored.partitions <= 0:  # none, or from before keys
            return
        keys = ",".join(self.config.key_columns)
        if stored.key_columns != keys:
            raise ConfigError(
                f"job {self.config.job_id} started with "
                f"{'--key-column ' + stored.key_columns if stored.key_columns else 'no key'}, "
                f"not {'--key-column ' + keys if keys else 'no key'}: a job keeps its key "
                "columns (its records' partitions depend on them). Use a new --job-id"
            )
        if stored.partitions == partitions:
            return
        raise BadInputError(
            f"topic {self.config.topic} has {partitions} partitions, but job "
            f"{self.config.job_id} started with {stored.partitions}: the keys copied so far are "
            "in the partitions of the old count, so copying on would put a key in two "
            "partitions. Start a new --job-id on a topic of the count you want",
            source=str(self.config.source),
        )

    def _pin(self, stored: Checkpoint | None) -> JobObjects:
        """The job's objects: listed and stored at its first run, the stored list after."""
        config = self.config
        client = self._s3.client
        pinned_store = PinnedObjects(
            config.checkpoint_table, retry=self._retry, client=self._store.client
        )
        sources = (
            read_manifest(client, config.source, self._retry)
            if config.source_manifest
            else config.sources
        )
        pinned = pinned_store.load(config.job_id)
        if pinned is None:
            pinned = pinned_store.save(config.job_id, list_objects(sources, client, self._retry))
            logger.info(
                "job %s: %d objects (%d bytes) fixed as the job's list",
                config.job_id,
                len(pinned),
                pinned.total_bytes,
            )
            return pinned
        start = stored.object_index if stored is not None else 0
        added = check_still_listed(pinned, sources, client, self._retry, start)
        logger.info(
            "job %s: resuming over its %d objects fixed at its first run%s",
            config.job_id,
            len(pinned),
            f"; {added} objects added under its prefixes since then are ignored" if added else "",
        )
        return pinned

    def _check_stored(self, stored: Checkpoint | None, info: ObjectInfo | None) -> None:
        config = self.config
        if stored is None:
            return
        if stored.source != config.source_label or stored.topic != config.topic:
            raise ConfigError(
                f"job id {config.job_id} already names the copy of {stored.source} to topic "
                f"{stored.topic}; a job id names one copy, so use another --job-id"
            )
        if info is None:  # many objects: the pinned list and each GET's If-Match check them
            return
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
        objects: JobObjects,
        stored: Checkpoint | None,
        dlq: Sink | None = None,
    ) -> None:
        self.p = processor
        self.dlq = dlq  # the dead-letter topic's reader (None: no dead letters are written)
        self.bad_rows = 0  # the job's bad rows at the last commit
        self.config = processor.config
        self.sink = sink
        self.objects = objects
        self.info = objects[0]  # the object the copy is in
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
        self.span = part.end_byte - part.first_byte if part is not None else objects.total_bytes

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
        if self.dlq is not None:
            # A transaction that ended with bad rows left its position on its dead letters.
            dead = self.dlq.last_committed(self.config.job_id, None)
            if dead is not None and (
                point is None
                or (dead.object_index, dead.byte_offset) > (point.object_index, point.byte_offset)
            ):
                point = dataclasses.replace(dead, kafka_offset=-1)
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
            self.info = self.objects[0]
            return ResumePoint(self.config.job_id, 0, 0, 1, 0, self.info.etag)
        if not 0 <= point.object_index < len(self.objects):
            raise ConfigError(
                f"job {self.config.job_id}'s last commit is in object {point.object_index + 1}, "
                f"but the job has {len(self.objects)} objects: use a new --job-id"
            )
        self.info = self.objects[point.object_index]
        if point.etag != self.info.etag:
            raise ObjectChangedError(
                f"job {self.config.job_id} copied ETag {point.etag} up to row {point.rows}, but "
                f"the object is now ETag {self.info.etag}; copying on would mix two versions. "
                "Start a new --job-id to copy the new version",
                source=self.info.uri,
            )
        return point

    def _job_position(self, point: ResumePoint) -> int:
        """The job's stored byte ``point`` stands at: the objects before its own, then its own."""
        return self.objects.start_of(point.object_index) + point.stored_position - self.base

    def _batches(self, point: ResumePoint, parser: ParseProcess | None) -> Iterator[ReadyBatch]:
        config = self.config
        index = point.object_index
        bucket, _, key = self.info.uri[len("s3://") :].partition("/")
        job = ParseJob(
            bucket=bucket,
            key=key,
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
            key_columns=config.key_columns,
            key_separator=config.key_separator,
            partitions=self.sink.partitions,
            schema=config.schema,
            null_values=config.null_values,
            tolerate=config.errors_tolerance == "all",
            object_index=index,
            following=self.objects.objects[index + 1 :],
            first=self.objects[0] if index > 0 else None,
            columns=config.columns,
            end_offset=self.p.part.end_byte if self.p.part is not None else -1,
            max_bad_rows=config.max_bad_rows,
            bad_rows=point.bad_rows,
        )
        if parser is not None:
            return parser.batches(job, on_retry=lambda: self.p._metrics.count(m.RETRIES))
        # The object's own reader: config.source may be a prefix, not this object
        return job.ready_batches(self.p._s3.sibling(bucket, key))

    def _copy(self) -> int:
        # The parser process starts first: its start-up overlaps finding the position in Kafka.
        parser = ParseProcess() if self.p._parse_process else None
        try:
            return self._copy_with(parser)
        finally:
            if parser is not None:
                parser.close()

    def _send(self, ready: ReadyBatch, headers: list[tuple[str, bytes]], dead: DeadLetters) -> None:
        """Queue a batch's records (keyed or not) and its dead letters, in the transaction."""
        if ready.keys is None:
            self.sink.send(ready.values, headers)
        else:
            self.sink.send(ready.values, headers, ready.keys, ready.partitions)
        if ready.rejects:
            self.sink.send_dead_letters(dead.topic or "", dead.take(ready.rejects, headers))

    def _start_point(self) -> ResumePoint:
        """Where the copy starts: Kafka's last commit of the job (or the first byte)."""
        point = self._position()
        stored = self.stored
        if point.member_offset >= 0 and stored is not None and stored.total_sent == point.rows:
            # A compressed object: Kafka's record says which member holds the point, the
            # checkpoint how far into the stored bytes the reader had got (progress only).
            stored_in_object = stored.byte_offset - self.objects.start_of(point.object_index)
            point = dataclasses.replace(point, stored_offset=stored_in_object)
        return point

    def _copy_with(self, parser: ParseProcess | None) -> int:
        config = self.config
        point = self._start_point()
        committed = self.committed = point
        self.bad_rows = point.bad_rows
        dead = DeadLetters(
            topic=config.dlq_topic,
            source=self.info.uri,
            job_id=config.job_id,
            max_bad_rows=config.max_bad_rows,
            total=point.bad_rows,
            part=self.p.part.index if self.p.part is not None else None,
        )
        self._log_start(point)
        self.p._progress.started(config.job_id, point.rows, self._job_position(point), self.span)
        if config.multi_object:
            self._next_object(point.object_index)
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
                if ready.object_index != sent.object_index:
                    self._next_object(ready.object_index)
                    dead.source = self.info.uri  # the dead letters' csv-to-kafka.source-file
                values = ready.values
                rejects = ready.rejects
                dead.check_limit(rejects)  # past --max-bad-rows: nothing of this batch is sent
                if not in_txn:
                    self.sink.begin()
                    in_txn, txn_rows, txn_started = True, 0, time.monotonic()
                n = len(values)
                sent = self._after(sent, ready)
                self._send(ready, sent.to_headers(), dead)
                txn_rows += n
                self.p._progress.advanced(sent.rows, self._job_position(sent), committed=False)
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
        self._complete(committed)
        return committed.rows

    def _log_start(self, point: ResumePoint) -> None:
        config = self.config
        # A compressed object's point is a decoded byte; its size is of the stored bytes.
        size = (
            f"{self.info.size}"
            if point.member_offset < 0
            else f"an object of {self.info.size} compressed bytes"
        )
        logger.info(
            "job %s: %s at row %d, line %d, %sbyte %d of %s%s%s",
            config.job_id,
            "resuming" if point.rows else "starting",
            point.rows,
            point.next_line,
            "" if point.member_offset < 0 else "decoded ",
            point.byte_offset,
            size,
            f" (decoding from compressed byte {point.member_offset}, where decoded byte "
            f"{point.member_text_offset} starts)"
            if point.member_offset > 0
            else "",
            f" of object {point.object_index + 1} of {len(self.objects)}, {self.info.uri}"
            if config.multi_object
            else "",
        )

    def _after(self, sent: ResumePoint, ready: ReadyBatch) -> ResumePoint:
        """The job's point after ``ready``, sent after ``sent``."""
        return ResumePoint(
            self.config.job_id,
            rows=sent.rows + len(ready.values),
            line=ready.last_line,
            next_line=ready.next_line,
            byte_offset=ready.next_offset,
            etag=self.info.etag,
            member_offset=ready.member_offset,
            member_text_offset=ready.member_text_offset,
            stored_offset=ready.stored_offset,
            bad_rows=sent.bad_rows + len(ready.rejects),
            object_index=ready.object_index,
        )

    def _complete(self, committed: ResumePoint) -> None:
        config = self.config
        if config.multi_object:
            self.p._metrics.gauge(m.OBJECTS_DONE, len(self.objects), "Count")
        self._checkpoint(committed, Status.COMPLETED, sync=True)
        if committed.bad_rows:  # exit 0, but not a clean-looking end
            logger.warning(
                "job %s: complete, %d rows, and %d BAD ROWS %s",
                config.job_id,
                committed.rows,
                committed.bad_rows,
                f"in dead-letter topic {config.dlq_topic}" if config.dlq_topic else "dropped",
                extra={"bad_rows": committed.bad_rows, "rows": committed.rows},
            )
        else:
            logger.info("job %s: complete, %d rows", config.job_id, committed.rows)

    def _next_object(self, index: int) -> None:
        """The parser has moved on to object ``index`` of the job (the ones before are read)."""
        self.info = self.objects[index]
        # The CLI's progress shows the object (an optional method: other listeners lack it).
        object_started = getattr(self.p._progress, "object_started", None)
        if object_started is not None:
            object_started(index, len(self.objects))
        logger.info(
            "job %s: object %d of %d, %s (%d bytes)",
            self.config.job_id,
            index + 1,
            len(self.objects),
            self.info.uri,
            self.info.size,
        )

    def _commit(self, committed: ResumePoint, sent: ResumePoint, txn_rows: int) -> ResumePoint:
        metrics = self.p._metrics
        started = time.monotonic()
        offset = self.sink.commit()
        metrics.observe(m.COMMIT_LATENCY, (time.monotonic() - started) * 1000)
        failpoint("after-commit")
        now = dataclasses.replace(sent, kafka_offset=offset)
        position, total = self._job_position(now), self.span
        bytes_read = position - self._job_position(committed)
        self.rows_this_run += txn_rows
        self.bytes_this_run += bytes_read
        metrics.count(m.RECORDS_SENT, txn_rows)
        metrics.count(m.BYTES_READ, bytes_read, "Bytes")
        metrics.count(m.TRANSACTIONS_COMMITTED)
        if now.bad_rows > self.bad_rows:
            metrics.count(m.BAD_ROWS, now.bad_rows - self.bad_rows)
            self.bad_rows = now.bad_rows
        self._update_rate(txn_rows, bytes_read)
        if total:
            metrics.gauge(m.PROGRESS_PERCENT, position / total * 100, "Percent")
        metrics.gauge(m.ROWS_PER_SECOND, self.rows_per_second, "Count/Second")
        if self.bytes_per_second > 0:
            eta = (total - position) / self.bytes_per_second
            metrics.gauge(m.ETA_SECONDS, eta, "Seconds")
        if self.config.multi_object:  # the objects before the one the commit is in
            metrics.gauge(m.OBJECTS_DONE, now.object_index, "Count")
        if self.writer.error is not None:
            raise InfrastructureError(f"the checkpoint could not be written: {self.writer.error}")
        self._checkpoint(now, Status.RUNNING)
        self.p._progress.advanced(now.rows, position, committed=True)
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
        info = self.objects[point.object_index]
        checkpoint = Checkpoint(
            job_id=self.config.job_id,
            status=status,
            source=self.config.source_label,
            topic=self.config.topic,
            etag=info.etag,
            version_id=info.version_id,
            last_line=point.line,
            total_sent=point.rows,
            byte_offset=self._job_position(point),
            kafka_offset=point.kafka_offset,
            total_bytes=self.span,
            rows_per_second=self.rows_per_second,
            bytes_per_second=self.bytes_per_second,
            started_at=self.started_at,
            updated_at=utc_now_iso(),
            error=error,
            partitions=self.sink.partitions,
            key_columns=",".join(self.config.key_columns),
            schema_sha256=self.p._schema_sha256,
            schema=self.config.schema or "",
            bad_rows=point.bad_rows,
            object_index=point.object_index,
            object_count=len(self.objects),
            current_object=info.uri if self.config.multi_object else None,
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


def dlq_view(config: Config, topic: str) -> Config:
    """The dead-letter topic as a sink of its own sees it: created with one partition, even for
    a keyed (``--partitions``) or parted job; an existing one with more is used all the same
    (dead letters go to its partition 0, as an earlier version may have created it). Part I of
    a plan writes partition I of the topic, but its dead letters go to, and a resumed run reads
    them back from, partition 0 of the dead-letter topic."""
    return dataclasses.replace(
        config,
        topic=topic,
        partition=PARTITION,
        dlq_topic=None,
        errors_tolerance="none",
        skip_bad_rows=False,
        key_columns=(),
        partitions=None,
        plan_partitions=1,
        allow_multiple_partitions=True,
    )
