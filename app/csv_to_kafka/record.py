"""The record format: what one CSV row becomes in Kafka, and what resume reads back.

Value: a UTF-8 JSON object mapping each header name to the field's string, then ``_source_line``
(the 1-based line where the row starts; the header is line 1) and ``_source_file``
(``s3://bucket/key``). No key.

Headers: the last record of every batch, and so the last record of every transaction, carries
the position a resumed run continues from (``ResumePoint``). Records in between carry none: a
committed transaction always ends with a batch, so the last committed record of a job always has
them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from .errors import BadInputError
from .schema import FieldTypeError, RowTypes

__all__ = [
    "HEADER_PREFIX",
    "METADATA_FIELDS",
    "RecordEncoder",
    "ResumePoint",
]

HEADER_PREFIX = "csv-to-kafka."
METADATA_FIELDS = ("_source_line", "_source_file")
_FORMAT_VERSION = b"1"


@dataclass(frozen=True)
class ResumePoint:
    """Where the last committed record of a job leaves the copy."""

    job_id: str
    rows: int  # data rows committed so far
    line: int  # line where the last committed row starts
    next_line: int  # line where the next row (or blank line) starts
    byte_offset: int  # byte just after the last committed row
    etag: str
    kafka_offset: int = -1  # offset of that record in the partition
    # A compressed object (byte_offset is then in the decoded text): the compressed offset of
    # the gzip member or zstd frame that holds byte_offset, and the decoded offset where it
    # starts. -1 for a plain object, whose records carry no such headers, as before.
    member_offset: int = -1
    member_text_offset: int = 0
    # Not in the headers: how far into the stored object the reader was (progress, metrics,
    # checkpoint); -1: unknown (read from Kafka), see ``stored_position``.
    stored_offset: int = -1
    bad_rows: int = 0  # bad rows of the job so far (--errors-tolerance all), in all runs
    # A job over many objects (objects.py): the index of the object the point is in, in the
    # job's pinned list (byte_offset, line and etag are that object's). In the headers only
    # from the second object on: 0 is the default, so one-object records are as before.
    object_index: int = 0

    @property
    def stored_position(self) -> int:
        """The stored object's byte this point stands at, for progress: byte_offset in a plain
        object; in a compressed one, as far as the reader had got (after a restart, until the
        first new batch, the start of the member that holds the point)."""
        if self.stored_offset >= 0:
            return self.stored_offset
        return self.byte_offset if self.member_offset < 0 else self.member_offset

    def to_headers(self) -> list[tuple[str, bytes]]:
        headers = [
            (HEADER_PREFIX + "format", _FORMAT_VERSION),
            (HEADER_PREFIX + "job", self.job_id.encode()),
            (HEADER_PREFIX + "rows", b"%d" % self.rows),
            (HEADER_PREFIX + "line", b"%d" % self.line),
            (HEADER_PREFIX + "next-line", b"%d" % self.next_line),
            (HEADER_PREFIX + "offset", b"%d" % self.byte_offset),
            (HEADER_PREFIX + "etag", self.etag.encode()),
        ]
        if self.member_offset >= 0:
            headers += [
                (HEADER_PREFIX + "member-offset", b"%d" % self.member_offset),
                (HEADER_PREFIX + "member-text-offset", b"%d" % self.member_text_offset),
            ]
        if self.bad_rows:
            headers.append((HEADER_PREFIX + "bad-rows", b"%d" % self.bad_rows))
        if self.object_index > 0:
            headers.append((HEADER_PREFIX + "object", b"%d" % self.object_index))
        return headers

    @classmethod
    def from_headers(
        cls, headers: Sequence[tuple[str, bytes | None]] | None, kafka_offset: int
    ) -> ResumePoint | None:
        """The point in ``headers``, or None when they are not csv-to-kafka's."""
        if not headers:
            return None
        found = {
            name[len(HEADER_PREFIX) :]: (value or b"").decode("utf-8", "replace")
            for name, value in headers
            if name.startswith(HEADER_PREFIX)
        }
        try:
            return cls(
                job_id=found["job"],
                rows=int(found["rows"]),
                line=int(found["line"]),
                next_line=int(found["next-line"]),
                # a dead letter's own offset is its row's; its position's is next-offset
                byte_offset=int(found.get("next-offset", found["offset"])),
                etag=found["etag"],
                kafka_offset=kafka_offset,
                member_offset=int(found.get("member-offset", -1)),
                member_text_offset=int(found.get("member-text-offset", 0)),
                bad_rows=int(found.get("bad-rows", 0)),
                object_index=int(found.get("object", 0)),
            )
        except (KeyError, ValueError):
            return None


