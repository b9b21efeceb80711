"""The S3 CSV reader: streamed bytes -> rows, each with its line number and the byte after it.

Two layers:

- ``S3Object`` pins one version of the object (ETag, VersionId) and streams its bytes from any
  offset with one long ranged GET, re-opened at the current offset after a mid-stream error.
- ``parse_rows`` turns those bytes into batches of rows as Python's csv module reads RFC 4180
  (quoted delimiters, quotes and newlines, CRLF or LF, a last row without a newline). Every batch
  carries the byte offset just after its last row, which is where a resumed run seeks to.

Blank lines are skipped. A row is bad input (BadInputError, exit 3) when its field count differs
from the header's, it is not valid in the encoding, a quote is never closed, or it is larger than
``max_row_bytes``; the rows before it are yielded first, so the caller can commit them.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import dataclasses
import functools
import io
import itertools
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
import botocore.config
import botocore.exceptions

from ._ahead import ahead
from ._retry import RetryPolicy, is_transient_aws, retry_call
from .errors import (
    BadInputError,
    ConfigError,
    EmptyObjectError,
    InfrastructureError,
    ObjectChangedError,
)

try:
    from . import _speedups
except ImportError:  # pragma: no cover (built without a C compiler: the loop runs in Python)
    _speedups = None  # type: ignore[assignment]  # (the fallback)
_encode_block = None if _speedups is None else _speedups.encode_block

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

__all__ = [
    "Header",
    "ObjectInfo",
    "Reject",
    "RowBatch",
    "S3Object",
    "parse_header",
    "parse_rows",
    "split_header",
]

_BOM = codecs.BOM_UTF8
# Blocks of about 512 KiB: a block's rows, values and batches are all alive at once, and they
# stay in the CPU's cache (2 MiB blocks: 36 MB more RSS in the parser process, 3% more CPU).
_READ_SIZE = 512 * 1024
_PIECE_SIZE = 256 * 1024
# S3Object.chunks reads a start up to this far into the object with a GET from byte 0.
_UNRANGED_START_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """The version of the object a job is pinned to."""

    uri: str
    etag: str
    version_id: str | None
    size: int


@dataclass(frozen=True)
class Header:
    names: list[str]
    data_offset: int  # byte where the first data row (or blank line) starts
    data_line: int  # line where it starts


# Row-level errors (a Reject's reason): the row is bad, the parser keeps its place.
FIELD_COUNT = "field-count"
ENCODING = "encoding"
RECORD_TOO_LARGE = "record-too-large"
TYPE = "type"  # a value that does not fit its column's type (typed values)
# Characters that stand for undecodable bytes in text decoded with "surrogateescape".
_ESCAPED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Reject:
    """A bad row as data: it travels with its batch, and the rows after it go on.

    Only a row-level error becomes one; an error that loses the parser's place (a quote never
    closed, a lone CR, a row over the size limit, the header) stays a BadInputError.
    """

    index: int  # the batch's good rows before it
    line: int  # line where the row starts
    offset: int  # byte where the row starts
    next_line: int  # line just after it
    end_offset: int  # byte just after it (its line terminator included)
    reason: str  # FIELD_COUNT, ENCODING, RECORD_TOO_LARGE or TYPE
    message: str
    raw: bytes  # the row's bytes as in the object, without its line terminator

    def error(self, source: str) -> BadInputError:
        """The error the row would have stopped the copy with."""
        return BadInputError(self.message, source=source, line=self.line, byte_offset=self.offset)


def _row_raw(text: str, begin: int, end: int, encoding: str) -> bytes:
    """The bytes of ``text[begin:end]`` (a row) without its line terminator."""
    row = text[begin:end]
    if row.endswith("\n"):
        row = row[:-2] if row.endswith("\r\n") else row[:-1]
    return row.encode(encoding, "surrogateescape")


def _row_begin(text: str, end: int, lines: int) -> int:
    """The character where a row of ``lines`` lines that ends at ``end`` starts."""
    at = end - 1 if text[end - 1 : end] == "\n" else end
    for _ in range(lines - 1):
        at = text.rfind("\n", 0, at)
    return text.rfind("\n", 0, at) + 1


def _type_message(encoder: BatchEncoder) -> str:
    misfit = encoder.misfit
    return (
        f"{misfit} (--schema)"
        if misfit is not None
        else "a field does not fit its column's type (--schema)"
    )


def _encode_tolerant(
    encoder: BatchEncoder,
    rows: list[list[str]],
    lines: list[int],
    rejects: list[Reject],
    raw_row: Callable[[int], tuple[int, int, int, bytes]],
) -> tuple[list[list[str]], list[int], list[bytes], list[Reject]]:
    """The batch's rows, lines and values without the rows whose field does not fit its type
    (--schema, ``tolerate``), which join ``rejects`` as TYPE rows, in order of lines."""
    values = encoder.encode_rows(rows, lines)
    if len(values) == len(rows):
        return rows, lines, values, rejects
    kept_rows, kept_lines = rows[: len(values)], lines[: len(values)]
    misfits: list[Reject] = []
    at = len(values)
    while at < len(rows):
        offset, end, next_line, raw = raw_row(lines[at])
        misfits.append(
            Reject(0, lines[at], offset, next_line, end, TYPE, _type_message(encoder), raw)
        )
        at += 1
        got = encoder.encode_rows(rows[at:], lines[at:])
        values += got
        kept_rows += rows[at : at + len(got)]
        kept_lines += lines[at : at + len(got)]
        at += len(got)
    merged = sorted([*rejects, *misfits], key=lambda reject: reject.line)
    placed = [
        dataclasses.replace(reject, index=bisect.bisect_left(kept_lines, reject.line))
        for reject in merged
    ]
    return kept_rows, kept_lines, values, placed


class BatchEncoder(Protocol):
    """Turns rows into record values (``record.RecordEncoder``)."""

    def encode_rows(self, rows: list[list[str]], lines: list[int]) -> list[bytes]: ...

    line_overhead: int  # a value of encode_lines is at most its line's size plus this
    pieces: tuple[bytes, ...]  # the JSON around the fields, for _speedups.encode_block
    tail: bytes  # the JSON after the line number
    # With --schema: the kinds and null tokens for _speedups.encode_block (None: untyped)
    typed_args: tuple[bytes, tuple[bytes, ...]] | None

    def encode_lines(self, lines: list[bytes], first_line: int) -> list[bytes] | None:
        """Values of plain UTF-8 lines, one row each; None when one has the wrong field count."""
        ...

    @property
    def misfit(self) -> ValueError | None:
        """The field that stopped the last ``encode_rows`` short of its rows (--schema)."""
        ...


class RowBatch:
    """Consecutive rows of one block of the object, with where they start and end."""

    __slots__ = (
        "_locate",
        "_raw_row",
        "end_line",
        "end_offset",
        "lines",
        "max_value",
        "rejects",
        "rows",
        "start_offset",
        "values",
    )

    def __init__(
        self,
        rows: list[list[str]],
        lines: list[int],
        *,
        start_offset: int,
        end_offset: int,
        end_line: int,
        locate: Callable[[int], int],
        values: list[bytes] | None = None,
        max_value: int | None = None,
        rejects: list[Reject] | None = None,
        raw_row: Callable[[int], tuple[int, int, int, bytes]] | None = None,
    ) -> None:
        self.rejects = rejects or []  # bad rows among them (parse_rows' ``tolerate``)
        self._raw_row = raw_row
        self.rows = rows  # the fields of each row; empty when the rows came as values only
        self.values = values  # each row's record value, when parse_rows was given an encoder
        self.max_value = max_value  # if known: no value is larger (spares measuring each)
        self.lines = lines  # 1-based line where each row starts
        self.start_offset = start_offset  # byte where the batch (its first row) starts
        self.end_offset = end_offset  # byte just after the last row
        self.end_line = end_line  # last line consumed; the next row starts on end_line + 1
        self._locate = locate

    @property
    def keeps_text(self) -> bool:
        """Whether ``raw_row`` can read a row again (parse_rows' ``tolerate``)."""
        return self._raw_row is not None

    def raw_row(self, index: int) -> tuple[int, int, int, bytes] | None:
        """Row ``index``'s start and end bytes, the line after it, and its bytes without its
        line terminator (read again on demand: a record too large becomes a dead letter)."""
        return None if self._raw_row is None else self._raw_row(self.lines[index])

    def row_offset(self, index: int) -> int:
        """The byte where row ``index`` starts (found on demand: error messages need it)."""
        return self.start_offset if index == 0 else self._locate(self.lines[index])


def _s3_client() -> S3Client:
    config = botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
    )
    return boto3.client("s3", config=config)


