"""Read, parse and encode in a child process, so that the copying process only produces.

The copy has two halves that each keep a core busy: CSV bytes to record values (the S3 stream,
``parse_rows``, ``RecordEncoder``) and record values to Kafka (``produce``, ``commit``). Under
one GIL they take turns, and the parser sits idle while a commit waits for the broker. In a child
process the parser runs beside the producer and keeps working through the commits.

The child reads the object with its own S3 client, from the position the parent gives it, and
sends back frames on a private pipe (each its size, then its bytes), in order: batches of ready
values with where they end (each after a ``J`` frame of the bad rows among them, if any, with
``tolerate``), retries (for the metric), log records, then ``done`` or the error
that stopped it. A batch travels as one buffer of lines: a head (``B rows last-line next-line
next-byte member member-text stored-byte keyed object``), then one value per line (a JSON value
never holds a raw newline), so the parent splits it with one call; with keys, a last section
holds the partitions, the keys' sizes and the keys end to end (``_keys_section``), so that no key
is a JSON string to decode, one a row, in the parent. Frames carry JSON and bytes, never
pickles. In the parent, a thread reads the frames, so that reading the next batches overlaps the
wait for a commit.

The child ignores SIGINT and SIGTERM (stopping is the parent's decision: it commits first), and
dies with its parent (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the copy leaves nothing behind.
"""

from __future__ import annotations

import base64
import bisect
import ctypes
import dataclasses
import fcntl
import itertools
import json
import logging
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from . import errors
from ._ahead import ahead
from ._retry import RetryPolicy
from .config import Config
from .deadletter import BadRowLimit, limit_error
from .decompress import AUTO, NO_COMPRESSION, Restarts, open_decoded, skip_bytes
from .errors import (
    BadInputError,
    ConfigError,
    CsvToKafkaError,
    EmptyObjectError,
    InfrastructureError,
    TypeMisfitError,
)
from .keys import Keyer
from .record import RecordEncoder
from .schema import read_schema
from .source import (
    RECORD_TOO_LARGE,
    Header,
    ObjectInfo,
    Reject,
    RowBatch,
    S3Object,
    _s3_client,
    parse_header,
    parse_rows,
    read_ahead,
    split_header,
)

# Not __name__: the parser process runs this module as __main__, and its log lines are
# forwarded (and shown at INFO) under the package's name.
logger = logging.getLogger("csv_to_kafka._parse_process")

__all__ = [
    "ParseJob",
    "ParseProcess",
    "ReadyBatch",
    "ready_batches",
    "set_aside",
    "source_object",
]

_BATCH = b"B"
_REJECTS = b"J"  # the bad rows of the next batch, as JSON
_RETRY = b"R"
_LOG = b"L"
_ERROR = b"E"
_DONE = b"D"
_AHEAD = 16  # batches the child may have ready while the parent is busy (3-4 MB each)
_RECEIVED_AHEAD = 2  # batches the parent's reading thread may hold for the copy
_WHOLE_OBJECT_BATCH_ROWS = 1000  # rows per batch when check or verify reads the object
_PR_SET_PDEATHSIG = 1
_M_TRIM_THRESHOLD = -1  # mallopt's parameters
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_FRAME_HEAD = struct.Struct("!Q")  # a frame: its size, then its bytes
_PIPE_SIZE = 4 * 1024 * 1024  # asked of the kernel, which may give less (fs.pipe-max-size)
_U32 = next(code for code in "IL" if array(code).itemsize == 4)  # a native 32-bit unsigned


@dataclass(frozen=True)
class ReadyBatch:
    """Record values ready to send, and where the copy stands after the last of them."""

    values: list[bytes]
    last_line: int  # line where the last row starts
    next_line: int  # line where the next row (or blank line) starts
    next_offset: int  # byte just after the last row (in the decoded text, if compressed)
    # In a compressed object: the compressed offset of the gzip member or zstd frame that holds
    # next_offset, and the decoded offset where it starts (a resumed run decodes from there);
    # -1 for a plain object.
    member_offset: int = -1
    member_text_offset: int = 0
    # How far into the stored object the reader was (progress): next_offset if plain.
    stored_offset: int = -1
    # With --key-column: each value's key and partition (keys.Keyer); None without.
    keys: list[bytes] | None = None
    partitions: list[int] | None = None
    # The bad rows among them (``ParseJob.tolerate``), in order; a batch may hold only these.
    rejects: tuple[Reject, ...] = ()
    object_index: int = 0  # the object's place in the job's list (objects.py)


