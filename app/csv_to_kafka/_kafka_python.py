"""The sink on kafka-python (pure Python): the same ``Sink`` as ``sink.ConfluentSink``.

Settings. The producer starts from ``sink.producer_settings`` (Kafka property names), then the
security keywords of ``_auth.kafka_python_security``, then the user's ``-X`` properties; every
dotted name becomes kafka-python's keyword (``linger.ms`` -> ``linger_ms``), and a few Kafka and
librdkafka names that kafka-python spells differently are translated (``message.max.bytes`` ->
``max_request_size``, ``message.timeout.ms`` -> ``delivery_timeout_ms``, ``sasl.username`` ->
``sasl_plain_username``, ``ssl.ca.location`` -> ``ssl_cafile``, ...). Values become the type
kafka-python expects (numbers, booleans, ``acks``, ``compression.type=none`` -> None). A name
that kafka-python's producer does not know is a ConfigError naming it, except librdkafka's queue
and batch sizing knobs (``_IGNORED``), which are ignored with a warning: kafka-python batches by
bytes only and, since 3.0, has no bound on its buffer to set.

kafka-python 3.x differs from librdkafka in ways this module makes up for:

- ``commit_transaction`` and ``abort_transaction`` wait without a bound; the sink drives the same
  transaction manager calls itself and waits at most ``transaction.timeout.ms`` (commit; at
  least ten seconds from the EndTxn, so that a process stopped past its deadline still hears
  that it was fenced) or ten seconds (abort); an abort that hears it was fenced raises
  FencedError;
- on INVALID_PRODUCER_EPOCH from a produce request, which is what a fenced producer gets, it
  bumps its epoch (KIP-360) with an InitProducerId that the coordinator accepts as coming from
  the current producer id: that aborts the open transaction of the instance that took over and
  fences it (seen against Kafka 4.4). The sink turns the bump off on its producer, as the Java
  client never bumps there: these errors end the producer, as FencedError (a stale epoch) or as
  an InfrastructureError or CommitUnknownError (sequence errors), and a new sink starts afresh;
- a batch that fails with a retriable error after its delivery timeout fails alone, without
  making the transaction abortable, so ``commit_transaction`` would commit the rest; and were an
  epoch bump to happen anyway, it would abort the transaction on the broker while
  ``commit_transaction`` reports success. ``commit`` therefore flushes first, checks that every
  producer batch of the transaction was acknowledged (through the future of its first record)
  under the epoch the transaction began with, commits, and checks the epoch again: any doubt is
  a CommitUnknownError, after which the position is read again from Kafka;
- the accumulator has no memory bound (``buffer_memory`` is gone in 3.0), so ``send`` never
  blocks on a full buffer: what is buffered is bounded by what one transaction sends;
- a refused SASL login (SCRAM or IAM) or a broker certificate its CA bundle does not vouch for
  is retried until the bootstrap timeout and then reported as "Unable to bootstrap" only (the
  broker's refusal arrives together with its close, and kafka-python 3.0.12 drops the bytes read
  with the end of the stream). Before its first client on a TLS listener, the sink therefore
  logs in once with librdkafka (``ConfluentSink.check_login``, same Config): a refusal is a
  ConfigError (exit 2) within a second or two instead of exit 4 after ``--retry-seconds``.

``max_message_bytes`` (the largest record value the encoder makes) comes from
``message.max.bytes`` or ``max.request.size`` (default ``sink.DEFAULT_MAX_MESSAGE_BYTES``);
kafka-python's ``max_request_size``, which it checks against each whole record, is raised to
leave room for the record's headers and framing.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import operator
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

import kafka
import kafka.errors as kafka_errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.codec import has_gzip, has_lz4, has_snappy, has_zstd
from kafka.producer.future import FutureRecordMetadata

from . import _auth, _kp_append
from . import sink as _sink
from .config import Config
from .errors import CommitUnknownError, ConfigError, InfrastructureError
from .record import ResumePoint

logger = logging.getLogger(__name__)

__all__ = ["KafkaPythonSink"]

PARTITION = _sink.PARTITION

# Kafka (Java) and librdkafka names whose kafka-python keyword is not the name with "_" for ".".
_ALIASES: Mapping[str, str] = {
    "message.max.bytes": "max_request_size",
    "queue.buffering.max.ms": "linger_ms",
    "message.timeout.ms": "delivery_timeout_ms",
    "request.required.acks": "acks",
    "message.send.max.retries": "retries",
    "compression.codec": "compression_type",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
    "ssl.crl.location": "ssl_crlfile",
    "ssl.cipher.suites": "ssl_ciphers",
    "ssl.endpoint.identification.algorithm": "ssl_check_hostname",
    "socket.send.buffer.bytes": "send_buffer_bytes",
    "socket.receive.buffer.bytes": "receive_buffer_bytes",
}

# librdkafka and Java sizing knobs with no kafka-python counterpart: harmless to ignore, because
# kafka-python batches by bytes (batch.size) and, since 3.0, buffers without a bound.
_IGNORED = frozenset(
    {
        "batch.num.messages",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "buffer.memory",
        "sticky.partitioning.linger.ms",
    }
)

# kafka-python keywords that take Python objects, not strings: not settable with -X.
_OBJECT_SETTINGS = frozenset(
    {
        "key_serializer",
        "value_serializer",
        "partitioner",
        "socket_options",
        "ssl_context",
        "metric_reporters",
        "selector",
        "sasl_oauth_token_provider",
        "sasl_kerberos_name",
        "kafka_client",
    }
)
_INT_SETTINGS_WITHOUT_DEFAULT = frozenset({"receive_buffer_bytes", "send_buffer_bytes"})
_COMPRESSION_LIBRARIES: Mapping[str, tuple[Callable[[], bool], str]] = {
    "gzip": (has_gzip, "the standard library's gzip"),
    "snappy": (has_snappy, "python-snappy or cramjam"),
    "lz4": (has_lz4, "lz4"),
    "zstd": (has_zstd, "zstandard"),
}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

# kafka-python checks the whole record (value, headers, framing) against max_request_size.
_RECORD_HEADROOM_BYTES = 64 * 1024
_CLOSE_TIMEOUT_S = 1.0
_ABORT_TIMEOUT_MS = 10_000
_COMMIT_GRACE_MS = 10_000
_METADATA_TIMEOUT_MS = 15_000
_CREATE_TIMEOUT_MS = 30_000
_READ_STALL_S = 60.0
# A read's poll: poll returns as soon as it has records, else only after its timeout, even when the
# fetch it waited for moved the position (past transaction markers or aborted records, which give
# no records): a range that ends with them waited the whole timeout (it was a second).
_POLL_SLICE_MS = 10
_METADATA_SPACING_MS = 10  # a reader's, see _space_metadata_requests

_FENCED_ERRORS = (kafka_errors.ProducerFencedError, kafka_errors.InvalidProducerEpochError)
_exception_of = operator.attrgetter("exception")
_group = operator.itemgetter(1)
# The batch a record's future belongs to; without that slot (another kafka-python), each record.
_batch_of: Callable[[Any], Any] = (
    operator.attrgetter("_produce_future")
    if "_produce_future" in getattr(FutureRecordMetadata, "__slots__", ())
    else id
)
_is_done = operator.attrgetter("is_done")
_KAFKA_VERSION = getattr(kafka, "__version__", "?")


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"-X {name}={value!r}: expected true or false")


def _int(name: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"-X {name}={value!r}: expected a whole number") from None


def _convert(name: str, key: str, value: Any) -> Any:
    """``value`` (a string from a Kafka property) as kafka-python's keyword ``key`` takes it."""
    if not isinstance(value, str):  # already a kafka-python value (from _auth)
        return value
    default = KafkaProducer.DEFAULT_CONFIG[key]
    if key == "acks":
        lowered = value.strip().lower()
        return "all" if lowered in {"all", "-1"} else _int(name, value)
    if key == "compression_type":
        codec = value.strip().lower()
        if codec in {"", "none"}:
            return None
        if codec not in _COMPRESSION_LIBRARIES:
            raise ConfigError(
                f"{name}={value!r}: kafka-python compresses with "
                f"{', '.join(_COMPRESSION_LIBRARIES)} or none"
            )
        available, library = _COMPRESSION_LIBRARIES[codec]
        if not available():
            raise ConfigError(
                f"compression {codec} needs the Python package {library}, which is not "
                f"installed: install it, or choose another --compression (none, gzip)"
            )
        return codec
    if key == "ssl_check_hostname" and name == "ssl.endpoint.identification.algorithm":
        return value.strip().lower() == "https"
    if key == "api_version":
        try:
            return tuple(int(part) for part in value.strip().split("."))
        except ValueError:
            raise ConfigError(f"-X {name}={value!r}: expected a version like 3.7") from None
    if key == "retries":
        return _int(name, value)
    if isinstance(default, bool):
        return _bool(name, value)
    if isinstance(default, int) or key in _INT_SETTINGS_WITHOUT_DEFAULT:
        return _int(name, value)
    return value