def _is_precondition_failed(err: botocore.exceptions.ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in {"PreconditionFailed", "412"} or status == 412


class S3Object:
    """One S3 object, read as a stream of byte chunks from any offset.

    ``retry`` bounds how long a failing GET (or a stream cut in the middle) is retried before an
    InfrastructureError; ``on_retry`` is told about each retry (for the Retries metric).
    """

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        retry: RetryPolicy,
        client: S3Client | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
        read_size: int = _READ_SIZE,
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.uri = f"s3://{bucket}/{key}"
        self._retry = retry
        self._client = client if client is not None else _s3_client()
        self._on_retry = on_retry
        self._read_size = read_size

    @property
    def client(self) -> S3Client:
        """The boto3 client (a job over many objects lists prefixes with it)."""
        return self._client

    def sibling(self, bucket: str, key: str) -> S3Object:
        """Another object, read with this one's client, retries and reads (a job's next one)."""
        return S3Object(
            bucket,
            key,
            retry=self._retry,
            client=self._client,
            on_retry=self._on_retry,
            read_size=self._read_size,
        )

    def head(self) -> ObjectInfo:
        """The object's current version; a ConfigError when it does not exist or is forbidden."""

        def call() -> Any:
            return self._client.head_object(Bucket=self.bucket, Key=self.key)

        try:
            response = retry_call(
                call, what=f"HEAD {self.uri}", policy=self._retry, on_retry=self._on_retry
            )
        except botocore.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}:
                raise ConfigError(f"{self.uri} does not exist") from err
            if code in {"403", "AccessDenied", "Forbidden"}:
                raise ConfigError(f"access to {self.uri} was denied (s3:GetObject)") from err
            raise InfrastructureError(f"HEAD {self.uri} failed: {err}") from err
        return ObjectInfo(
            uri=self.uri,
            etag=str(response["ETag"]),
            version_id=response.get("VersionId"),
            size=int(response["ContentLength"]),
        )

    def chunks(self, pinned: ObjectInfo, start: int = 0, end: int = -1) -> Iterator[bytes]:
        """The object's bytes from ``start`` to ``end`` (-1: the end), in chunks; the version is
        ``pinned``. With an end, every GET asks only for the bytes before it (a planned part).

        One streamed GET serves the whole read. If the stream breaks, the GET is re-opened at the
        first byte not yet yielded, so the caller sees every byte once. If the object was replaced,
        ObjectChangedError (exit 3) instead of mixing two versions.
        """
        offset = start
        stop = pinned.size if end < 0 else min(end, pinned.size)
        next_sleep = self._retry.backoffs()
        # A start near the beginning (the first data row) is read from byte 0 and the bytes
        # before it dropped: moto serves a ranged GET by copying the whole object first (3 s
        # for 1.5 GB, against 1 s to the first byte of a plain GET); to S3 it is one GET either
        # way. Re-opened after a break, the GET has a Range.
        from_zero = 0 < start <= _UNRANGED_START_BYTES
        while offset < stop:
            pieces: list[bytes] = []
            held = 0  # bytes read from the stream and not yet yielded
            failure: Exception | None = None
            try:
                body = self._open(pinned, offset, from_zero=from_zero, stop=stop)
                while True:
                    # Small reads, gathered into one chunk: when the stream breaks, the bytes
                    # read before the break are kept, so a flaky connection still progresses.
                    piece = body.read(_PIECE_SIZE)
                    if not piece:
                        break
                    pieces.append(piece)
                    held += len(piece)
                    if held >= self._read_size:
                        chunk = b"".join(pieces)
                        pieces, held = [], 0
                        offset += len(chunk)
                        yield chunk
                        next_sleep = self._retry.backoffs()  # progress renews the retry budget
                body.close()
            except ObjectChangedError:
                raise
            except Exception as err:  # noqa: BLE001 (sorted below: transient or not)
                failure = err
            if pieces:
                chunk = b"".join(pieces)
                offset += len(chunk)
                yield chunk
                next_sleep = self._retry.backoffs()
            if failure is None and offset < stop:
                failure = ConnectionError(f"stream ended at byte {offset} of {stop}")
            from_zero = False
            if failure is None:
                continue
            if not is_transient_aws(failure):
                raise InfrastructureError(
                    f"reading {self.uri} at byte {offset}: {failure}"
                ) from failure
            delay = next_sleep()
            if delay is None:
                raise InfrastructureError(
                    f"reading {self.uri} kept failing at byte {offset}: {failure}"
                ) from failure
            if self._on_retry is not None:
                self._on_retry(failure)
            logger.warning(
                "reading %s failed at byte %d (%s); re-opening in %.1fs",
                self.uri,
                offset,
                failure,
                delay,
            )
            threading.Event().wait(delay)

    def _open(
        self, pinned: ObjectInfo, offset: int, *, from_zero: bool = False, stop: int = -1
    ) -> Any:
        """A body that reads the object from ``offset`` (to ``stop``, when before the end): a
        GET with a Range, or, ``from_zero``, a GET from byte 0 whose first ``offset`` bytes the
        body drops."""
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "IfMatch": pinned.etag,
        }
        if offset and not from_zero:
            kwargs["Range"] = f"bytes={offset}-"
        if 0 <= stop < pinned.size:  # a planned part: no byte after its end
            kwargs["Range"] = f"bytes={0 if from_zero else offset}-{stop - 1}"
        if pinned.version_id:
            kwargs["VersionId"] = pinned.version_id
        try:
            body = self._client.get_object(**kwargs)["Body"]
            return _Dropping(body, offset) if offset and from_zero else body
        except botocore.exceptions.ClientError as err:
            if _is_precondition_failed(err):
                raise ObjectChangedError(
                    f"the object changed while the job was running (it was pinned to ETag "
                    f"{pinned.etag}); start a new job id to copy the new version",
                    source=self.uri,
                    byte_offset=offset,
                ) from err
            code = err.response.get("Error", {}).get("Code", "")
            if code in {"NoSuchKey", "NoSuchVersion", "404"}:
                raise ObjectChangedError(
                    "the object was deleted while the job was running", source=self.uri
                ) from err
            raise


