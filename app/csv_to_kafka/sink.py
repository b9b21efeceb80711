"""The Kafka side: an ordered transactional producer to partition 0, and reads of what it wrote.

One small interface (``Sink``) with two implementations, confluent-kafka (librdkafka; the
default) and kafka-python. Both:

- create the producer with a ``transactional.id`` derived from the job id and call
  ``init_transactions``: that fences any older instance of the job and aborts a transaction it
  left open, so what is committed afterwards is final;
- write every record to partition 0 explicitly, in the order given;
- read the partition with ``isolation.level=read_committed`` to find the last record of the job
  (``last_committed``) and to stream everything committed (``committed_records``, for verify).

Errors: a fenced producer raises FencedError (another instance owns the job: stop, do not fight);
a commit that fails or times out raises CommitUnknownError; credentials the broker refuses and a
broker certificate the CA bundle does not vouch for raise ConfigError (no retry would mend them,
so they end the run at once); everything else that Kafka reports becomes an
InfrastructureError. The processor re-creates the sink and re-reads the position from
Kafka after any of them except FencedError.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, Protocol, TypeVar

from . import _auth
from .config import Config
from .errors import (
    CommitUnknownError,
    ConfigError,
    FencedError,
    InfrastructureError,
)
from .record import ResumePoint

logger = logging.getLogger(__name__)

__all__ = ["PARTITION", "Sink", "open_sink", "topic_partitions"]

PARTITION = 0
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
SCAN_WINDOW = 5_000
# A keyed job's resume read: partitions read side by side, by at most this many readers.
MAX_READERS = 6
_Reader = TypeVar("_Reader")
_T = TypeVar("_T")
# The resume scan's consumer group: unique per reader (no join, no commits), named so that one IAM
# statement covers every reader (modules/core: group/.../csv-to-kafka-reader-*).
READER_GROUP_PREFIX = "csv-to-kafka-reader-"
_FRAMING_HEADROOM = 64 * 1024
_librdkafka_logger = logging.getLogger("csv_to_kafka.librdkafka")
# A read's consume call: how long it waits for a batch to fill (it returns at once when full).
_CONSUME_SLICE_SECONDS = 0.01
_COMMIT_RETRY_SECONDS = 10.0  # a resumed commit_transaction, or the probe of a fatal error
# How long a new client may take to reach a broker, and the slices it is asked in: between two
# slices librdkafka's error callback is served, which is where a refused login shows.
_CONNECT_SECONDS = 15.0
_CONNECT_SLICE_SECONDS = 1.0
# MSK refuses an IAM login with "Too many connects" when the connection rate is over its quota:
# that refusal passes, so it is retried like any other broker failure.
_THROTTLED = ("too many connects", "throttl")


class Sink(Protocol):
    """What the processor needs from a Kafka client."""

    max_message_bytes: int
    partitions: int  # the topic's, known after ensure_topic (1 before)

    def ensure_topic(self) -> None:
        """Create the topic (``--partitions``, default one) if absent and allowed; refuse a
        multi-partition one without keys, and one whose count is not ``--partitions``. Sets
        ``partitions``."""

    def start(self) -> None:
        """Create the transactional producer and fence older instances of the job."""

    def last_committed(self, job_id: str, hint: int | None) -> ResumePoint | None:
        """The last committed record of ``job_id`` in any partition (the one with the most rows;
        in partition 0 the scan starts at offset ``hint`` if known)."""

    def begin(self) -> None: ...

    def send(
        self,
        values: list[bytes],
        headers: list[tuple[str, bytes]],
        keys: list[bytes] | None = None,
        partitions: list[int] | None = None,
    ) -> None:
        """Queue ``values`` in order; the last one carries ``headers``. With ``keys``, each
        value has that key and goes to that one of ``partitions``; without, to partition 0."""

    def send_dead_letters(
        self, topic: str, records: list[tuple[bytes, list[tuple[str, bytes]]]]
    ) -> None:
        """Queue ``records`` (value, headers) to partition 0 of ``topic``, in the transaction."""

    def commit(self) -> int:
        """Commit the transaction; returns the offset of the last record sent with headers."""

    def abort(self) -> None:
        """Abort the open transaction, if any, as well as possible. Raises only FencedError,
        when the broker's answer is that another instance took over (starting again would
        fence that instance back)."""

    def close(self) -> None:
        """Release the producer and consumers (never raises)."""

    def committed_records(self) -> Iterator[tuple[int, bytes, list[tuple[str, bytes]]]]:
        """Every committed record of the partition, from the first: (offset, value, headers)."""

    def keyed_records(self, partition: int) -> Iterator[tuple[int, bytes | None, bytes]]:
        """Every committed record of ``partition``, from the first: (offset, key, value)."""


def open_sink(config: Config) -> Sink:
    """The sink for ``config.kafka_client``."""
    if config.kafka_client == "kafka-python":
        from ._kafka_python import KafkaPythonSink  # noqa: PLC0415 (optional client)

        return KafkaPythonSink(config)
    return ConfluentSink(config)


# librdkafka's zstd level (its default, -1, is the codec's 3).
ZSTD_LEVEL = 1


def producer_settings(config: Config) -> dict[str, str]:
    """Producer settings in Kafka's own property names, before the user's -X overrides.

    Ordering and exactness come from idempotence (which keeps order with up to 5 requests in
    flight) and transactions; throughput from batching and compression.
    """
    return {
        "bootstrap.servers": config.bootstrap_servers,
        "transactional.id": config.transactional_id,
        "enable.idempotence": "true",
        "acks": "all",
        "max.in.flight.requests.per.connection": "5",
        "compression.type": config.compression,
        "linger.ms": "10",
        "batch.size": str(1024 * 1024),
        "transaction.timeout.ms": "60000",
        "request.timeout.ms": "30000",
    }


def max_message_bytes(config: Config) -> int:
    """The largest record value the copy may send, so the largest row it accepts.

    ``-X message.max.bytes`` (with kafka-python also ``max.request.size``: the smaller wins),
    else DEFAULT_MAX_MESSAGE_BYTES (the broker's own default limit, about 1 MB).
    """
    names = ["message.max.bytes"]
    if config.kafka_client == "kafka-python":
        names.append("max.request.size")
    limits = []
    for name in names:
        value = config.kafka_properties.get(name)
        if value is None:
            continue
        try:
            limits.append(int(value.strip()))
        except ValueError:
            raise ConfigError(f"-X {name}={value!r}: expected a whole number") from None
    return min(limits) if limits else DEFAULT_MAX_MESSAGE_BYTES


def check_topic_name(topic: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    if not topic or len(topic) > 249 or not set(topic) <= allowed or topic in {".", ".."}:
        raise ConfigError(
            f"{topic!r} is not a valid Kafka topic name (1-249 of letters, digits, '.', '_', '-')"
        )


def fenced(what: str, config: Config, outlived_ms: int | None = None) -> FencedError:
    """The error for a producer another instance of the job has fenced: stop, do not fight.

    ``outlived_ms``: the transaction.timeout.ms that the open transaction had outlived when the
    fencing was heard (None: it had not, or none was open). Then the client cannot tell a rival
    from a transaction that the coordinator aborted for its timeout: on Kafka 4 (KIP-890,
    transactions v2) that abort bumps the producer epoch, and the client's next request is
    refused exactly as a rival's init_transactions would have it refused. The message says both.
    """
    message = (
        f"{what}: another instance of job {config.job_id} took over "
        f"(transactional id {config.transactional_id}); this one stops"
    )
    if outlived_ms is not None:
        message += (
            f". Or no other instance runs: the transaction had been open longer than "
            f"transaction.timeout.ms ({outlived_ms} ms: a broker, network or process pause), "
            "and the broker aborted it with a new producer epoch, which the client reports "
            "the same way. If no other instance runs: run the job again (it resumes from "
            "Kafka's last commit), and to ride through such pauses raise -X "
            "transaction.timeout.ms above the longest one (docs/operations.md)"
        )
    return FencedError(message)


def outlived(began: float | None, timeout_ms: int) -> int | None:
    """``timeout_ms`` if a transaction begun at ``began`` (time.monotonic) is older, else None."""
    if began is None or (time.monotonic() - began) * 1000 < timeout_ms:
        return None
    return timeout_ms


def kafka_failure(what: str, err: BaseException, *, unknown: bool) -> InfrastructureError:
    """The error for a Kafka failure that is neither fencing nor a refusal: retryable."""
    if unknown:
        return CommitUnknownError(f"{what}: {err}; the position is read again from Kafka")
    return InfrastructureError(f"{what}: {err}")


def refused(what: str, detail: str) -> ConfigError:
    """The error for a login the broker refused (SASL/SCRAM or IAM): not retryable."""
    return ConfigError(
        f"{what}: the broker refused the credentials ({detail}): check --auth, --sasl-username and "
        "the password, or with --auth iam the AWS credentials, region and clock"
    )


def untrusted(what: str, detail: str) -> ConfigError:
    """The error for a broker certificate that the CA bundle does not vouch for: not retryable."""
    return ConfigError(
        f"{what}: the broker's TLS certificate is not trusted ({detail}): point --ssl-ca-location "
        "at the CA bundle that signed the brokers' certificates (MSK's public ones are trusted "
        "by the system's bundle)"
    )


def login_refusal(what: str, detail: str, *, auth: bool, tls: bool) -> ConfigError | None:
    """``refused``/``untrusted`` for a client error that is one of them, else None.

    ``auth``: the client reported an authentication failure; ``tls``: an SSL failure. Throttled
    logins are left to the retries.
    """
    text = detail.lower()
    if auth and not any(mark in text for mark in _THROTTLED):
        return refused(what, detail)
    if tls and "certificate verify failed" in text:
        return untrusted(what, detail)
    return None


def topic_partitions(config: Config, partitions: int) -> int:
    """An existing topic's partition count, if the job may write to it (else ConfigError)."""
    if config.partitions is not None and partitions != config.partitions:
        raise ConfigError(
            f"topic {config.topic} has {partitions} partitions, not --partitions "
            f"{config.partitions}: a key's partition depends on the count. Use another topic, "
            "or drop --partitions to use the topic's count"
        )
    if config.plan_partitions > 1 or not config.key_columns:
        check_partitions(
            config.topic, partitions, config.allow_multiple_partitions, config.plan_partitions
        )
    return partitions


def created_partitions(config: Config) -> int:
    """The partitions of a topic the job creates."""
    return config.partitions if config.partitions is not None else config.plan_partitions


def last_point(
    last_of_job: Callable[[int, int], ResumePoint | None],
    low: int,
    end: int,
    hint: int | None,
    window: int | None = None,
) -> ResumePoint | None:
    """The job's last point in the committed offsets [low, end) of one partition, read backwards
    in growing windows (``last_of_job(start, end)``: the last point in [start, end)).

    The job's last record is normally near the end: one window of SCAN_WINDOW offsets finds it
    even when Kafka is a whole transaction ahead of the checkpoint (a kill after a commit,
    before the checkpoint's write), where reading forwards from ``hint`` (the checkpoint's
    offset) would read the transaction back, and hold a fetch of it in memory. With ``hint``,
    the windows stop there first; only if [hint, end) holds nothing of the job (a topic
    recreated since) do they go on below it. ``window``: the first window's size (default
    SCAN_WINDOW; see ``first_window``).
    """
    floor = hint if hint is not None and low <= hint < end else low
    found = _last_backwards(last_of_job, floor, end, window)
    if found is None and floor > low:
        found = _last_backwards(last_of_job, low, floor, window)
    return found


def first_window(partitions: int) -> int:
    """The first backward window of each partition when a scan reads ``partitions`` of them:
    SCAN_WINDOW offsets in all, so that the first pass costs about what one partition's does.

    In one partition the job's last record is near the end; across partitions, each
    partition's last record of the job is a few transactions' share of that partition back
    (each transaction ends in one partition), and the windows double until they reach it. With
    SCAN_WINDOW each, bench/keyed_resume.py's 12 partitions read 60,000 records in one pass,
    which kafka-python decodes in Python (docs/performance.md).
    """
    return max(1, SCAN_WINDOW // max(1, partitions))


def _last_backwards(
    last_of_job: Callable[[int, int], ResumePoint | None],
    low: int,
    end: int,
    window: int | None = None,
) -> ResumePoint | None:
    window = SCAN_WINDOW if window is None else window
    while end > low:
        start = max(low, end - window)
        found = last_of_job(start, end)
        if found is not None:
            return found
        end = start
        window *= 2
    return None


def last_of_partitions(points: Iterable[ResumePoint | None]) -> ResumePoint | None:
    """The latest of each partition's last point of a job: the one with the most rows (every
    transaction ends with one record with headers, in one of the partitions)."""
    found = [point for point in points if point is not None]
    return max(found, key=lambda point: point.rows) if found else None


def read_partitions(
    open_reader: Callable[[], _Reader],
    close_reader: Callable[[_Reader], None],
    read: Callable[[_Reader, int], _T],
    partitions: Sequence[int],
    readers: int = MAX_READERS,
) -> list[_T]:
    """``read(reader, partition)`` for each of ``partitions``, side by side: up to ``readers``
    threads, each with a reader of its own (``open_reader``), take the partitions in turn; the
    results in the order of ``partitions``. The first error raised ends the rest (each thread
    stops at its next partition) and is raised here.

    A keyed job's last commit may be in any partition: reading them one after another costs a
    round trip and a fetch each; side by side, the broker serves them together (the clients wait
    without the GIL).
    """
    if not partitions:
        return []
    pending = list(enumerate(partitions))
    lock = threading.Lock()
    results: dict[int, _T] = {}
    failed = threading.Event()

    def work() -> None:
        reader = open_reader()
        try:
            while not failed.is_set():
                with lock:
                    if not pending:
                        return
                    index, partition = pending.pop(0)
                try:
                    results[index] = read(reader, partition)
                except BaseException:
                    failed.set()
                    raise
        finally:
            close_reader(reader)

    count = max(1, min(readers, len(partitions)))
    if count == 1:
        work()
    else:
        with ThreadPoolExecutor(count, thread_name_prefix="partition-reader") as pool:
            futures = [pool.submit(work) for _ in range(count)]
        for future in futures:
            future.result()  # the first error, raised here
    return [results[index] for index in range(len(partitions))]


def check_partitions(topic: str, partitions: int, allow_multiple: bool, needed: int = 1) -> None:
    """Refuse a topic that does not fit: fewer partitions than a plan's parts (``needed``), or
    more than one for a single copy unless allowed."""
    if needed > 1:
        if partitions < needed:
            raise ConfigError(
                f"topic {topic} has {partitions} partitions, but the plan has {needed} parts, "
                f"each written to its own partition: give the topic at least {needed} "
                "partitions (kafka-topics --alter --partitions), or use a new topic, which "
                f"is created with {needed}"
            )
        return
    if partitions > 1 and not allow_multiple:
        raise ConfigError(
            f"topic {topic} has {partitions} partitions; csv-to-kafka writes to partition 0 and "
            "order holds only within one partition. Use a one-partition topic, name a key with "
            "--key-column (each key's records in order in its partition), or pass "
            "--allow-multiple-partitions to write to partition 0 anyway"
        )


class ConfluentSink:
    """The sink on confluent-kafka (librdkafka)."""

    def __init__(self, config: Config) -> None:
        import confluent_kafka  # noqa: PLC0415 (keeps `--help` fast)

        self._ck = confluent_kafka
        self._config = config
        self._topic = config.topic
        self._partition = config.partition  # this job's partition (a plan's part: its index)
        check_topic_name(config.topic)
        security = _auth.confluent_security(config)
        # librdkafka's own log lines go through logging (JSON on CloudWatch), not raw stderr.
        self._common: dict[str, Any] = {
            "bootstrap.servers": config.bootstrap_servers,
            "logger": _librdkafka_logger,
            "error_cb": self._on_error,
            **security,
        }
        props: dict[str, Any] = {
            **producer_settings(config),
            "logger": _librdkafka_logger,
            **security,
        }
        # librdkafka spells the batch size in messages and bytes; give it room to batch.
        props.update(
            {
                "batch.num.messages": "100000",
                "queue.buffering.max.messages": "1000000",
                "queue.buffering.max.kbytes": str(256 * 1024),
            }
        )
        props.update(config.kafka_properties)
        # zstd at level 1, not the codec's default 3: on the benchmark's records, 2% more bytes
        # for 40% less compression CPU (docs/performance.md). -X compression.level=N overrides.
        if props.get("compression.codec", props["compression.type"]) == "zstd":
            props.setdefault("compression.level", str(ZSTD_LEVEL))
        # A record must time out before the transaction that holds it does.
        props.setdefault(
            "message.timeout.ms", str(max(1000, int(props["transaction.timeout.ms"]) - 5000))
        )
        # message.max.bytes is the largest record value we send; librdkafka counts headers and
        # framing against it too, so it gets headroom for those.
        self.max_message_bytes = max_message_bytes(config)
        props["message.max.bytes"] = str(self.max_message_bytes + _FRAMING_HEADROOM)
        self._producer_props = props
        self._timeout = float(int(props["transaction.timeout.ms"]) / 1000)
        self._began: float | None = None  # when the open transaction began (time.monotonic)
        self._producer: Any = None
        self._fatal: Any = None  # the fatal error librdkafka reported, if any
        self._refusal: ConfigError | None = None  # a refused login or untrusted certificate
        self._last_offset = -1
        self._delivery_error: Any = None
        self.partitions = 1
        logger.debug("producer settings: %s", _auth.redact(props))

    # -- topic ------------------------------------------------------------------------------

    def ensure_topic(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # noqa: PLC0415

        admin = self._call(lambda: AdminClient(self._common), "connecting the admin client")
        self._reach(admin, "metadata")
        metadata = self._call(lambda: admin.list_topics(topic=self._topic, timeout=15), "metadata")
        topic = metadata.topics.get(self._topic)
        missing = topic is None or (
            topic.error is not None
            and topic.error.code() == self._ck.KafkaError.UNKNOWN_TOPIC_OR_PART
        )
        if not missing:
            if topic.error is not None:
                raise InfrastructureError(f"topic {self._topic}: {topic.error.str()}")
            self.partitions = topic_partitions(self._config, len(topic.partitions))
            return
        if not self._config.create_topic:
            raise ConfigError(
                f"topic {self._topic} does not exist; create it with one partition, or drop "
                "--no-create-topic to let csv-to-kafka create it"
            )
        count = created_partitions(self._config)
        futures = admin.create_topics(
            [NewTopic(self._topic, num_partitions=count)], operation_timeout=30, request_timeout=30
        )
        try:
            futures[self._topic].result()
            logger.info("created topic %s with %d partition(s)", self._topic, count)
            self.partitions = count
        except self._ck.KafkaException as err:
            if err.args[0].code() != self._ck.KafkaError.TOPIC_ALREADY_EXISTS:
                raise InfrastructureError(f"could not create topic {self._topic}: {err}") from err
            self.ensure_topic()  # created meanwhile: check it as an existing one

    # -- producing --------------------------------------------------------------------------

    def start(self) -> None:
        self.close()
        self._fatal = None
        try:
            self._producer = self._ck.Producer({**self._producer_props, "error_cb": self._on_error})
        except self._ck.KafkaException as err:
            if err.args and err.args[0].code() == self._ck.KafkaError.SASL_AUTHENTICATION_FAILED:
                self._raise(err, "connecting the producer", unknown=False)
            raise ConfigError(f"the Kafka client refused its settings (check -X): {err}") from err
        except (ValueError, TypeError) as err:
            raise ConfigError(f"the Kafka client refused its settings (check -X): {err}") from err
        self._reach(self._producer, "init_transactions")
        self._call(lambda: self._producer.init_transactions(self._timeout), "init_transactions")

    def begin(self) -> None:
        self._last_offset = -1
        self._delivery_error = None
        self._call(self._producer.begin_transaction, "begin_transaction")
        self._began = time.monotonic()

    def _on_error(self, err: Any) -> None:
        """librdkafka's errors outside any call, from every client of the sink.

        A fatal one (such as being fenced) is kept: after it every later call fails with a
        generic code (_STATE, _TIMED_OUT, _FATAL), and the kept error says what really happened.
        A refused login or an untrusted certificate is kept too: librdkafka only logs it and
        reconnects, so the call that waits for the broker would end in a timeout that hides it.
        """
        ck = self._ck.KafkaError
        refusal = login_refusal(
            "connecting to Kafka",
            err.str(),
            auth=err.code() == ck._AUTHENTICATION,
            tls=err.code() in {ck._SSL, ck._TRANSPORT},
        )
        if refusal is not None and self._refusal is None:
            self._refusal = refusal
        if err.fatal():
            self._fatal = err
            logger.warning("the Kafka producer failed for good: %s", err.str())
        else:
            logger.debug("librdkafka error: %s", err)

    def _fatal_cause(self) -> Any:
        """After "operation not valid in this state", the fatal error behind it, if any.

        In the fatal state every transactional call fails with the fatal error itself; the open
        transaction is given up either way (the caller's error aborts it).
        """
        try:
            self._producer.abort_transaction(_COMMIT_RETRY_SECONDS)
        except self._ck.KafkaException as err:
            error = err.args[0] if err.args else None
            if error is not None and error.fatal():
                return error
        return None

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._delivery_error = err
        else:
            self._last_offset = msg.offset()

    def send(
        self,
        values: list[bytes],
        headers: list[tuple[str, bytes]],
        keys: list[bytes] | None = None,
        partitions: list[int] | None = None,
    ) -> None:
        if keys is not None and partitions is not None:
            self._send_keyed(values, headers, keys, partitions)
            return
        producer = self._producer
        produce = producer.produce
        topic = self._topic
        partition = self._partition
        try:
            for value in values[:-1]:
                try:
                    produce(topic, value, None, partition)  # positional: a third faster
                except BufferError:
                    self._wait_for_room(lambda v=value: produce(topic, v, None, partition))
            if values:
                last = values[-1]

                def produce_last() -> None:
                    produce(
                        topic,
                        last,
                        partition=partition,
                        headers=headers,
                        on_delivery=self._on_delivery,
                    )

                try:
                    produce_last()
                except BufferError:
                    self._wait_for_room(produce_last)
            producer.poll(0)
        except self._ck.KafkaException as err:
            self._raise(err, "produce", unknown=False)

    def _send_keyed(
        self,
        values: list[bytes],
        headers: list[tuple[str, bytes]],
        keys: list[bytes],
        partitions: list[int],
    ) -> None:
        """``send`` with a key and an explicit partition per record (keys.Keyer's)."""
        producer = self._producer
        produce = producer.produce
        topic = self._topic
        try:
            for value, key, partition in zip(values[:-1], keys, partitions, strict=False):
                try:
                    produce(topic, value, key, partition)
                except BufferError:
                    self._wait_for_room(lambda v=value, k=key, p=partition: produce(topic, v, k, p))
            if values:

                def produce_last() -> None:
                    produce(
                        topic,
                        values[-1],
                        keys[-1],
                        partitions[-1],
                        headers=headers,
                        on_delivery=self._on_delivery,
                    )

                try:
                    produce_last()
                except BufferError:
                    self._wait_for_room(produce_last)
            producer.poll(0)
        except self._ck.KafkaException as err:
            self._raise(err, "produce", unknown=False)

    def send_dead_letters(
        self, topic: str, records: list[tuple[bytes, list[tuple[str, bytes]]]]
    ) -> None:
        produce = self._producer.produce
        try:
            for value, headers in records:

                def one(value: bytes = value, headers: list[tuple[str, bytes]] = headers) -> None:
                    produce(
                        topic,
                        value,
                        partition=PARTITION,
                        headers=headers,
                        on_delivery=self._on_dead_letter,
                    )

                try:
                    one()
                except BufferError:
                    self._wait_for_room(one)
        except self._ck.KafkaException as err:
            self._raise(err, "produce (dead letters)", unknown=False)

    def _on_dead_letter(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._delivery_error = err

    def _wait_for_room(self, produce: Any) -> None:
        """The local queue is full: serve delivery reports until the record fits."""
        while True:
            self._producer.poll(0.05)
            try:
                produce()
            except BufferError:
                continue
            return

    def commit(self) -> int:
        try:
            self._producer.commit_transaction(self._timeout)
        except self._ck.KafkaException as err:
            error = err.args[0] if err.args else None
            if error is None or error.fatal() or not error.retriable():
                self._raise(err, "commit_transaction", unknown=True)
            # librdkafka: "retry call to resume". The retry also tells a slow broker from a
            # fatal error, e.g. a process stopped past transaction.timeout.ms and fenced meanwhile,
            # whose first call only saw its own deadline pass.
            logger.warning("commit_transaction: %s; resuming the commit", error.str())
            try:
                self._producer.commit_transaction(_COMMIT_RETRY_SECONDS)
            except self._ck.KafkaException as again:
                self._raise(again, "commit_transaction", unknown=True)
        self._began = None
        if self._delivery_error is not None:  # cannot happen after a successful commit
            raise CommitUnknownError(f"a record was not delivered: {self._delivery_error}")
        return self._last_offset

    def abort(self) -> None:
        if self._producer is None:
            return
        try:
            self._producer.abort_transaction(10)
        except self._ck.KafkaException as err:
            error = err.args[0] if err.args else None
            if self._fatal is None and error is not None and error.fatal():
                self._fatal = error
            logger.debug("abort_transaction: %s", err)
        except Exception as err:  # noqa: BLE001 (best effort: init_transactions aborts it anyway)
            logger.debug("abort_transaction: %s", err)
        began, self._began = self._began, None
        if self._fatal is not None and self._fatal.code() in self._fenced_codes():
            raise fenced("abort_transaction", self._config, self._outlived(began))

    def _outlived(self, began: float | None) -> int | None:
        return outlived(began, round(self._timeout * 1000))

    def _fenced_codes(self) -> set[int]:
        ck = self._ck.KafkaError
        return {ck._FENCED, ck.PRODUCER_FENCED, ck.INVALID_PRODUCER_EPOCH}

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.flush(0)
            except Exception as err:  # noqa: BLE001 (the producer is being thrown away)
                logger.debug("closing producer: %s", err)

    def _call(self, fn: Any, what: str) -> Any:
        try:
            return fn()
        except self._ck.KafkaException as err:
            self._raise(err, what, unknown=False)

    def check_login(self) -> None:
        """Reach a broker once: a refused login or an untrusted certificate raises ConfigError
        at once. KafkaPythonSink uses it (see its module docstring)."""
        from confluent_kafka.admin import AdminClient  # noqa: PLC0415

        admin = self._call(lambda: AdminClient(self._common), "connecting to Kafka")
        self._reach(admin, "connecting to Kafka")

    def _reach(self, client: Any, what: str) -> None:
        """Wait until ``client`` gets metadata from a broker, in short slices; a refused login
        or an untrusted certificate ends the wait at once (ConfigError), a broker that stays
        away ends it after _CONNECT_SECONDS (InfrastructureError, retryable).

        Only here, while a client connects, is a refusal final: one reported later, by a client
        that had logged in (a re-authentication, a reconnection), takes the retries' path.
        """
        self._refusal = None
        deadline = time.monotonic() + _CONNECT_SECONDS
        while True:
            try:
                client.list_topics(topic=self._topic, timeout=_CONNECT_SLICE_SECONDS)
            except self._ck.KafkaException as err:
                client.poll(0)  # serves the error callback, which sees why
                if self._refusal is not None:
                    raise self._refusal from err
                if time.monotonic() >= deadline:
                    self._raise(err, what, unknown=False)
            else:
                return

    def _raise(self, err: Any, what: str, *, unknown: bool) -> NoReturn:
        kafka_error = err.args[0] if err.args else None
        ck = self._ck.KafkaError
        if self._producer is not None and self._fatal is None:
            try:
                self._producer.poll(0)  # serves a fatal error librdkafka has not reported yet
            except self._ck.KafkaException as polled:  # poll raises a fatal error itself
                if polled.args and polled.args[0].fatal():
                    self._fatal = polled.args[0]
        if self._fatal is None and kafka_error is not None and kafka_error.code() == ck._STATE:
            self._fatal = self._fatal_cause()
        if self._fatal is not None:  # the cause of whatever this call failed with
            kafka_error = self._fatal
        code = kafka_error.code() if kafka_error is not None else None
        if code in {
            *self._fenced_codes(),
            getattr(ck, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", -9999),
        }:
            if code == getattr(ck, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", -9999):
                raise ConfigError(
                    f"not allowed to use transactional id {self._config.transactional_id}: "
                    "grant kafka-cluster:DescribeTransactionalId and AlterTransactionalId"
                ) from err
            raise fenced(what, self._config, self._outlived(self._began)) from err
        if code in {ck.TOPIC_AUTHORIZATION_FAILED, ck.CLUSTER_AUTHORIZATION_FAILED}:
            raise ConfigError(f"{what}: not authorized: {err}") from err
        if code == ck.SASL_AUTHENTICATION_FAILED and kafka_error is not None:
            # With --auth iam, the token could not be signed (why is in the callback's error).
            signing = getattr(self._common.get("oauth_cb"), "error", None)
            if signing is not None:
                raise signing from err
            refusal = login_refusal(what, kafka_error.str(), auth=True, tls=False)
            if refusal is not None:
                raise refusal from err
        raise kafka_failure(what, err, unknown=unknown) from err

    # -- reading ----------------------------------------------------------------------------

    def _consumer(self) -> Any:
        consumer = self._call(self._new_consumer, "connecting the consumer")
        try:
            self._reach(consumer, "reading the topic")
        except BaseException:
            consumer.close()
            raise
        return consumer

    def _new_consumer(self) -> Any:
        return self._ck.Consumer(
            {
                **self._common,
                "group.id": f"{READER_GROUP_PREFIX}{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.max.bytes": str(64 * 1024 * 1024),
                # At the end of a partition the broker holds a fetch this long: the
                # end-of-partition event that ends a read there waits for it, and so does a new
                # assignment (the resume scan's next window, the next partition). At 50 ms, with
                # consume's 0.1 s, a window of 5,000 records took 0.1 s; its records were there
                # within 15-25 ms.
                "fetch.wait.max.ms": 10,
                # Once 100,000 records wait in the local queue, librdkafka stops fetching for
                # this long (default 1 s): verify, which parses between reads, drained the queue
                # and then waited up to a second, again and again (2M rows: 15.6 s -> 5.1 s).
                "fetch.queue.backoff.ms": 10,
            }
        )

    def _read(
        self, consumer: Any, start: int, end: int, partition: int | None = None
    ) -> Iterator[Any]:
        """Committed records with offsets in [start, end), end being the last stable offset."""
        partition = self._partition if partition is None else partition
        tp = self._ck.TopicPartition(self._topic, partition, start)
        consumer.assign([tp])
        deadline = time.monotonic() + 60
        position = start
        while position < end:
            # consume waits for its whole timeout unless 10,000 messages are there: a range's
            # last messages are handed over after at most _CONSUME_SLICE_SECONDS.
            messages = consumer.consume(num_messages=10_000, timeout=_CONSUME_SLICE_SECONDS)
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == self._ck.KafkaError._PARTITION_EOF:
                        position = max(position, message.offset())
                        if position >= end or message.offset() >= end:
                            return
                        continue
                    raise InfrastructureError(f"reading {self._topic}: {error.str()}")
                deadline = time.monotonic() + 60
                if message.offset() >= end:
                    return
                position = message.offset() + 1
                yield message
            if not messages and time.monotonic() > deadline:
                raise InfrastructureError(
                    f"reading {self._topic}[{partition}] stalled at offset {position} of {end}"
                )

    def _stable_range(self, consumer: Any, partition: int | None = None) -> tuple[int, int]:
        partition = self._partition if partition is None else partition
        tp = self._ck.TopicPartition(self._topic, partition)
        low, high = self._call(lambda: consumer.get_watermark_offsets(tp, timeout=15), "offsets")
        return int(low), int(high)

    def last_committed(self, job_id: str, hint: int | None) -> ResumePoint | None:
        if self._config.key_columns and self.partitions > 1:
            return last_of_partitions(
                read_partitions(
                    self._consumer,
                    _close,
                    lambda consumer, partition: self._last_in(
                        consumer, job_id, None, partition, first_window(self.partitions)
                    ),
                    range(self.partitions),
                )
            )
        consumer = self._consumer()
        try:
            return self._last_in(consumer, job_id, hint, self._partition)
        finally:
            consumer.close()

    def _last_in(
        self,
        consumer: Any,
        job_id: str,
        hint: int | None,
        partition: int,
        window: int | None = None,
    ) -> ResumePoint | None:
        """The job's last point in one partition."""
        low, end = self._stable_range(consumer, partition)
        return last_point(
            lambda start, stop: self._last_of_job(consumer, job_id, start, stop, partition),
            low,
            end,
            hint,
            window,
        )

    def _last_of_job(
        self, consumer: Any, job_id: str, start: int, end: int, partition: int | None = None
    ) -> ResumePoint | None:
        partition = self._partition if partition is None else partition
        found = None
        for message in self._read(consumer, start, end, partition):
            headers = message.headers()
            if headers:
                point = ResumePoint.from_headers(headers, message.offset())
                if point is not None and point.job_id == job_id:
                    found = point
        return found

    def committed_records(self) -> Iterator[tuple[int, bytes, list[tuple[str, bytes]]]]:
        consumer = self._consumer()
        try:
            low, end = self._stable_range(consumer)
            for message in self._read(consumer, low, end):
                yield message.offset(), message.value(), message.headers() or []
        finally:
            consumer.close()

    def keyed_records(self, partition: int) -> Iterator[tuple[int, bytes | None, bytes]]:
        consumer = self._consumer()
        try:
            low, end = self._stable_range(consumer, partition)
            for message in self._read(consumer, low, end, partition):
                yield message.offset(), message.key(), message.value()
        finally:
            consumer.close()


def _close(consumer: Any) -> None:
    consumer.close()