def _translate(props: Mapping[str, Any]) -> dict[str, Any]:
    """Kafka property names and string values -> kafka-python producer keywords and values."""
    settings: dict[str, Any] = {}
    for name, value in props.items():
        if name in _IGNORED:
            logger.warning(
                "-X %s is ignored with --kafka-client kafka-python: it has no such setting "
                "(it batches by batch.size and does not bound its buffer)",
                name,
            )
            continue
        key = _ALIASES.get(name, name.replace(".", "_"))
        if key not in KafkaProducer.DEFAULT_CONFIG:
            raise ConfigError(
                f"-X {name} is not a kafka-python producer setting; drop it, or use "
                "--kafka-client confluent for librdkafka properties"
            )
        if key in _OBJECT_SETTINGS:
            raise ConfigError(f"-X {name} takes a Python object and cannot be set with -X")
        settings[key] = _convert(name, key, value)
    return settings


def _transaction_manager(producer: Any) -> Any:
    """kafka-python's transaction manager, driven directly for bounded waits (see module doc)."""
    return getattr(producer, "_transaction_manager", None)


def _no_epoch_bump() -> bool:
    return False


def _epoch(producer: Any) -> tuple[int, int] | None:
    manager = _transaction_manager(producer)
    pid = getattr(manager, "producer_id_and_epoch", None)
    if pid is None:
        return None
    return int(pid.producer_id), int(pid.epoch)