class _Dropping:
    """A body whose first ``count`` bytes are dropped."""

    def __init__(self, body: Any, count: int) -> None:
        self._body = body
        self._count = count

    def read(self, size: int) -> bytes:
        while self._count:
            dropped = self._body.read(min(size, self._count))
            if not dropped:
                return b""
            self._count -= len(dropped)
        return self._body.read(size)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._body.close()


def read_ahead(chunks: Iterable[bytes], depth: int = 4) -> Iterator[bytes]:
    """Yield ``chunks`` while a thread fetches the next ones, so S3 I/O overlaps parsing."""
    return ahead(chunks, depth=depth, name="s3-read-ahead")


def _check_encoding(encoding: str) -> str:
    try:
        info = codecs.lookup(encoding)
    except LookupError as err:
        raise ConfigError(f"unknown --encoding {encoding!r}") from err
    # Rows are cut at newline bytes before decoding, so the encoding must spell "\n" as 0x0A and
    # never use that byte inside another character (UTF-16 and UTF-32 do).
    if "\n".encode(info.name) != b"\n" or info.name.startswith(("utf-16", "utf-32")):
        raise ConfigError(
            f"--encoding {encoding} is not ASCII-compatible; use UTF-8 or a single-byte encoding"
        )
    return info.name


def parse_header(
    chunks: Iterable[bytes],
    *,
    source: str,
    delimiter: str = ",",
    quotechar: str = '"',
    encoding: str = "utf-8",
    max_row_bytes: int = 1_000_000,
) -> Header:
    """Read the header row from the start of the object: the column names and where data starts."""
    batches = parse_rows(
        chunks,
        source=source,
        start_offset=0,
        start_line=1,
        expected_fields=None,
        delimiter=delimiter,
        quotechar=quotechar,
        encoding=encoding,
        max_row_bytes=max_row_bytes,
        batch_rows=1,
    )
    first = next(batches, None)
    if first is None:
        raise EmptyObjectError(
            "the object is empty: there is no header row", source=source, line=1, byte_offset=0
        )
    names = first.rows[0]
    line = first.lines[0]
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if name == "":
            raise BadInputError(
                f"header column {position} has an empty name",
                source=source,
                line=line,
                byte_offset=0,
            )
        if name in seen:
            raise BadInputError(
                f"header names column {name!r} twice", source=source, line=line, byte_offset=0
            )
        seen.add(name)
    return Header(names=names, data_offset=first.end_offset, data_line=first.end_line + 1)