class RecordEncoder:
    """Turns rows into record values for one source object and header."""

    def __init__(
        self,
        header: Sequence[str],
        source: str,
        max_bytes: int,
        delimiter: str = ",",
        types: RowTypes | None = None,
    ) -> None:
        clash = [name for name in header if name in METADATA_FIELDS]
        if clash:
            raise BadInputError(
                f"header column {clash[0]!r} has the name of a field csv-to-kafka adds",
                source=source,
                line=1,
                byte_offset=0,
            )
        self._header = tuple(header)
        self._source = self.source = source
        self._max_bytes = max_bytes
        self.max_bytes = max_bytes  # the largest record value Kafka takes
        self._delimiter = delimiter.encode()
        self.encode_rows = _compile_encoder(self._header, source)
        self._template = _line_template(self._header, source)
        self.pieces, self.tail = _pieces(self._header, source)
        # encode_lines's value is its line's bytes plus at most this many (keys, line number).
        self.line_overhead = len(self._template) - 2 * len(self._header) - 2 + 20
        # --schema: typed values (schema.RowTypes). The C loop gets the kinds and null tokens;
        # the Python path writes the same bytes; a field that does not fit stops the batch
        # before its row and is kept in ``misfit`` (ready_batches raises it, placed).
        self.typed_args: tuple[bytes, tuple[bytes, ...]] | None = None
        self.misfit: FieldTypeError | None = None
        if types is not None and types.typed:
            self._types = types
            self.pieces, self.tail = typed_pieces(self._header, source)
            self.typed_args = (
                types.kinds,
                tuple(token.encode() for token in sorted(types.null_values)),
            )
            self.encode_rows = self._encode_typed
            self.encode_lines = self._no_lines  # type: ignore[method-assign]
            # A typed value is at most its line's bytes plus the names, the line number, and
            # per field the difference of a JSON keyword or number from its text (<= 5).
            self.line_overhead += 5 * len(self._header)

    def _no_lines(self, lines: list[bytes], first_line: int) -> list[bytes] | None:
        return None  # typed rows go through the C loop or _encode_typed

    def _encode_typed(self, rows: Sequence[Sequence[str]], lines: Sequence[int]) -> list[bytes]:
        """Typed values of ``rows``, up to the first field that does not fit (``misfit``)."""
        pieces, tail, types = self.pieces, self.tail, self._types
        out: list[bytes] = []
        for row, line in zip(rows, lines, strict=True):
            try:
                fields = types.values(row)
            except FieldTypeError as err:
                self.misfit = err
                return out
            out.append(
                b"".join(piece + field for piece, field in zip(pieces, fields, strict=False))
                + pieces[-1]
                + b"%d" % line
                + tail
            )
        return out

    def encode_lines(self, lines: list[bytes], first_line: int) -> list[bytes] | None:
        """The values of plain lines, one row each, or None if one has the wrong field count.

        Plain: UTF-8 without a quote, a backslash or a control character, so each field's bytes
        are already its JSON string's contents (``source._fast_block`` checks that). The value
        is byte for byte what ``encode_rows`` makes of the same row.
        """
        template, delimiter = self._template, self._delimiter
        try:
            return [
                template % (*text.split(delimiter), line)
                for line, text in enumerate(lines, first_line)
            ]
        except TypeError:  # more or fewer fields than the template has places for
            return None

    def check(
        self,
        values: list[bytes],
        lines: Sequence[int],
        row_offset: Callable[[int], int],
        bound: int | None = None,
    ) -> tuple[list[bytes], BadInputError | None]:
        """``values`` up to the first one too large for Kafka, and the error for it.

        ``row_offset(i)`` is the byte where row ``i`` starts: it places the error. ``bound``, if
        known, is at least the longest value's size: within the limit, no value is measured.
        """
        if bound is not None and bound <= self._max_bytes:
            return values, None
        if max(map(len, values), default=0) <= self._max_bytes:
            return values, None
        index = next(i for i, v in enumerate(values) if len(v) > self._max_bytes)
        error = BadInputError(
            f"the row's record is {len(values[index])} bytes, larger than {self._max_bytes}, "
            "the largest Kafka message allowed (raise message.max.bytes with -X if the "
            "broker accepts more)",
            source=self._source,
            line=lines[index],
            byte_offset=row_offset(index),
        )
        return values[:index], error

    def encode(
        self,
        rows: Sequence[Sequence[str]],
        lines: Sequence[int],
        row_offset: Callable[[int], int],
    ) -> tuple[list[bytes], BadInputError | None]:
        """One value per row, up to the first row too large for Kafka, and the error for it."""
        return self.check(self.encode_rows(rows, lines), lines, row_offset)