def ready_batches(
    batches: Iterable[RowBatch],
    encoder: RecordEncoder,
    restarts: Restarts | None = None,
    keyer: Keyer | None = None,
    object_index: int = 0,
    *,
    limit: BadRowLimit | None = None,
) -> Iterator[ReadyBatch]:
    """``batches`` (from ``parse_rows``) as values, up to the first row too large for Kafka.

    Raises that row's BadInputError after yielding the values before it; with ``parse_rows``'
    ``tolerate``, such rows are Rejects instead. ``restarts`` (of a compressed object) gives
    each batch the member or frame that holds its end; ``keyer`` gives each value its key and
    partition. A field that does not fit its type (--schema) stops the stream at its row (with
    ``tolerate``, parse_rows has made such rows TYPE Rejects already).
    ``limit`` (--max-bad-rows) cuts the batch that holds the job's (N+1)th bad row just before
    it, yields the rest, then raises that row's error.
    """
    for batch in batches:
        encoded = (
            batch.values
            if batch.values is not None
            else encoder.encode_rows(batch.rows, batch.lines)
        )
        values, bad = encoder.check(encoded, batch.lines, batch.row_offset, batch.max_value)
        rows = len(encoded)  # fewer than the batch's rows: a field that does not fit (--schema)
        misfit = _misfit(encoder, batch, rows) if rows < len(batch.lines) else None
        batch_rejects = batch.rejects
        stop = len(values)  # the batch's rows before the one that stops the stream
        if bad is not None and batch.keeps_text:  # tolerate: such rows are dead letters
            (values, batch_rejects), bad = set_aside(batch, encoded, encoder), None
            stop = rows
        if bad is None:
            bad = misfit
        whole = bad is None
        rejects = tuple(
            batch_rejects if whole else (r for r in batch_rejects if r.line < batch.lines[stop])
        )
        cut = None
        if limit is not None and rejects:
            cut = limit.over(rejects)
            if cut is not None:  # the job's (N+1)th bad row: the batch ends just before it
                values = values[: cut.index]
                rejects = tuple(r for r in rejects if r.line < cut.line)
                stop = bisect.bisect_left(batch.lines, cut.line)
                bad, whole = limit_error(cut, limit.max_bad_rows, encoder.source), False
        n = len(values)
        if n or rejects:
            if cut is not None:
                next_offset, next_line = cut.offset, cut.line
            elif whole:
                next_offset, next_line = batch.end_offset, batch.end_line + 1
            else:
                next_offset, next_line = batch.row_offset(stop), batch.lines[stop]
            member, member_text, stored = -1, 0, next_offset
            if restarts is not None and restarts.compressed:
                member, member_text = restarts.at(next_offset)
                stored = restarts.stored_at(next_offset)
            keys, partitions = keyer.keys(values) if keyer is not None else (None, None)
            yield ReadyBatch(
                values,
                last_line=max(
                    batch.lines[stop - 1] if stop else 0, rejects[-1].line if rejects else 0
                ),
                next_line=next_line,
                next_offset=next_offset,
                member_offset=member,
                member_text_offset=member_text,
                stored_offset=stored,
                keys=keys,
                partitions=partitions,
                rejects=rejects,
                object_index=object_index,
            )
        if bad is not None:
            raise bad


def _misfit(encoder: RecordEncoder, batch: RowBatch, index: int) -> TypeMisfitError:
    """The error of row ``index`` of ``batch``, whose field ``encoder.misfit`` did not fit."""
    misfit = encoder.misfit
    return TypeMisfitError(
        f"{misfit} (--schema); the rows before it are copied"
        if misfit is not None
        else "a field does not fit its column's type (--schema)",
        line=batch.lines[index],
        byte_offset=batch.row_offset(index),
        source=encoder.source,
        column=misfit.column if misfit is not None else None,
    )