def split_header(chunks: Iterable[bytes], **dialect: Any) -> tuple[Header, Iterator[bytes]]:
    """The header row of ``chunks`` (the object from its first byte), and the bytes after it.

    ``dialect`` is parse_header's keywords. One read serves both: the chunks that held the
    header go on from ``data_offset``, then the rest of ``chunks``. (Against moto, a GET costs a
    copy of the whole object before its first byte: a second one for the header was a second of
    a 10M-row run.)
    """
    stream = iter(chunks)
    taken: list[bytes] = []

    def taking() -> Iterator[bytes]:
        for chunk in stream:
            taken.append(chunk)
            yield chunk

    header = parse_header(taking(), **dialect)
    after = b"".join(taken)[header.data_offset :]
    return header, itertools.chain([after] if after else [], stream)


class _Position:
    """Maps lines and character positions in one block of text to byte offsets in the object."""

    __slots__ = (
        "_ascii",
        "_base",
        "_byte",
        "_char",
        "_encoding",
        "_errors",
        "_first_line",
        "_text",
    )

    def __init__(
        self, text: str, base: int, encoding: str, line_before: int, errors: str = "strict"
    ) -> None:
        self._text = text
        self._errors = errors  # "surrogateescape": the text holds undecodable bytes
        self._base = base  # byte offset of text[0]
        self._encoding = encoding
        self._first_line = line_before + 1  # the line text[0] is on
        self._ascii = text.isascii()
        self._char = 0
        self._byte = 0

    def byte_at(self, char: int) -> int:
        """The byte offset of character ``char`` of the text."""
        if self._ascii:
            return self._base + char
        if char < self._char:
            self._char = 0
            self._byte = 0
        self._byte += len(self._text[self._char : char].encode(self._encoding, self._errors))
        self._char = char
        return self._base + self._byte

    def char_of_line(self, line: int) -> int:
        """The character where ``line`` starts (the end of the text if it starts after it)."""
        char = 0
        text = self._text
        for _ in range(line - self._first_line):
            found = text.find("\n", char)
            if found < 0:
                return len(text)
            char = found + 1
        return char

    def line(self, line: int) -> int:
        """The byte offset where ``line`` starts."""
        return self.byte_at(self.char_of_line(line))