def _line_template(header: tuple[str, ...], source: str) -> bytes:
    """The value of a plain row as a ``bytes %`` template: a place for each field, then the line.

    Keys and the source go through orjson, so they are escaped exactly as in ``encode_rows``.
    """
    fields = b",".join(orjson.dumps(name).replace(b"%", b"%%") + b':"%s"' for name in header)
    source_json = orjson.dumps(source).replace(b"%", b"%%")
    return b"{" + fields + b',"_source_line":%d,"_source_file":' + source_json + b"}"


def _pieces(header: tuple[str, ...], source: str) -> tuple[tuple[bytes, ...], bytes]:
    """The value of a plain row in pieces (``_speedups.encode_block``): the JSON before each
    field, the JSON between the last field and the line number, and the JSON after it."""
    names = [orjson.dumps(name) for name in header]
    pieces = (b"{" + names[0] + b':"', *(b'",' + name + b':"' for name in names[1:]))
    tail = b',"_source_file":' + orjson.dumps(source) + b"}"
    return (*pieces, b'","_source_line":'), tail


def typed_pieces(header: Sequence[str], source: str) -> tuple[tuple[bytes, ...], bytes]:
    """``_pieces`` for typed rows (``schema.RowTypes``): no quotes of the fields' own, since a
    typed field is written as its JSON value (``"text"``, ``12.50``, ``true`` or ``null``)."""
    names = [orjson.dumps(name) for name in header]
    pieces = (b"{" + names[0] + b":", *(b"," + name + b":" for name in names[1:]))
    tail = b',"_source_file":' + orjson.dumps(source) + b"}"
    return (*pieces, b',"_source_line":'), tail


def _compile_encoder(
    header: tuple[str, ...], source: str
) -> Callable[[Sequence[Sequence[str]], Sequence[int]], list[bytes]]:
    """A function that encodes a batch of rows with one dict display per row.

    The hot path of the copy: a dict literal with constant keys, built in a list comprehension,
    is about 1.6x faster in CPython than ``dict(zip(header, row))`` plus two assignments. The
    keys enter the generated source only through ``repr``, so any header name is safe.
    """
    fields = "".join(f"{name!r}: r[{index}], " for index, name in enumerate(header))
    # b"%b" % copies orjson's result into a bytes of its size: orjson returns its whole 8 KiB
    # output buffer, so a batch of its values would hold 8 KiB a row (8 MB per 1000 rows).
    code = (
        "def encode_all(rows, lines):\n"
        f"    return [b'%b' % dumps({{{fields}'_source_line': line, '_source_file': source}})\n"
        "            for r, line in zip(rows, lines)]\n"
    )
    namespace: dict[str, object] = {"dumps": orjson.dumps, "source": source}
    exec(compile(code, "<csv_to_kafka.record>", "exec"), namespace)  # noqa: S102 (see above)
    return namespace["encode_all"]  # type: ignore[return-value]