def set_aside(
    batch: RowBatch, encoded: list[bytes], encoder: RecordEncoder
) -> tuple[list[bytes], list[Reject]]:
    """The batch's values without those too large for Kafka, which join its Rejects (each
    Reject's index counts the values kept before it)."""
    limit = encoder.max_bytes
    kept: list[bytes] = []
    rejects: list[Reject] = []
    pending = list(batch.rejects)  # in order; index: the batch's values before each
    for index, value in enumerate(encoded):
        while pending and pending[0].index <= index:
            rejects.append(dataclasses.replace(pending.pop(0), index=len(kept)))
        if len(value) <= limit:
            kept.append(value)
            continue
        found = batch.raw_row(index)
        if found is None:  # pragma: no cover (the caller checked that the batch has its text)
            raise CsvToKafkaError("a batch without its text")
        offset, end, next_line, raw = found
        message = (
            f"the row's record is {len(value)} bytes, larger than {limit}, the largest Kafka "
            "message allowed (raise message.max.bytes with -X if the broker accepts more)"
        )
        line = batch.lines[index]
        rejects.append(
            Reject(len(kept), line, offset, next_line, end, RECORD_TOO_LARGE, message, raw)
        )
    rejects += (dataclasses.replace(r, index=len(kept)) for r in pending)
    return kept, rejects


def source_object(config: Config) -> S3Object:
    """``config.source``, its calls retried within ``--retry-seconds`` (check and verify)."""
    return S3Object(
        config.source.bucket,
        config.source.key,
        retry=RetryPolicy(total_seconds=config.retry_seconds),
    )