def parse_rows(  # noqa: PLR0912, PLR0915 (one loop over blocks keeps the per-row path flat)
    chunks: Iterable[bytes],
    *,
    source: str,
    start_offset: int,
    start_line: int,
    expected_fields: int | None,
    delimiter: str = ",",
    quotechar: str = '"',
    encoding: str = "utf-8",
    max_row_bytes: int = 1_000_000,
    batch_rows: int = 1000,
    encoder: BatchEncoder | None = None,
    tolerate: bool = False,
) -> Iterator[RowBatch]:
    """Batches of at most ``batch_rows`` rows from ``chunks``, the bytes from ``start_offset``.

    ``start_line`` is the line number at ``start_offset``. ``expected_fields`` is the header's
    width (None while reading the header itself). Rows before a bad one are yielded, then the
    BadInputError is raised. A batch never spans two blocks (of about the read size), so the
    per-row work is only to keep the row and its line; byte offsets are found per batch.

    With an ``encoder``, every batch carries the rows' record values instead of their fields,
    and the plain lines of a block (the common case: no quote, escape or control character)
    go from bytes to values without becoming Python strings and lists (``_fast_block``).

    With ``tolerate``, a row with the wrong field count, bytes invalid in the encoding or (a
    typed encoder) a field that does not fit its type is a ``Reject`` in its batch's
    ``rejects`` and the rows after it follow; errors that lose the parser's place still raise.
    """
    encoding = _check_encoding(encoding)
    fast = (
        encoder is not None
        and expected_fields is not None
        and encoding == "utf-8"
        and delimiter.isascii()
        and quotechar.isascii()
        and start_offset > 0  # the data rows, after the header (and any byte order mark)
    )
    unsafe = _JSON_UNSAFE if quotechar == '"' else _JSON_UNSAFE + b'"'
    # split() takes every delimiter out of a plain line, so a delimiter JSON would escape (a
    # tab) does not keep a block from the fast path.
    unsafe = unsafe.replace(delimiter.encode(), b"") if fast else unsafe
    dialect: dict[str, Any] = {"delimiter": delimiter, "quotechar": quotechar, "strict": True}
    # The csv module refuses fields over 128 KiB by default (a process-wide limit); a row is
    # limited by max_row_bytes here instead.
    if csv.field_size_limit() < max_row_bytes:
        csv.field_size_limit(max_row_bytes)
    width = -1 if expected_fields is None else expected_fields

    carry = ""  # the start of a row that the previous block ended inside of
    text_offset = start_offset  # byte offset of the first character of the next text
    line = start_line - 1  # last line consumed
    end_offset = start_offset  # byte after the last row (or blank line) consumed
    error: BadInputError | None = None

    def bad(reason: str, *, at: int | None = None) -> BadInputError:
        return BadInputError(
            reason, source=source, line=line + 1, byte_offset=end_offset if at is None else at
        )

    for raw, final in _blocks(chunks, max_row_bytes):
        if raw is None:
            error = bad(
                f"a row is larger than {max_row_bytes} bytes, the largest Kafka message "
                "allowed (raise message.max.bytes with -X if the broker accepts more)"
            )
            break
        if fast and not carry and not final:
            done = _fast_block(
                raw,
                offset=text_offset,
                line=line,
                width=width,
                delimiter=delimiter.encode(),
                quote=quotechar.encode(),
                unsafe=unsafe,
                dialect=dialect,
                encoder=encoder,  # type: ignore[arg-type]  # fast implies an encoder
                batch_rows=batch_rows,
                tolerate=tolerate,
            )
            if done is not None:
                batches, consumed, line = done
                yield from batches
                end_offset = text_offset = text_offset + consumed
                carry = raw[consumed:].decode(encoding)  # a row that goes on in the next block
                if len(carry) > max_row_bytes:
                    error = bad(
                        f"a row is larger than {max_row_bytes} bytes (is a quote never closed?)"
                    )
                    break
                continue
        block = raw
        if text_offset == 0 and encoding == "utf-8" and block.startswith(_BOM):
            block = block[len(_BOM) :]
            text_offset = end_offset = len(_BOM)
        decode_error: BadInputError | None = None
        escaped = tolerate and _ESCAPED.search(carry) is not None  # bad bytes, kept as data
        try:
            decoded = block.decode(encoding)
        except UnicodeDecodeError as err:
            if tolerate:  # each row that holds such bytes is a Reject
                decoded, escaped = block.decode(encoding, "surrogateescape"), True
            else:
                # Parse the whole lines before the bad byte; the error is raised after them.
                bad_at = text_offset + len(carry.encode(encoding)) + err.start
                decoded = block[: block.rfind(b"\n", 0, err.start) + 1].decode(encoding)
                decode_error = bad(f"the bytes are not valid {encoding} ({err.reason})", at=bad_at)
        text = carry + decoded
        position = _Position(
            text, text_offset, encoding, line, "surrogateescape" if escaped else "strict"
        )
        buffer = io.StringIO(text, newline="\n")
        reader = csv.reader(buffer, **dialect)
        block_line = line
        consumed = -1
        raw_row = (
            functools.partial(_text_row, text, position, dialect, encoding) if tolerate else None
        )
        rows: list[list[str]] = []
        lines: list[int] = []
        keep, mark = rows.append, lines.append

        def _batch(  # noqa: PLR0917 (the batch's parts, named at the two calls' site)
            rows: list[list[str]],
            lines: list[int],
            rejects: list[Reject],
            start: int,
            end: int,
            end_line: int,
            *,
            position: _Position = position,
            raw_row: Callable[[int], tuple[int, int, int, bytes]] | None = raw_row,
        ) -> RowBatch:
            values = None
            if encoder is not None and raw_row is not None and encoder.typed_args is not None:
                rows, lines, values, rejects = _encode_tolerant(
                    encoder, rows, lines, rejects, raw_row
                )
            elif encoder is not None:
                values = encoder.encode_rows(rows, lines)
            return RowBatch(
                rows,
                lines,
                start_offset=start,
                end_offset=end,
                end_line=end_line,
                locate=position.line,
                values=values,
                rejects=rejects,
                raw_row=raw_row,
            )

        rejects: list[Reject] = []
        batch_start = end_offset
        try:
            for row in reader:
                start = line + 1
                line = block_line + reader.line_num
                if len(row) == width and not (escaped and _escaped_row(row)):
                    keep(row)
                    mark(start)
                    if len(rows) == batch_rows:
                        end_offset = position.byte_at(buffer.tell())
                        yield _batch(rows, lines, rejects, batch_start, end_offset, line)
                        rows, lines, rejects = [], [], []
                        keep, mark = rows.append, lines.append
                        batch_start = end_offset
                elif not row:  # a blank line: skipped
                    if not rows and not rejects:
                        batch_start = end_offset = position.byte_at(buffer.tell())
                elif width == -1:  # the header
                    end_offset = position.byte_at(buffer.tell())
                    yield RowBatch(
                        [row],
                        [start],
                        start_offset=batch_start,
                        end_offset=end_offset,
                        end_line=line,
                        locate=position.line,
                    )
                    return
                elif tolerate:  # the row is data for the dead letters; the parser goes on
                    end = buffer.tell()
                    begin = _row_begin(text, end, line - start + 1)
                    counted = len(row) != width
                    rejects.append(
                        Reject(
                            index=len(rows),
                            line=start,
                            offset=position.byte_at(begin),
                            next_line=line + 1,
                            end_offset=position.byte_at(end),
                            reason=FIELD_COUNT if counted else ENCODING,
                            message=(
                                f"row has {len(row)} fields but the header has {expected_fields}"
                                if counted
                                else f"the bytes are not valid {encoding}"
                            ),
                            raw=_row_raw(text, begin, end, encoding),
                        )
                    )
                else:
                    line = start - 1
                    end_offset = position.line(start)
                    error = bad(f"row has {len(row)} fields but the header has {expected_fields}")
                    break
            else:
                consumed = buffer.tell()  # the whole text: no row is cut short
        except csv.Error as err:
            # At the end of a block that is not the last, the block may have ended inside a
            # quoted field: that row is parsed again with the next block. Anywhere else the row
            # really is broken (unless undecodable bytes cut the text short: that error wins).
            at_end = buffer.tell() == len(text)
            if decode_error is None and (final or not at_end):
                end_offset = position.line(line + 1)
                error = bad(_describe_csv_error(err))
        if consumed < 0:  # cut short: everything before line + 1 is consumed, the rest waits
            consumed = position.char_of_line(line + 1)
        end_offset = position.byte_at(consumed)
        if rows or rejects:
            yield _batch(rows, lines, rejects, batch_start, end_offset, line)
        if error is None and decode_error is not None:
            error = bad(decode_error.reason, at=decode_error.byte_offset)
        if error is not None:
            break
        carry = text[consumed:]
        text_offset = end_offset
        if len(carry) > max_row_bytes:
            error = bad(f"a row is larger than {max_row_bytes} bytes (is a quote never closed?)")
            break
        if final and carry:
            error = bad("the last row is incomplete: a quote is never closed")
            break
    if error is not None:
        raise error


