"""CloudWatch metrics: recorded in memory, sent in batches, never in the way of the copy.

Recording (``count``, ``gauge``, ``observe``) takes a lock and updates a dict; a background
thread sends what was recorded every ``interval`` seconds in one PutMetricData call (chunked to
1000 data points), with the dimension ``JobId``. A planned part (``run --plan``) sends its metrics
under its own job id (``J.part-I``), its ``ProgressPercent`` also under ``{JobId: J, Part: I}``
(the job's dashboard draws one line per part), and the metrics that add up across parts
(``JOB_TOTALS``: counters and statistic sets) also under ``{JobId: J}``, so that the job's own
widgets and alarms (rows, errors, bad rows, latency) see every part.

A failed send is logged at WARNING, counted in ``failures`` and its data dropped: PutMetricData
is not idempotent, so resending a request that timed out could count twice, and a metric that
undercounts after an outage is the lesser harm. Nothing here raises into the caller once
constructed, ``close()`` included: a value CloudWatch would refuse (NaN, infinity, an unknown
unit) is dropped and logged rather than spoiling the batch.

The names the processor emits are the constants below; docs/metrics.md describes each.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, cast

import boto3
import botocore.config

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.literals import StandardUnitType
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDatumTypeDef

__all__ = [
    "BAD_ROWS",
    "BYTES_READ",
    "CHECKPOINT_LATENCY",
    "COMMIT_LATENCY",
    "DEFAULT_NAMESPACE",
    "ERRORS",
    "ETA_SECONDS",
    "JOB_TOTALS",
    "METRICS",
    "OBJECTS_DONE",
    "PART_DIMENSION",
    "PER_PART",
    "PROGRESS_PERCENT",
    "RECORDS_SENT",
    "RETRIES",
    "ROWS_PER_SECOND",
    "TRANSACTIONS_COMMITTED",
    "MetricSpec",
    "MetricsEmitter",
]

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "CsvToKafka"
DIMENSION = "JobId"
PART_DIMENSION = "Part"  # with JobId = the planned job's id (not J.part-I), on PER_PART metrics
MAX_DATUMS_PER_CALL = 1000  # the PutMetricData limit
CLOSE_TIMEOUT = 5.0  # close() never waits longer than this for the final flush

RECORDS_SENT = "RecordsSent"
BYTES_READ = "BytesRead"
PROGRESS_PERCENT = "ProgressPercent"
ROWS_PER_SECOND = "RowsPerSecond"
ETA_SECONDS = "EtaSeconds"
RETRIES = "Retries"
ERRORS = "Errors"
COMMIT_LATENCY = "CommitLatency"
TRANSACTIONS_COMMITTED = "TransactionsCommitted"
CHECKPOINT_LATENCY = "CheckpointLatency"
BAD_ROWS = "BadRows"  # rows committed to the dead-letter topic or dropped (--errors-tolerance all)
OBJECTS_DONE = "ObjectsDone"  # a job over many objects: objects wholly committed

Kind = Literal["counter", "gauge", "statistic"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str
    kind: Kind


# Every metric the processor sends, with its unit and how it is recorded.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(RECORDS_SENT, "Count", "counter"),
    MetricSpec(BYTES_READ, "Bytes", "counter"),
    MetricSpec(PROGRESS_PERCENT, "Percent", "gauge"),
    MetricSpec(ROWS_PER_SECOND, "Count/Second", "gauge"),
    MetricSpec(ETA_SECONDS, "Seconds", "gauge"),
    MetricSpec(RETRIES, "Count", "counter"),
    MetricSpec(ERRORS, "Count", "counter"),
    MetricSpec(COMMIT_LATENCY, "Milliseconds", "statistic"),
    MetricSpec(TRANSACTIONS_COMMITTED, "Count", "counter"),
    MetricSpec(CHECKPOINT_LATENCY, "Milliseconds", "statistic"),
    MetricSpec(BAD_ROWS, "Count", "counter"),
    MetricSpec(OBJECTS_DONE, "Count", "gauge"),
)

# What a planned part also sends under {JobId: the job, Part: its index}.
PER_PART: frozenset[str] = frozenset({PROGRESS_PERCENT})
# What a planned part also sends under {JobId: the job}: what CloudWatch adds up correctly over
# the parts (counters' Sum, statistic sets). Not the gauges: the job's progress, rate and ETA
# are not any one part's.
JOB_TOTALS: frozenset[str] = frozenset(
    spec.name for spec in METRICS if spec.kind in ("counter", "statistic")
)

# CloudWatch's units; anything else makes the whole PutMetricData call fail.
_UNITS = frozenset(
    {
        "Seconds", "Microseconds", "Milliseconds",
        "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
        "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
        "Percent", "Count",
        "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
        "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
        "Gigabits/Second", "Terabits/Second", "Count/Second",
        "None",
    }
)  # fmt: skip


class _Stats:
    """SampleCount, Sum, Minimum and Maximum of the values observed since the last flush."""

    __slots__ = ("count", "maximum", "minimum", "total")

    def __init__(self, value: float) -> None:
        self.count = 1
        self.total = value
        self.minimum = value
        self.maximum = value

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


def _default_client() -> CloudWatchClient:
    # A dead endpoint must cost seconds, not minutes: short timeouts, one retry. Endpoint and
    # region come from the standard AWS configuration. Its own session: boto3's default one is
    # not safe to use from this thread while others create clients.
    config = botocore.config.Config(
        connect_timeout=2,
        read_timeout=3,
        retries={"mode": "standard", "max_attempts": 2},
    )
    return boto3.session.Session().client("cloudwatch", config=config)


class MetricsEmitter:
    """Buffers metrics for one job and sends them to CloudWatch in batches."""

    def __init__(
        self,
        namespace: str,
        job_id: str,
        *,
        interval: float = 60.0,
        client: CloudWatchClient | None = None,
        part_of: tuple[str, int] | None = None,
    ) -> None:
        """``part_of``: (the planned job's id, the part's index) when ``job_id`` is a part's."""
        if interval <= 0:
            raise ValueError(f"metrics interval must be positive, got {interval}")
        self.namespace = namespace
        self.job_id = job_id
        self.interval = interval
        self._client = client
        self._part_dimensions: list[DimensionTypeDef] | None = None
        self._job_dimensions: list[DimensionTypeDef] | None = None
        if part_of is not None:
            self._part_dimensions = [
                {"Name": DIMENSION, "Value": part_of[0]},
                {"Name": PART_DIMENSION, "Value": str(part_of[1])},
            ]
            self._job_dimensions = [{"Name": DIMENSION, "Value": part_of[0]}]
        self._lock = threading.Lock()  # guards the buffers and the counters below
        self._counts: dict[tuple[str, str], float] = {}
        self._gauges: dict[tuple[str, str], float] = {}
        self._stats: dict[tuple[str, str], _Stats] = {}
        self._failures = 0
        self._bad_units: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- recording: cheap, thread-safe ------------------------------------------------------

    def count(self, name: str, value: float = 1.0, unit: str = "Count") -> None:
        """Add ``value`` to ``name``; the sum since the last flush is sent."""
        if self._usable(name, value, unit):
            with self._lock:
                key = (name, unit)
                self._counts[key] = self._counts.get(key, 0.0) + value

    def gauge(self, name: str, value: float, unit: str = "None") -> None:
        """Set ``name`` to ``value``; the last value before a flush is sent."""
        if self._usable(name, value, unit):
            with self._lock:
                self._gauges[(name, unit)] = value

    def observe(self, name: str, value: float, unit: str = "Milliseconds") -> None:
        """Record one sample of ``name``; count, sum, minimum and maximum are sent."""
        if self._usable(name, value, unit):
            with self._lock:
                key = (name, unit)
                stats = self._stats.get(key)
                if stats is None:
                    self._stats[key] = _Stats(value)
                else:
                    stats.add(value)

    @property
    def failures(self) -> int:
        """How many flushes failed (their data was dropped)."""
        with self._lock:
            return self._failures

    # -- sending ----------------------------------------------------------------------------

    def start(self) -> None:
        """Flush every ``interval`` seconds from a daemon thread, until ``close()``."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"metrics-{self.job_id}", daemon=True
            )
        self._thread.start()

    def flush(self) -> None:
        """Send what was recorded since the last flush; never raises."""
        with self._lock:
            counts, self._counts = self._counts, {}
            gauges, self._gauges = self._gauges, {}
            stats, self._stats = self._stats, {}
        if not (counts or gauges or stats):
            return
        datums = self._datums(counts, gauges, stats)
        sent = 0
        try:
            client = self._get_client()
            for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
                chunk = datums[start : start + MAX_DATUMS_PER_CALL]
                client.put_metric_data(Namespace=self.namespace, MetricData=chunk)
                sent += len(chunk)
        except Exception as err:  # noqa: BLE001 (a metrics failure must never stop the copy)
            with self._lock:
                self._failures += 1
            logger.warning(
                "sending metrics to CloudWatch namespace %s failed (%s); dropped %d of %d "
                "data points",
                self.namespace,
                err,
                len(datums) - sent,
                len(datums),
            )
            return
        logger.debug("sent %d data points to CloudWatch namespace %s", sent, self.namespace)

    def close(self) -> None:
        """Stop the thread and send what is left, waiting at most ``CLOSE_TIMEOUT`` seconds."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is None:
            # The final flush runs in a daemon thread too, so that a hung endpoint cannot hold
            # the process past the bound.
            thread = threading.Thread(target=self.flush, name="metrics-final", daemon=True)
            thread.start()
        thread.join(CLOSE_TIMEOUT)
        if thread.is_alive():
            with self._lock:
                self._failures += 1
            logger.warning(
                "the final metrics flush to CloudWatch did not finish within %.0fs; giving up "
                "on it",
                CLOSE_TIMEOUT,
            )

    def __enter__(self) -> MetricsEmitter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
        self.flush()  # the final one, asked for by close()

    def _usable(self, name: str, value: float, unit: str) -> bool:
        """False (logged) for what CloudWatch would refuse and so fail the whole call with."""
        if unit not in _UNITS:
            with self._lock:
                first = (name, unit) not in self._bad_units
                self._bad_units.add((name, unit))
            if first:
                logger.warning("metric %s: %r is not a CloudWatch unit; not sending it", name, unit)
            return False
        if not math.isfinite(value):
            logger.debug(
                "metric %s: skipping %r, CloudWatch takes finite numbers only", name, value
            )
            return False
        return True

    def _get_client(self) -> CloudWatchClient:
        # Created on first use, in the flushing thread, so that a missing region is a counted
        # failure like any other rather than an error at start-up.
        if self._client is None:
            self._client = _default_client()
        return self._client

    def _datums(
        self,
        counts: dict[tuple[str, str], float],
        gauges: dict[tuple[str, str], float],
        stats: dict[tuple[str, str], _Stats],
    ) -> list[MetricDatumTypeDef]:
        now = datetime.now(UTC)
        dimensions: list[DimensionTypeDef] = [{"Name": DIMENSION, "Value": self.job_id}]
        datums: list[MetricDatumTypeDef] = []
        for (name, unit), value in (*counts.items(), *gauges.items()):
            datums.append(
                {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": now,
                    "Value": value,
                    "Unit": cast("StandardUnitType", unit),
                }
            )
            self._also(datums, name)
        for (name, unit), s in stats.items():
            datums.append(
                {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": now,
                    "StatisticValues": {
                        "SampleCount": float(s.count),
                        "Sum": s.total,
                        "Minimum": s.minimum,
                        "Maximum": s.maximum,
                    },
                    "Unit": cast("StandardUnitType", unit),
                }
            )
            self._also(datums, name)
        return datums

    def _also(self, datums: list[MetricDatumTypeDef], name: str) -> None:
        """A part's copies of the last datum under the job's dimension sets."""
        if self._part_dimensions is not None and name in PER_PART:
            datums.append({**datums[-1], "Dimensions": self._part_dimensions})
        if self._job_dimensions is not None and name in JOB_TOTALS:
            datums.append({**datums[-1], "Dimensions": self._job_dimensions})