def _close_producer(producer: Any) -> None:
    """Close within about a second, dropping what is unsent (it belongs to an unfinished
    transaction, which the next ``init_transactions`` or the broker's timeout aborts)."""
    try:
        producer.close(timeout=_CLOSE_TIMEOUT_S)
    except Exception as err:  # noqa: BLE001 (the producer is being thrown away)
        logger.debug("closing producer: %s", err)
        sender = getattr(producer, "_sender", None)
        try:
            # close() gives up before stopping its I/O thread when its flush times out.
            if sender is not None:
                sender.force_close()
                sender.join(_CLOSE_TIMEOUT_S)
            producer.close(timeout=0)
        except Exception as again:  # noqa: BLE001
            logger.debug("force-closing producer: %s", again)


class KafkaPythonSink:
    """The sink on kafka-python 3.x.

    Behaves as ``ConfluentSink``: partition 0, one transaction at a time, read_committed reads.
    ``-X`` names: see the module docstring. Ignored with a warning (librdkafka or Java sizing
    knobs kafka-python has no counterpart for): ``batch.num.messages``,
    ``queue.buffering.max.messages``, ``queue.buffering.max.kbytes``, ``buffer.memory``,
    ``sticky.partitioning.linger.ms``. Any other name kafka-python's producer does not take is a
    ConfigError. As in ConfluentSink, ``-X`` applies to the producer only; the admin client and
    the consumers get the bootstrap servers and the security settings.
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._topic = config.topic
        self._partition = config.partition  # this job's partition (a plan's part: its index)
        _sink.check_topic_name(config.topic)
        security = _auth.kafka_python_security(config)
        self._common: dict[str, Any] = {"bootstrap_servers": config.bootstrap_servers, **security}

        settings = _translate(_sink.producer_settings(config))
        settings.update(security)
        # librdkafka's message.timeout.ms in ConfluentSink: a record gives up before the
        # transaction times out on the broker.
        settings["delivery_timeout_ms"] = 55_000
        settings.update(_translate(config.kafka_properties))

        self.max_message_bytes = _sink.max_message_bytes(config)
        settings["max_request_size"] = max(
            int(settings.get("max_request_size", KafkaProducer.DEFAULT_CONFIG["max_request_size"])),
            self.max_message_bytes + _RECORD_HEADROOM_BYTES,
        )
        self._settings = settings
        self._timeout_ms = int(settings["transaction_timeout_ms"])
        self._began: float | None = None  # when the open transaction began (time.monotonic)
        self._producer: Any = None
        self._futures: list[Any] = []
        self._append: _kp_append.Appender | None = None
        self._appenders: dict[int, _kp_append.Appender] = {}  # keyed: one per partition
        self._last: Any = None
        self._epoch: tuple[int, int] | None = None
        self._login_checked = security["security_protocol"] == "PLAINTEXT"
        self.partitions = 1
        logger.debug("producer settings: %s", _auth.redact(settings))

    # -- topic ------------------------------------------------------------------------------

    def ensure_topic(self) -> None:
        admin = self._client("admin client", lambda: KafkaAdminClient(**self._common))
        try:
            self._ensure_topic(admin)
        finally:
            try:
                admin.close()
            except Exception as err:  # noqa: BLE001 (nothing left to do with it)
                logger.debug("closing admin client: %s", err)

    def _ensure_topic(self, admin: Any) -> None:
        topics = self._call(lambda: admin.describe_topics([self._topic]), "metadata")
        topic = next((t for t in topics if t.get("name") == self._topic), None)
        if topic is not None:
            error = kafka_errors.for_code(topic["error_code"])
            if error is kafka_errors.NoError:
                self.partitions = _sink.topic_partitions(self._config, len(topic["partitions"]))
                return
            if error is not kafka_errors.UnknownTopicOrPartitionError:
                self._raise(error(), f"topic {self._topic}", unknown=False)
        if not self._config.create_topic:
            raise ConfigError(
                f"topic {self._topic} does not exist; create it with one partition, or drop "
                "--no-create-topic to let csv-to-kafka create it"
            )
        count = _sink.created_partitions(self._config)
        try:
            admin.create_topics(
                {self._topic: {"num_partitions": count}}, timeout_ms=_CREATE_TIMEOUT_MS
            )
            logger.info("created topic %s with %d partition(s)", self._topic, count)
            self.partitions = count
        except kafka_errors.TopicAlreadyExistsError:
            self._ensure_topic(admin)  # created meanwhile: check it as an existing one
            return
        except kafka_errors.KafkaError as err:
            if isinstance(err, kafka_errors.AuthorizationError):
                self._raise(err, f"creating topic {self._topic}", unknown=False)
            raise InfrastructureError(f"could not create topic {self._topic}: {err}") from err
        try:
            # The producer would wait for the topic's metadata anyway; this keeps the wait here.
            admin.wait_for_topics([self._topic], timeout_ms=_CREATE_TIMEOUT_MS)
        except kafka_errors.KafkaError as err:
            logger.debug("topic %s not yet in the metadata: %s", self._topic, err)

    # -- producing --------------------------------------------------------------------------

    def start(self) -> None:
        self.close()
        self._producer = self._client("producer", lambda: KafkaProducer(**self._settings))
        manager = _transaction_manager(self._producer)
        if manager is not None and hasattr(manager, "_supports_epoch_bump"):
            # No KIP-360 epoch bump in a transaction (see the module docstring): a fenced
            # producer must stop, not fence its successor back.
            manager._supports_epoch_bump = _no_epoch_bump
        self._call(self._producer.init_transactions, "init_transactions", producer=True)
        partition = TopicPartition(self._topic, self._partition)
        self._append = _kp_append.bulk_appender(self._producer, partition)
        self._appenders = {self._partition: self._append} if self._append is not None else {}
        if self._append is None:
            logger.debug("kafka-python %s: every record goes through send()", _KAFKA_VERSION)

    def begin(self) -> None:
        self._futures = []
        self._last = None
        self._call(self._producer.begin_transaction, "begin_transaction", producer=True)
        self._began = time.monotonic()
        self._epoch = _epoch(self._producer)

    def send(
        self,
        values: list[bytes],
        headers: list[tuple[str, bytes]],
        keys: list[bytes] | None = None,
        partitions: list[int] | None = None,
    ) -> None:
        if not values:
            return
        if keys is not None and partitions is not None:
            self._send_keyed(values, headers, keys, partitions)
            return
        send = self._producer.send
        topic = self._topic
        partition = self._partition
        append = self._append
        futures = self._futures
        try:
            if append is None:
                # Keeps the first future of each producer batch (a batch succeeds or fails as
                # a whole; keeping all of them costs a quarter of the throughput in garbage
                # collection on large transactions). map, groupby and extend run in C: the only
                # Python code per record is kafka-python's send.
                sent = map(functools.partial(send, topic, partition=partition), values[:-1])
                futures.extend(map(next, map(_group, itertools.groupby(sent, key=_batch_of))))
            else:
                # send() opens each producer batch (and does every check) with its first
                # record; the records after it go into that batch directly (_kp_append), and
                # the future of the first stands for the batch.
                index, stop = 0, len(values) - 1
                while index < stop:
                    futures.append(send(topic, values[index], partition=partition))
                    index = append(values, index + 1, stop)
            last = send(topic, values[-1], headers=headers, partition=partition)
        except kafka_errors.KafkaError as err:
            self._raise(err, "send", unknown=False, producer=True)
        futures.append(last)
        self._last = last

    def _send_keyed(
        self,
        values: list[bytes],
        headers: list[tuple[str, bytes]],
        keys: list[bytes],
        partitions: list[int],
    ) -> None:
        """``send`` with a key and an explicit partition per record (keys.Keyer's). The records
        but the last, grouped by partition (in file order in each), go as ``send`` sends plain
        ones: send() opens each producer batch, _kp_append appends the records after it; the
        last, with the headers, goes last, after its partition's others."""
        send = self._producer.send
        topic = self._topic
        futures = self._futures
        last_index = len(values) - 1
        try:
            if self._append is None:  # another kafka-python: every record through send()
                sent = [
                    send(topic, value, key, partition=partition)
                    for value, key, partition in zip(values[:-1], keys, partitions, strict=False)
                ]
                futures.extend(map(next, map(_group, itertools.groupby(sent, key=_batch_of))))
            else:
                # A stable sort: each partition's records stay in file order.
                order = sorted(range(last_index), key=partitions.__getitem__)
                placed = list(map(partitions.__getitem__, order))
                ordered = list(map(values.__getitem__, order))
                ordered_keys = list(map(keys.__getitem__, order))
                index = 0
                while index < last_index:
                    partition = placed[index]
                    stop = bisect.bisect_right(placed, partition, index)
                    append = self._appender(partition)
                    while index < stop:
                        futures.append(
                            send(topic, ordered[index], ordered_keys[index], partition=partition)
                        )
                        index = append(ordered, index + 1, stop, ordered_keys)
            last = send(topic, values[-1], keys[-1], headers=headers, partition=partitions[-1])
        except kafka_errors.KafkaError as err:
            self._raise(err, "send", unknown=False, producer=True)
        futures.append(last)
        self._last = last

    def _appender(self, partition: int) -> _kp_append.Appender:
        append = self._appenders.get(partition)
        if append is None:
            tp = TopicPartition(self._topic, partition)
            made = _kp_append.bulk_appender(self._producer, tp)
            if made is None:  # pragma: no cover (start found the internals it needs)
                raise InfrastructureError("kafka-python's producer changed under the sink")
            append = self._appenders[partition] = made
        return append

    def send_dead_letters(
        self, topic: str, records: list[tuple[bytes, list[tuple[str, bytes]]]]
    ) -> None:
        send = self._producer.send
        try:
            for value, headers in records:
                self._futures.append(send(topic, value, headers=headers, partition=PARTITION))
        except kafka_errors.KafkaError as err:
            self._raise(err, "send (dead letters)", unknown=False, producer=True)

    def commit(self) -> int:
        producer = self._producer
        deadline = time.monotonic() + self._timeout_ms / 1000
        try:
            # Everything must be acknowledged before the commit, so that a lost batch is seen
            # before the transaction is committed without it.
            producer.flush(timeout=self._timeout_ms / 1000)
        except kafka_errors.KafkaError as err:
            self._raise(err, "flush before commit_transaction", unknown=True, producer=True)
        self._check_delivered("commit_transaction")
        # At least a grace period: a process stopped (SIGSTOP, a paused VM) past its deadline
        # still hears the answer to its EndTxn, which may be that it was fenced.
        remaining_ms = max(_COMMIT_GRACE_MS, int((deadline - time.monotonic()) * 1000))
        manager = _transaction_manager(producer)
        finished = True
        try:
            if manager is None:  # not the kafka-python this was written for: unbounded wait
                producer.commit_transaction()
            else:
                result = manager.begin_commit()
                producer._sender.wakeup()  # as commit_transaction does
                finished = result.wait(timeout_ms=remaining_ms)
        except kafka_errors.KafkaError as err:
            self._raise(err, "commit_transaction", unknown=True, producer=True)
        if not finished:
            # Fenced meanwhile (the transaction manager's last error) or unknown.
            self._raise(
                kafka_errors.KafkaTimeoutError(f"no answer within {remaining_ms} ms"),
                "commit_transaction",
                unknown=True,
                producer=True,
            )
        self._check_epoch("commit_transaction")
        self._began = None
        last, self._last = self._last, None
        self._futures = []
        return -1 if last is None else int(last.value.offset)

    def _check_delivered(self, what: str) -> None:
        """Every record sent in the transaction was acknowledged under the transaction's epoch."""
        futures = self._futures
        error = next(filter(None, map(_exception_of, futures)), None)
        if error is not None:
            self._raise(
                error,
                f"{what}: a record of the transaction was not delivered",
                unknown=True,
                producer=True,
            )
        if not all(map(_is_done, futures)):
            raise CommitUnknownError(
                f"{what}: records still in flight after the flush; the position is read again "
                "from Kafka"
            )
        self._check_epoch(what)

    def _check_epoch(self, what: str) -> None:
        epoch = _epoch(self._producer)
        if epoch != self._epoch:
            raise CommitUnknownError(
                f"{what}: the producer's epoch changed from {self._epoch} to {epoch} during the "
                "transaction, which aborts it on the broker; the position is read again from Kafka"
            )

    def abort(self) -> None:
        producer = self._producer
        if producer is None:
            return
        self._futures = []
        self._last = None
        try:
            manager = _transaction_manager(producer)
            if manager is None:
                producer.abort_transaction()
                return
            result = manager.begin_abort()
            producer._sender.wakeup()  # as abort_transaction does
            if not result.wait(timeout_ms=_ABORT_TIMEOUT_MS):
                logger.debug("abort_transaction did not finish in %d ms", _ABORT_TIMEOUT_MS)
        except Exception as err:  # noqa: BLE001 (best effort: init_transactions aborts it anyway)
            logger.debug("abort_transaction: %s", err)
        last_error = getattr(_transaction_manager(producer), "last_error", None)
        began, self._began = self._began, None
        if isinstance(last_error, _FENCED_ERRORS):
            raise _sink.fenced(
                "abort_transaction", self._config, _sink.outlived(began, self._timeout_ms)
            ) from last_error

    def close(self) -> None:
        producer, self._producer = self._producer, None
        self._append = None
        self._appenders = {}
        self._futures = []
        self._last = None
        if producer is not None:
            _close_producer(producer)

    # -- errors -----------------------------------------------------------------------------

    def _client(self, what: str, make: Callable[[], Any]) -> Any:
        if not self._login_checked:
            # kafka-python 3.0.12 retries a refused SASL login or an untrusted certificate until
            # its bootstrap timeout and then reports only "Unable to bootstrap" (it drops the
            # broker's refusal, which arrives with the close): librdkafka, installed anyway,
            # logs in once with the same settings to tell those apart, in a second.
            _sink.ConfluentSink(self._config).check_login()
            self._login_checked = True
        try:
            return make()
        except kafka_errors.KafkaConfigurationError as err:
            raise ConfigError(f"kafka-python {what}: {err}") from err
        except kafka_errors.KafkaError as err:
            self._raise(err, f"connecting the {what}", unknown=False)
        except ValueError as err:  # kafka-python refuses a setting's value this way
            raise ConfigError(f"kafka-python {what}: {err}") from err

    def _call(self, fn: Callable[[], Any], what: str, *, producer: bool = False) -> Any:
        try:
            return fn()
        except kafka_errors.KafkaError as err:
            self._raise(err, what, unknown=False, producer=producer)

    def _raise(
        self, err: BaseException, what: str, *, unknown: bool, producer: bool = False
    ) -> NoReturn:
        # kafka-python often reports a failed producer as a plain KafkaError whose cause is the
        # transaction manager's last error (or one of its args): look at all of them.
        causes = [err, *(arg for arg in err.args if isinstance(arg, BaseException))]
        if producer:
            last_error = getattr(_transaction_manager(self._producer), "last_error", None)
            if isinstance(last_error, BaseException):
                causes.append(last_error)
        if any(isinstance(c, kafka_errors.TransactionalIdAuthorizationFailedError) for c in causes):
            raise ConfigError(
                f"not allowed to use transactional id {self._config.transactional_id}: "
                "grant kafka-cluster:DescribeTransactionalId and AlterTransactionalId"
            ) from err
        if any(isinstance(c, _FENCED_ERRORS) for c in causes):
            outlived_ms = _sink.outlived(self._began, self._timeout_ms)
            raise _sink.fenced(what, self._config, outlived_ms) from err
        denied = next((c for c in causes if isinstance(c, kafka_errors.AuthorizationError)), None)
        if denied is not None:
            raise ConfigError(f"{what}: not authorized: {denied}") from err
        login = next(
            (c for c in causes if isinstance(c, kafka_errors.SaslAuthenticationFailedError)), None
        )
        refusal = _sink.login_refusal(what, str(login), auth=True, tls=False) if login else None
        if refusal is not None:
            raise refusal from err
        raise _sink.kafka_failure(what, err, unknown=unknown) from err

    # -- reading ----------------------------------------------------------------------------

    def _consumer(self) -> Any:
        consumer = self._client(
            "consumer",
            lambda: KafkaConsumer(
                **self._common,
                client_id=f"csv-to-kafka-reader-{uuid.uuid4()}",
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
                auto_offset_reset="earliest",
                allow_auto_create_topics=False,
                fetch_max_bytes=64 * 1024 * 1024,
                max_partition_fetch_bytes=16 * 1024 * 1024,
                fetch_max_wait_ms=10,
            ),
        )
        _space_metadata_requests(consumer)
        return consumer

    def _read(
        self, consumer: Any, start: int, end: int, partition: int | None = None
    ) -> Iterator[Any]:
        """Committed records with offsets in [start, end), end being the last stable offset."""
        partition = self._partition if partition is None else partition
        tp = TopicPartition(self._topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = time.monotonic() + _READ_STALL_S
        position = start
        while position < end:
            batches = self._call(
                lambda: consumer.poll(timeout_ms=_POLL_SLICE_MS, max_records=10_000), "reading"
            )
            for record in batches.get(tp, ()):
                if record.offset >= end:
                    return
                yield record
            # The position also moves past transaction markers and aborted records.
            now = self._call(
                lambda: consumer.position(tp, timeout_ms=_METADATA_TIMEOUT_MS), "reading"
            )
            if now is not None and now > position:
                position = now
                deadline = time.monotonic() + _READ_STALL_S
            elif time.monotonic() > deadline:
                raise InfrastructureError(
                    f"reading {self._topic}[{partition}] stalled at offset {position} of {end}"
                )

    def _stable_range(self, consumer: Any, partition: int | None = None) -> tuple[int, int]:
        """(log start offset, last stable offset): with read_committed, kafka-python's
        end_offsets asks ListOffsets for the last stable offset."""
        partition = self._partition if partition is None else partition
        tp = TopicPartition(self._topic, partition)
        low = self._call(lambda: consumer.beginning_offsets([tp], _METADATA_TIMEOUT_MS), "offsets")
        high = self._call(lambda: consumer.end_offsets([tp], _METADATA_TIMEOUT_MS), "offsets")
        return int(low[tp]), int(high[tp])

    def last_committed(self, job_id: str, hint: int | None) -> ResumePoint | None:
        consumer = self._consumer()
        try:
            if self._config.key_columns and self.partitions > 1:
                return _sink.last_of_partitions(self._last_in_all(consumer, job_id))
            return self._last_in(consumer, job_id, hint, self._partition)
        finally:
            _close_consumer(consumer)

    def _last_in_all(self, consumer: Any, job_id: str) -> list[ResumePoint | None]:
        """The job's last point in each partition, read side by side by one consumer: each
        fetch asks for every partition still scanned (kafka-python is pure Python, so threads
        with a consumer each, as ConfluentSink reads them, only add a bootstrap apiece), in the
        same backward windows as ``_last_in``."""
        tps = [TopicPartition(self._topic, p) for p in range(self.partitions)]
        low = self._call(lambda: consumer.beginning_offsets(tps, _METADATA_TIMEOUT_MS), "offsets")
        ends = self._call(lambda: consumer.end_offsets(tps, _METADATA_TIMEOUT_MS), "offsets")
        found: dict[Any, ResumePoint] = {}
        pending = {tp: int(ends[tp]) for tp in tps if int(ends[tp]) > int(low[tp])}
        window = _sink.first_window(self.partitions)
        while pending:
            ranges = {tp: (max(int(low[tp]), end - window), end) for tp, end in pending.items()}
            points = self._scan_ranges(consumer, job_id, ranges)
            pending = {}
            for tp, (start, _end) in ranges.items():
                if tp in points:
                    found[tp] = points[tp]
                elif start > int(low[tp]):
                    pending[tp] = start
            window *= 2
        return [found.get(tp) for tp in tps]

    def _scan_ranges(
        self, consumer: Any, job_id: str, ranges: Mapping[Any, tuple[int, int]]
    ) -> dict[Any, ResumePoint]:
        """The job's last point in each partition's range [start, end) of committed offsets."""
        consumer.assign(list(ranges))
        # assign keeps the state of a partition it already had: a partition paused at the end
        # of the last window would stay paused.
        consumer.resume(*ranges)
        for tp, (start, _end) in ranges.items():
            consumer.seek(tp, start)
        points: dict[Any, ResumePoint] = {}
        position = {tp: start for tp, (start, _end) in ranges.items()}
        open_ = {tp for tp, (start, end) in ranges.items() if start < end}
        deadline = time.monotonic() + _READ_STALL_S
        while open_:
            batches = self._call(
                lambda: consumer.poll(timeout_ms=_POLL_SLICE_MS, max_records=10_000), "reading"
            )
            for tp, records in batches.items():
                end = ranges[tp][1] if tp in ranges else 0
                for record in records:
                    if record.offset >= end:
                        break
                    headers = record.headers
                    if headers:
                        point = ResumePoint.from_headers(headers, record.offset)
                        if point is not None and point.job_id == job_id:
                            points[tp] = point
            moved = False
            for tp in list(open_):
                # The position also moves past transaction markers and aborted records.
                now = self._call(
                    functools.partial(consumer.position, tp, timeout_ms=_METADATA_TIMEOUT_MS),
                    "reading",
                )
                if now is not None and now > position[tp]:
                    position[tp] = now
                    moved = True
                if position[tp] >= ranges[tp][1]:
                    open_.discard(tp)
                    consumer.pause(tp)
            if moved:
                deadline = time.monotonic() + _READ_STALL_S
            elif time.monotonic() > deadline:
                raise InfrastructureError(
                    f"reading {self._topic} stalled at offsets "
                    f"{ {tp.partition: position[tp] for tp in open_} }"
                )
        return points

    def _last_in(
        self, consumer: Any, job_id: str, hint: int | None, partition: int
    ) -> ResumePoint | None:
        """The job's last point in one partition."""
        low, end = self._stable_range(consumer, partition)
        return _sink.last_point(
            lambda start, stop: self._last_of_job(consumer, job_id, start, stop, partition),
            low,
            end,
            hint,
        )

    def _last_of_job(
        self, consumer: Any, job_id: str, start: int, end: int, partition: int | None = None
    ) -> ResumePoint | None:
        partition = self._partition if partition is None else partition
        found = None
        for record in self._read(consumer, start, end, partition):
            headers = record.headers
            if headers:
                point = ResumePoint.from_headers(headers, record.offset)
                if point is not None and point.job_id == job_id:
                    found = point
        return found

    def committed_records(self) -> Iterator[tuple[int, bytes, list[tuple[str, bytes]]]]:
        consumer = self._consumer()
        try:
            low, end = self._stable_range(consumer)
            for record in self._read(consumer, low, end):
                yield record.offset, record.value, list(record.headers or [])
        finally:
            _close_consumer(consumer)

    def keyed_records(self, partition: int) -> Iterator[tuple[int, bytes | None, bytes]]:
        consumer = self._consumer()
        try:
            low, end = self._stable_range(consumer, partition)
            for record in self._read(consumer, low, end, partition):
                yield record.offset, record.key, record.value
        finally:
            _close_consumer(consumer)


def _space_metadata_requests(client: Any) -> None:
    """Let ``client`` ask for metadata again after _METADATA_SPACING_MS, not 100 ms.

    kafka-python 3.0.12 spaces metadata requests by its cluster's retry_backoff_ms (100 ms, its
    own default: the client's setting does not reach it) and counts the bootstrap's request (for
    no topic) among them, so a new consumer's first request for the topic's partitions waited
    up to 100 ms (the Java client stopped counting the bootstrap in KAFKA-4024). A reader lives
    for one read, so a shorter spacing costs nothing after that. A no-op if the client keeps the
    setting elsewhere.
    """
    config = getattr(getattr(client, "_cluster", None), "config", None)
    if isinstance(config, dict) and "retry_backoff_ms" in config:
        config["retry_backoff_ms"] = _METADATA_SPACING_MS


def _close_consumer(consumer: Any) -> None:
    try:
        consumer.close(autocommit=False)
    except Exception as err:  # noqa: BLE001 (a reader being thrown away)
        logger.debug("closing consumer: %s", err)