def _text_row(
    text: str, position: _Position, dialect: dict[str, Any], encoding: str, line: int
) -> tuple[int, int, int, bytes]:
    """The row at ``line`` of ``text``: its start and end bytes, the line after it, its bytes."""
    begin = position.char_of_line(line)
    buffer = io.StringIO(text[begin:], newline="\n")
    reader = csv.reader(buffer, **dialect)
    next(reader, None)
    end = begin + buffer.tell()
    raw = _row_raw(text, begin, end, encoding)
    return position.byte_at(begin), position.byte_at(end), line + reader.line_num, raw


def _escaped_row(row: list[str]) -> bool:
    """Whether a field holds bytes that were not valid in the encoding."""
    return any(_ESCAPED.search(field) for field in row)


# Bytes that a JSON string must escape (and a backslash), except the newline that ends a line.
_JSON_UNSAFE = bytes(range(0x20)).replace(b"\n", b"") + b"\\"


def _fast_block(  # noqa: PLR0912, PLR0915 (one loop over the block keeps the row path flat)
    block: bytes,
    *,
    offset: int,
    line: int,
    width: int,
    delimiter: bytes,
    quote: bytes,
    unsafe: bytes,
    dialect: dict[str, Any],
    encoder: BatchEncoder,
    batch_rows: int,
    tolerate: bool = False,
) -> tuple[list[RowBatch], int, int] | None:
    """The batches of a block of UTF-8 lines, or None when the general parser must read it.

    ``block`` starts at byte ``offset`` of the object, on line ``line + 1``, at the start of a
    row, and ends just after a newline. Runs of lines without a quote are plain: each line is
    one row, its fields are the bytes between delimiters, and as the block holds no byte that
    JSON escapes, those bytes go into the record value as they are (``encode_lines``). A line
    with a quote starts a row that the csv module reads, as many lines as its quotes span.

    With ``_speedups`` built, one C loop (``encode_block``) does both: the plain lines and the
    quoted rows it is sure of, byte for byte the same values; it leaves any other row to the
    csv module here.

    Anything unusual sends the whole block to the general parser, which finds the error and
    where it is: a byte JSON must escape, a blank line, bytes that are not UTF-8, a line with
    the wrong number of fields, a quoted row the csv module refuses or reads as more than one
    row. Returns the batches, the bytes consumed (all but a row that goes on in the next
    block) and the last line consumed. With ``tolerate`` and the C loop, a plain line with the
    wrong field count is a Reject, and the loop goes on after it (one bad row does not send
    the block to the general parser).
    """
    if not _plain_text(block, unsafe, width):
        return None
    find, rfind, count = block.find, block.rfind, block.count
    encode_lines, encode_rows = encoder.encode_lines, encoder.encode_rows
    size = len(block)
    batches: list[RowBatch] = []
    values: list[bytes] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    pos = batch_start = 0  # where the next row and the open batch start, in the block
    first_line = line
    # No line is longer than the block, so no value of a plain line is longer than this; the
    # values of quoted rows are measured one by one.
    largest = size + encoder.line_overhead

    def locate(wanted: int) -> int:  # error messages only: a scan of the block's lines
        at = 0
        for _ in range(wanted - first_line - 1):
            at = find(b"\n", at) + 1
        return offset + at

    def raw_row(wanted: int) -> tuple[int, int, int, bytes]:  # a record too large: rare
        start = locate(wanted) - offset
        text = block[start:].decode()
        here = _Position(text, 0, "utf-8", 0)
        begin, end, next_line, raw = _text_row(text, here, dialect, "utf-8", 1)
        return offset + start + begin, offset + start + end, wanted + next_line - 1, raw

    def close_batch() -> None:
        nonlocal values, lines, rejects, batch_start
        batches.append(
            RowBatch(
                [],
                lines,
                start_offset=offset + batch_start,
                end_offset=offset + pos,
                end_line=line,
                locate=locate,
                values=values,
                max_value=largest,
                rejects=rejects,
                raw_row=raw_row if tolerate else None,
            )
        )
        values, lines, rejects, batch_start = [], [], [], pos

    def quoted_row() -> bool | None:
        """Read the row at ``pos``, which has a quote, with the csv module, up to the newline
        where its quotes are balanced: True when read, False when it goes on in the next block,
        None when the general parser must read the block."""
        nonlocal pos, line, largest
        end = find(b"\n", pos) + 1
        while count(quote, pos, end) % 2:
            end = find(b"\n", end) + 1
            if end == 0:
                return False
        row = _one_row(block[pos:end].decode(), dialect, width)
        if row is None:
            return None
        encoded = encode_rows([row], [line + 1])
        if not encoded:  # a field that does not fit its type
            if not tolerate:  # the general parser places it
                return None
            rejects.append(
                Reject(
                    index=len(values),
                    line=line + 1,
                    offset=offset + pos,
                    next_line=line + 1 + count(b"\n", pos, end),
                    end_offset=offset + end,
                    reason=TYPE,
                    message=_type_message(encoder),
                    raw=block[pos : end - 1],
                )
            )
            line += count(b"\n", pos, end)
            pos = end
            return True
        value = encoded[0]
        largest = max(largest, len(value))
        values.append(value)
        lines.append(line + 1)
        line += count(b"\n", pos, end)
        pos = end
        if len(values) == batch_rows:
            close_batch()
        return True

    if _encode_block is not None:
        # The loop in C: every row it is sure of; a row it leaves is read here, then on.
        pieces, tail, typed = encoder.pieces, encoder.tail, encoder.typed_args or ()
        while pos < size:
            got, got_lines, pos, line, longest = _encode_block(
                block,
                pos,
                size,
                line,
                batch_rows - len(values),
                delimiter,
                quote,
                pieces,
                tail,
                *typed,
            )
            values += got
            lines += got_lines
            largest = max(largest, longest)
            if len(values) == batch_rows:
                close_batch()
                continue
            if pos == size:
                break
            end = find(b"\n", pos)
            if find(quote, pos, end) < 0:  # a plain line: the wrong field count, or a type
                if not tolerate or end - pos <= 1:  # (a blank line is skipped, not a Reject)
                    return None
                raw = block[pos : end - 1 if block[end - 1 : end] == b"\r" else end]
                fields = raw.count(delimiter) + 1
                if fields == width:  # the C loop left a typed field to Python (--schema)
                    encoded = encode_rows([raw.decode().split(delimiter.decode())], [line + 1])
                    if encoded:  # it fits after all
                        values.append(encoded[0])
                        lines.append(line + 1)
                        largest = max(largest, len(encoded[0]))
                        pos, line = end + 1, line + 1
                        if len(values) == batch_rows:
                            close_batch()
                        continue
                rejects.append(
                    Reject(
                        index=len(values),
                        line=line + 1,
                        offset=offset + pos,
                        next_line=line + 2,
                        end_offset=offset + end + 1,
                        reason=FIELD_COUNT if fields != width else TYPE,
                        message=(
                            f"row has {fields} fields but the header has {width}"
                            if fields != width
                            else _type_message(encoder)
                        ),
                        raw=raw,
                    )
                )
                pos, line = end + 1, line + 1
                continue
            read = quoted_row()  # a quote inside a field, or text after one
            if not read:
                if read is None:
                    return None
                break
    else:
        while pos < size:
            found = find(quote, pos)
            plain_end = size if found < 0 else rfind(b"\n", pos, found) + 1
            if plain_end > pos:
                plain = block[pos : plain_end - 1].split(b"\n")
                taken = 0
                while taken < len(plain):
                    part = plain[taken : taken + batch_rows - len(values)]
                    encoded = encode_lines(part, line + 1)
                    if encoded is None:  # a line with the wrong number of fields
                        return None
                    values += encoded
                    lines += range(line + 1, line + 1 + len(part))
                    line += len(part)
                    pos += sum(map(len, part)) + len(part)
                    taken += len(part)
                    if len(values) == batch_rows:
                        close_batch()
            if found < 0:
                break
            read = quoted_row()
            if not read:
                if read is None:
                    return None
                break
    if values or rejects:
        close_batch()
    return batches, pos, line