@dataclass(frozen=True)
class ParseJob:
    """What the child reads, from where, and how it parses and encodes it."""

    bucket: str
    key: str
    info: ObjectInfo
    retry: RetryPolicy
    start_offset: int  # 0: the start of the object, the header's line
    start_line: int
    delimiter: str
    quotechar: str
    encoding: str
    max_bytes: int  # the largest record value (and row) allowed
    batch_rows: int
    # --input-compression; with a compressed object, start_offset is in the decoded text, and
    # decoding starts at the member or frame at compressed byte member_offset, which starts at
    # member_text_offset of the decoded text (0: from the object's first byte)
    compression: str = AUTO
    member_offset: int = -1  # -1: a plain object (resuming), or from the start
    member_text_offset: int = 0
    # --key-column, --key-separator and the topic's partitions (keys.Keyer); () for no keys
    key_columns: tuple[str, ...] = ()
    key_separator: str = "|"
    partitions: int = 1
    # --schema (a file or s3:// URL, read where the rows are parsed) and --null-value
    schema: str | None = None
    null_values: tuple[str, ...] = ()
    tolerate: bool = False  # bad rows travel as Rejects (--errors-tolerance all)
    # A job over many objects: this object's index in the job's list, the objects after it
    # (read from their first byte, the next one's GET started while this one is parsed), and
    # the job's first object, whose header every object must have (None: this is the first).
    object_index: int = 0
    following: tuple[ObjectInfo, ...] = ()
    first: ObjectInfo | None = None
    columns: tuple[str, ...] = ()  # --no-header: the field names; line 1 is data
    end_offset: int = -1  # a planned part of a plain object: its rows end here (-1: the end)
    # --max-bad-rows under --errors-tolerance all, and the job's bad rows when the run started
    # (-1: no limit here, as for check and verify, which count for themselves)
    max_bad_rows: int = -1
    bad_rows: int = 0

    @classmethod
    def whole_object(cls, config: Config, info: ObjectInfo, max_bytes: int) -> ParseJob:
        """The job of reading all of ``info``'s rows in ``config``'s dialect (check, verify)."""
        return cls(
            bucket=config.source.bucket,
            key=config.source.key,
            info=info,
            retry=RetryPolicy(total_seconds=config.retry_seconds),
            start_offset=0,
            start_line=1,
            delimiter=config.delimiter,
            quotechar=config.quotechar,
            encoding=config.encoding,
            max_bytes=max_bytes,
            batch_rows=_WHOLE_OBJECT_BATCH_ROWS,
            compression=config.input_compression,
            key_columns=config.key_columns,
            key_separator=config.key_separator,
            schema=config.schema,
            null_values=config.null_values,
            tolerate=config.errors_tolerance == "all",
            columns=config.columns,
        )

    def ready_batches(self, s3: S3Object) -> Iterator[ReadyBatch]:
        """This job's batches, read with ``s3``, in this process: this object's from the
        position, then those of ``following`` from their first byte, each header checked
        against the first object's."""
        if not self.following and self.first is None:
            restarts = Restarts(max(self.member_offset, 0), self.member_text_offset)
            header, encoder, batches = self.rows(s3, restarts)
            keyer = self.keyer(header, typed=encoder.typed_args is not None)
            return ready_batches(
                batches, encoder, restarts, keyer, self.object_index, limit=self.bad_row_limit()
            )
        return self._objects_batches(s3)

    def bad_row_limit(self) -> BadRowLimit | None:
        """The job's --max-bad-rows, counted over all the objects this job reads."""
        if not self.tolerate or self.max_bad_rows < 0:
            return None
        return BadRowLimit(self.max_bad_rows, self.bad_rows)

    @staticmethod
    def keyer_for(config: Config, header: Header, partitions: int, source: str) -> Keyer:
        """The keys ``run`` gives ``config``'s records (verify)."""
        return Keyer(
            header.names,
            config.key_columns,
            config.key_separator,
            partitions,
            source=source,
            typed=config.schema is not None,
        )

    def keyer(self, header: Header, *, typed: bool = False) -> Keyer | None:
        """The keys of this job's records (None without --key-column); exit 3 for a key column
        the header does not have."""
        if not self.key_columns:
            return None
        return Keyer(
            header.names,
            self.key_columns,
            self.key_separator,
            self.partitions,
            source=self.info.uri,
            typed=typed,
        )

    def _sequence(self) -> Iterator[ParseJob]:
        yield self
        for step, info in enumerate(self.following, start=1):
            bucket, _, key = info.uri[len("s3://") :].partition("/")
            yield dataclasses.replace(
                self,
                bucket=bucket,
                key=key,
                info=info,
                start_offset=0,
                start_line=1,
                member_offset=-1,
                member_text_offset=0,
                object_index=self.object_index + step,
                following=(),
                first=None,
            )

    def _opened(
        self, s3: S3Object
    ) -> Iterator[tuple[ParseJob, Header, RecordEncoder, Iterator[RowBatch], Restarts]]:
        count = self.object_index + len(self.following) + 1
        for job in self._sequence():
            restarts = Restarts(max(job.member_offset, 0), job.member_text_offset)
            reader = s3 if job is self else s3.sibling(job.bucket, job.key)
            try:
                header, encoder, batches = job.rows(reader, restarts)
            except EmptyObjectError:
                # Nothing once decoded (a gzip of an empty file: Spark's empty partition): no
                # rows, skipped as a zero-byte object is when the prefix is listed.
                logger.info(
                    "object %d of %d, %s, is empty once decoded (%d stored bytes): "
                    "no rows, skipped",
                    job.object_index + 1,
                    count,
                    job.info.uri,
                    job.info.size,
                )
                continue
            yield job, header, encoder, batches, restarts

    def _objects_batches(self, s3: S3Object) -> Iterator[ReadyBatch]:
        # The header every object must have, and the object it was read from (index, URI): the
        # job's first object; when that is empty once decoded, the first object read here
        # (every object between them had that header when the job read it: they are pinned).
        expected: list[str] | None = None
        reference = (0, "")
        if self.first is not None and not self.columns:
            first = self.first
            _codec, decoded = open_decoded(
                s3.sibling(*first.uri[len("s3://") :].split("/", 1)).chunks(first, 0),
                self.compression,
                source=first.uri,
            )
            try:
                expected = parse_header(decoded, **{**self._dialect(), "source": first.uri}).names
                reference = (0, first.uri)
            except EmptyObjectError:
                expected = None  # skipped when it was read: the next object's header rules
        # The next object's GET starts (and its header is read) while this one is parsed.
        opened = ahead(self._opened(s3), depth=1, name="next-object")
        limit = self.bad_row_limit()  # one count over all the objects
        for job, header, encoder, batches, restarts in opened:
            if expected is None:
                expected, reference = header.names, (job.object_index, job.info.uri)
            elif header.names != expected:
                raise BadInputError(
                    f"the header row of object {job.object_index + 1} of the job is "
                    f"{','.join(header.names)!r}, but object {reference[0] + 1} of the job, "
                    f"{reference[1]}, has {','.join(expected)!r}: every object of a job must "
                    "have the same header",
                    source=job.info.uri,
                    line=1,
                    byte_offset=0,
                )
            keyer = job.keyer(header, typed=encoder.typed_args is not None)
            yield from ready_batches(
                batches, encoder, restarts, keyer, job.object_index, limit=limit
            )

    def rows(
        self, s3: S3Object, restarts: Restarts | None = None
    ) -> tuple[Header, RecordEncoder, Iterator[RowBatch]]:
        """The header, its encoder, and this job's rows in batches, read with ``s3``.

        A batch has its rows' values where the fast path made them, else its rows' fields. From
        the start of the object, the header comes from the same GET as the rows; from a later
        offset, it has a GET of its own, whose first bytes also say whether the object is
        compressed (``decompress.open_decoded``). Resuming inside a compressed object, the rows
        are decoded again from the start of the gzip member or zstd frame that holds
        ``start_offset`` (``member_offset``; 0: the object's first byte), and the decoded bytes
        before ``start_offset`` dropped. ``restarts`` learns the members and frames met.
        """
        dialect = self._dialect()
        uri = self.info.uri
        start_offset, start_line = self.start_offset, self.start_line
        if start_offset == 0:
            _codec, decoded = open_decoded(
                s3.chunks(self.info, 0), self.compression, source=uri, restarts=restarts
            )
            header, chunks = self._split_header(read_ahead(decoded), dialect)
            start_offset, start_line = header.data_offset, header.data_line
            return self._parse(header, chunks, start_offset, start_line, dialect)
        # The resume point says whether the job's object is compressed (member_offset >= 0).
        compressed_job = self.member_offset >= 0
        from_start = self.member_offset <= 0  # if compressed: decoding from the first byte
        # The stored bytes from the resume point, read ahead while the header is read: used as
        # they are when the object turns out to be plain, the fast and common case.
        stored = (
            read_ahead(s3.chunks(self.info, start_offset, self.end_offset))
            if self.compression in (AUTO, NO_COMPRESSION) and not compressed_job
            else None
        )
        codec, decoded = open_decoded(
            s3.chunks(self.info, 0),
            self.compression,
            source=uri,
            restarts=restarts if from_start else None,
        )
        if codec == NO_COMPRESSION and stored is not None:
            header = self._header(decoded, dialect)
            return self._parse(header, stored, start_offset, start_line, dialect)
        if stored is not None:
            stored.close()  # type: ignore[attr-defined]  # a generator
        if self.end_offset >= 0:
            raise ConfigError(
                f"{uri} reads as {codec}-compressed: a plan splits only plain objects "
                "(a gzip member or zstd frame cannot be split); copy it with run, without --plan"
            )
        if (codec != NO_COMPRESSION) != compressed_job:
            raise ConfigError(
                f"the job's last commit is at byte {start_offset} of the "
                f"{'decoded text of a compressed' if compressed_job else 'plain'} object, but "
                f"with --input-compression {self.compression} it reads as "
                f"{'plain' if codec == NO_COMPRESSION else codec}: a job must keep its "
                "--input-compression (auto finds the same codec every time)"
            )
        if from_start:
            header, rest = self._split_header(read_ahead(decoded), dialect)
            chunks = skip_bytes(rest, start_offset - header.data_offset)
        else:
            header = self._header(decoded, dialect)
            _codec, rest = open_decoded(
                s3.chunks(self.info, self.member_offset),
                codec,
                source=uri,
                restarts=restarts or Restarts(self.member_offset, self.member_text_offset),
            )
            chunks = skip_bytes(read_ahead(rest), start_offset - self.member_text_offset)
        return self._parse(header, chunks, start_offset, start_line, dialect)

    def _header(self, decoded: Iterator[bytes], dialect: dict[str, Any]) -> Header:
        if self.columns:
            return Header(list(self.columns), data_offset=0, data_line=1)
        return parse_header(decoded, **dialect)

    def _split_header(
        self, decoded: Iterator[bytes], dialect: dict[str, Any]
    ) -> tuple[Header, Iterator[bytes]]:
        if self.columns:
            return Header(list(self.columns), data_offset=0, data_line=1), decoded
        return split_header(decoded, **dialect)

    def _dialect(self) -> dict[str, Any]:
        """The parser's keywords for this job's object (parse_header, split_header, parse_rows)."""
        return {
            "source": self.info.uri,
            "delimiter": self.delimiter,
            "quotechar": self.quotechar,
            "encoding": self.encoding,
            "max_row_bytes": self.max_bytes,
        }

    def fields(self, s3: S3Object) -> tuple[Header, Iterator[RowBatch]]:
        """The header and the rows' fields (no record values), from the object's first byte,
        decoded as ``rows`` decodes it (``infer-schema``)."""
        dialect = self._dialect()
        _codec, decoded = open_decoded(
            s3.chunks(self.info, 0), self.compression, source=self.info.uri
        )
        header, chunks = self._split_header(read_ahead(decoded), dialect)
        batches = parse_rows(
            chunks,
            start_offset=header.data_offset,
            start_line=header.data_line,
            expected_fields=len(header.names),
            batch_rows=self.batch_rows,
            **dialect,
        )
        return header, batches

    def _parse(
        self,
        header: Header,
        chunks: Iterator[bytes],
        start_offset: int,
        start_line: int,
        dialect: dict[str, Any],
    ) -> tuple[Header, RecordEncoder, Iterator[RowBatch]]:
        types = (
            None
            if self.schema is None
            else read_schema(self.schema).bind(header.names, self.null_values)
        )
        encoder = RecordEncoder(
            header.names, self.info.uri, self.max_bytes, self.delimiter, types=types
        )
        batches = parse_rows(
            chunks,
            start_offset=start_offset,
            start_line=start_line,
            expected_fields=len(header.names),
            batch_rows=self.batch_rows,
            encoder=encoder,
            tolerate=self.tolerate,
            **dialect,
        )
        return header, encoder, batches

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ParseJob:
        fields: dict[str, Any] = json.loads(data)
        fields["info"] = ObjectInfo(**fields["info"])
        fields["retry"] = RetryPolicy(**fields["retry"])
        fields["key_columns"] = tuple(fields.get("key_columns", ()))
        fields["null_values"] = tuple(fields.get("null_values", ()))
        fields["following"] = tuple(ObjectInfo(**info) for info in fields.get("following", ()))
        if fields.get("first") is not None:
            fields["first"] = ObjectInfo(**fields["first"])
        fields["columns"] = tuple(fields.get("columns", ()))
        return cls(**fields)