def _plain_text(block: bytes, unsafe: bytes, width: int) -> bool:
    """UTF-8 with none of the ``unsafe`` bytes (and, for one column, no blank line)."""
    if len(block.translate(None, unsafe)) != len(block):
        return False
    # A blank line is skipped, not a row. With two columns or more, it cannot pass for one
    # (encode_lines finds one field where the header has more), so only one column looks.
    if width == 1 and (b"\n\n" in block or block.startswith(b"\n")):
        return False
    if block.isascii():
        return True
    try:
        block.decode()
    except UnicodeDecodeError:
        return False
    return True


def _one_row(text: str, dialect: dict[str, Any], width: int) -> list[str] | None:
    """The row ``text`` holds as the csv module reads it; None unless exactly one, and valid."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="\n"), **dialect))
    except csv.Error:
        return None
    if len(rows) != 1 or len(rows[0]) != width:
        return None
    return rows[0]


def _describe_csv_error(err: csv.Error) -> str:
    message = str(err)
    if "unexpected end of data" in message:
        return "the row is incomplete at the end of the object (a quote is never closed)"
    if "new-line character seen in unquoted field" in message:
        return "a carriage return (CR) ends a line inside an unquoted field"
    if "field larger than field limit" in message:
        return (
            f"a field is larger than {csv.field_size_limit()} bytes, the largest Kafka message "
            "allowed (raise message.max.bytes with -X if the broker accepts more)"
        )
    return f"the row is not valid CSV: {message}"


def _blocks(chunks: Iterable[bytes], max_row_bytes: int) -> Iterator[tuple[bytes | None, bool]]:
    """Regroup chunks into blocks that end just after a newline byte; the last one is final.

    Bytes after the last newline wait for the next chunk. If they grow past ``max_row_bytes`` with
    no newline, a None block says so, and a 1 GB line never sits in memory whole.
    """
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            pending += chunk
            if len(pending) > max_row_bytes:
                yield None, True
                return
            continue
        block = pending + chunk[:cut] if pending else chunk[:cut]
        pending = chunk[cut:]
        yield block, False
    yield pending, True