class ParseProcess:
    """The child process, from its start (before the position is known) to its end."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        try:
            # Started before the position is known: its imports overlap the parent's Kafka set-up.
            self._child = subprocess.Popen(  # noqa: S603 (our own module, with our interpreter)
                [sys.executable, "-m", __name__, str(write_end), str(os.getpid())],
                stdin=subprocess.PIPE,
                pass_fds=(write_end,),
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._frames = _FrameReader(read_end)
        _keep_freed_memory(top_pad=False)

    def batches(self, job: ParseJob, on_retry: Callable[[], None]) -> Iterator[ReadyBatch]:
        """Start the child on ``job`` and yield its batches; raise the error that stopped it.

        ``on_retry`` is called (from a thread) for each S3 read the child retries. A thread
        reads and splits the next batches while the caller waits for a commit: reading a frame
        is a third of the copying process's work, and the commit holds no GIL.
        """
        return ahead(self._batches(job, on_retry), depth=_RECEIVED_AHEAD, name="parser-frames")

    def _batches(self, job: ParseJob, on_retry: Callable[[], None]) -> Iterator[ReadyBatch]:
        stdin = self._child.stdin
        if stdin is None:  # pragma: no cover (Popen was given stdin=PIPE)
            raise RuntimeError("the parser process has no stdin")
        try:
            stdin.write(job.to_json())
            stdin.close()
        except OSError as err:
            raise self._lost(err) from err
        frames = self._frames
        rejects: tuple[Reject, ...] = ()
        while True:
            try:
                frame = frames.read()
            except (EOFError, OSError) as err:
                raise self._lost(err) from err
            kind = frame[:1]
            if kind == _BATCH:
                yield _batch_from_frame(frame, rejects)
                rejects = ()
                continue
            body = frame[1:]
            if kind == _REJECTS:
                rejects = _rejects_from_json(body)
            elif kind == _RETRY:
                on_retry()
            elif kind == _LOG:
                record = json.loads(body)
                logging.getLogger(record["name"]).log(record["level"], "%s", record["message"])
            elif kind == _ERROR:
                raise _error_from_json(body)
            else:
                return

    def _lost(self, err: BaseException) -> InfrastructureError:
        try:
            code: int | None = self._child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return InfrastructureError(f"the parser process ended unexpectedly (exit {code}): {err}")

    def close(self) -> None:
        """Stop the child if it is still running and release the pipe."""
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        if self._child.stdin is not None and not self._child.stdin.closed:
            self._child.stdin.close()
        self._frames.close()


def _batch_frame(ready: ReadyBatch) -> bytes:
    """A ``B`` frame: the batch's head, its values a line each, then its keys' section."""
    head = b"B%d %d %d %d %d %d %d %d %d" % (
        len(ready.values),
        ready.last_line,
        ready.next_line,
        ready.next_offset,
        ready.member_offset,
        ready.member_text_offset,
        ready.stored_offset,
        ready.keys is not None,
        ready.object_index,
    )
    lines = [head, *ready.values]
    if ready.keys is not None and ready.partitions is not None:
        lines.append(_keys_section(ready.keys, ready.partitions))
    return b"\n".join(lines)


def _batch_from_frame(frame: bytes, rejects: tuple[Reject, ...]) -> ReadyBatch:
    """The batch of a ``B`` frame (``_batch_frame``), with the bad rows sent before it."""
    # One split, no copy of the buffer: the head is a line of digits before the values.
    values = frame.split(b"\n")
    head = values[0][1:].split(b" ")
    rows, last_line, next_line, next_offset, member, member_text, stored = map(int, head[:7])
    keyed, index = int(head[7]), int(head[8])
    del values[0]
    keys = partitions = None
    if keyed:  # then the keys' section, which may hold newlines: joined back
        keys, partitions = _keys_from_section(b"\n".join(values[rows:]), rows)
        del values[rows:]
    if len(values) != rows:  # pragma: no cover (a value holds no raw newline)
        raise CsvToKafkaError(f"the parser sent {len(values)} values for {rows} rows")
    return ReadyBatch(
        values,
        last_line,
        next_line,
        next_offset,
        member,
        member_text,
        stored,
        keys,
        partitions,
        rejects,
        index,
    )


def _keys_section(keys: list[bytes], partitions: list[int]) -> bytes:
    """A batch's keys and partitions in one buffer: the partitions and the keys' sizes as
    native 32-bit numbers, then the keys end to end (made and read with no Python code a row)."""
    return (
        array(_U32, partitions).tobytes() + array(_U32, map(len, keys)).tobytes() + b"".join(keys)
    )


def _keys_from_section(section: bytes, rows: int) -> tuple[list[bytes], list[int]]:
    """``_keys_section``'s keys and partitions."""
    size = 4 * rows
    partitions = array(_U32, section[:size]).tolist()
    ends = list(itertools.accumulate(array(_U32, section[size : 2 * size])))
    if (
        len(partitions) != rows
        or len(ends) != rows
        or (ends and ends[-1] != len(section) - 2 * size)
    ):
        raise CsvToKafkaError(f"the parser sent a keys section that does not hold {rows} keys")
    blob = section[2 * size :]
    keys = list(map(blob.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    return keys, partitions


def _rejects_to_json(rejects: tuple[Reject, ...]) -> bytes:
    return json.dumps(
        [
            (r.index, r.line, r.offset, r.next_line, r.end_offset, r.reason, r.message, raw)
            for r in rejects
            for raw in [base64.b64encode(r.raw).decode()]
        ]
    ).encode()


def _rejects_from_json(body: bytes) -> tuple[Reject, ...]:
    return tuple(
        Reject(index, line, offset, next_line, end, reason, message, base64.b64decode(raw))
        for index, line, offset, next_line, end, reason, message, raw in json.loads(body)
    )


def _error_to_json(err: BaseException) -> bytes:
    if isinstance(err, BadInputError):
        return json.dumps(
            {
                "type": type(err).__name__,
                "reason": err.reason,
                "line": err.line,
                "byte_offset": err.byte_offset,
                "source": err.source,
                **({"column": err.column} if isinstance(err, TypeMisfitError) else {}),
            }
        ).encode()
    name = type(err).__name__ if isinstance(err, CsvToKafkaError) else "CsvToKafkaError"
    message = str(err) if isinstance(err, CsvToKafkaError) else f"the parser failed: {err!r}"
    return json.dumps({"type": name, "message": message}).encode()


def _error_from_json(body: bytes) -> CsvToKafkaError:
    fields = json.loads(body)
    cls = getattr(errors, fields.pop("type"), None)
    if isinstance(cls, type) and issubclass(cls, TypeMisfitError):
        return cls(
            fields["reason"],
            line=fields["line"],
            byte_offset=fields["byte_offset"],
            source=fields["source"],
            column=fields.get("column"),
        )
    if isinstance(cls, type) and issubclass(cls, BadInputError):
        return cls(
            fields["reason"],
            line=fields["line"],
            byte_offset=fields["byte_offset"],
            source=fields["source"],
        )
    if isinstance(cls, type) and issubclass(cls, CsvToKafkaError):
        return cls(fields["message"])
    return CsvToKafkaError(fields["message"])


class _FrameReader:
    """Reads the child's frames from the pipe, each straight into a buffer of its size."""

    def __init__(self, fd: int) -> None:
        _widen(fd)
        self._pipe = os.fdopen(fd, "rb", buffering=0)

    def read(self) -> bytes:
        """The next frame; EOFError when the child is gone."""
        head = self._exactly(bytearray(_FRAME_HEAD.size))
        (size,) = _FRAME_HEAD.unpack(head)
        return bytes(self._exactly(bytearray(size)))

    def _exactly(self, buffer: bytearray) -> bytearray:
        view = memoryview(buffer)
        done = 0
        while done < len(buffer):
            n = self._pipe.readinto(view[done:])
            if not n:
                raise EOFError(f"the pipe closed {len(buffer) - done} bytes before a frame's end")
            done += n
        return buffer

    def close(self) -> None:
        self._pipe.close()


def _widen(fd: int) -> None:
    """Give the pipe a larger buffer: each 64 KiB (the default) a frame crosses costs both
    processes a wake-up (a 3.6 MB batch is 56 of them)."""
    for size in (_PIPE_SIZE, 1024 * 1024):  # the second: fs.pipe-max-size's default
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
        except (OSError, AttributeError):  # over the limit, or not Linux
            continue
        return


def _keep_freed_memory(*, top_pad: bool) -> None:
    """Keep the memory of one batch for the next, instead of the kernel's fresh pages.

    glibc serves an allocation of a batch's size (a frame is 3-4 MB) with mmap and unmaps it
    when freed, so each frame costs its pages' faults, on both sides of the pipe (half the
    parent's reading time). From the heap, and with 16 MiB free at its top kept, a frame's
    memory is the last one's. In the child, the encoder's short-lived buffers would also make
    glibc return the heap's top to the kernel thousands of times a second (brk and page
    faults: about 10% of its CPU); ``top_pad`` keeps 16 MiB there. At most 16 MiB is kept.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mallopt(_M_MMAP_THRESHOLD, 8 * 1024 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 16 * 1024 * 1024)
        if top_pad:
            libc.mallopt(_M_TOP_PAD, 16 * 1024 * 1024)
    except (OSError, AttributeError):  # pragma: no cover (not Linux with glibc)
        pass


# -- the child --------------------------------------------------------------------------------


class _FrameWriter:
    """Writes frames to the pipe: the size, then the bytes."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, frame: bytes) -> None:
        head = _FRAME_HEAD.pack(len(frame))
        # A small frame goes in one write; a batch is not copied to put 8 bytes before it.
        for piece in [head + frame] if len(frame) < 65536 else [head, frame]:
            view = memoryview(piece)
            while view:
                view = view[os.write(self._fd, view) :]


class _Sender:
    """Writes frames from a thread, so the parser runs up to ``_AHEAD`` batches ahead."""

    def __init__(self, frames: _FrameWriter) -> None:
        self._frames = frames
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_AHEAD)
        self._thread = threading.Thread(target=self._pump, name="frames", daemon=True)
        self._thread.start()

    def send(self, frame: bytes) -> None:
        self._queue.put(frame)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _pump(self) -> None:
        while (frame := self._queue.get()) is not None:
            try:
                self._frames.write(frame)
            except OSError:  # the parent is gone: nothing left to do
                os._exit(1)


class _ForwardLogs(logging.Handler):
    def __init__(self, sender: _Sender) -> None:
        super().__init__()
        self._sender = sender

    def emit(self, record: logging.LogRecord) -> None:
        message = {"level": record.levelno, "name": record.name, "message": record.getMessage()}
        self._sender.send(_LOG + json.dumps(message).encode())


def _linux_setup(parent: int) -> None:
    """Die with the parent; keep freed memory for the next batch."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover (not Linux with glibc)
        pass
    _keep_freed_memory(top_pad=True)
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _child(argv: list[str]) -> None:
    write_end, parent = int(argv[0]), int(argv[1])
    _linux_setup(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sender = _Sender(_FrameWriter(write_end))
    root = logging.getLogger()
    root.handlers[:] = [_ForwardLogs(sender)]
    logging.getLogger("csv_to_kafka").setLevel(logging.INFO)
    try:
        client = _s3_client()  # while the parent sets up Kafka and finds the position
        job = ParseJob.from_json(sys.stdin.buffer.read())
        s3 = S3Object(
            job.bucket,
            job.key,
            retry=job.retry,
            client=client,
            on_retry=lambda _err: sender.send(_RETRY),
        )
        for ready in job.ready_batches(s3):
            if ready.rejects:
                sender.send(_REJECTS + _rejects_to_json(ready.rejects))
            sender.send(_batch_frame(ready))
        sender.send(_DONE)
    except BaseException as err:  # every error goes to the parent, which raises it
        if not isinstance(err, CsvToKafkaError):
            logger.exception("the parser failed")
        sender.send(_ERROR + _error_to_json(err))
    sender.close()


if __name__ == "__main__":
    _child(sys.argv[1:])
