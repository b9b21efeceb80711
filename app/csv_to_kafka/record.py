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

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from .errors import BadInputError

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

    def to_headers(self) -> list[tuple[str, bytes]]:
        return [
            (HEADER_PREFIX + "format", _FORMAT_VERSION),
            (HEADER_PREFIX + "job", self.job_id.encode()),
            (HEADER_PREFIX + "rows", b"%d" % self.rows),
            (HEADER_PREFIX + "line", b"%d" % self.line),
            (HEADER_PREFIX + "next-line", b"%d" % self.next_line),
            (HEADER_PREFIX + "offset", b"%d" % self.byte_offset),
            (HEADER_PREFIX + "etag", self.etag.encode()),
        ]

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
                byte_offset=int(found["offset"]),
                etag=found["etag"],
                kafka_offset=kafka_offset,
            )
        except (KeyError, ValueError):
            return None


class RecordEncoder:
    """Turns rows into record values for one source object and header."""

    def __init__(self, header: Sequence[str], source: str, max_bytes: int) -> None:
        clash = [name for name in header if name in METADATA_FIELDS]
        if clash:
            raise BadInputError(
                f"header column {clash[0]!r} has the name of a field csv-to-kafka adds",
                source=source,
                line=1,
                byte_offset=0,
            )
        self._header = tuple(header)
        self._source = source
        self._max_bytes = max_bytes

    def encode(
        self,
        rows: Sequence[Sequence[str]],
        lines: Sequence[int],
        ends: Sequence[int],
        first_start: int,
    ) -> tuple[list[bytes], BadInputError | None]:
        """One value per row, up to the first row too large for Kafka, and the error for it.

        ``ends`` is the byte after each row and ``first_start`` where the first one starts: they
        place the error.
        """
        header = self._header
        source = self._source
        dumps = orjson.dumps
        values = []
        for row, line in zip(rows, lines, strict=True):
            record: dict[str, object] = dict(zip(header, row, strict=True))
            record["_source_line"] = line
            record["_source_file"] = source
            values.append(dumps(record))
        if max(map(len, values), default=0) <= self._max_bytes:
            return values, None
        index = next(i for i, v in enumerate(values) if len(v) > self._max_bytes)
        error = BadInputError(
            f"the row's record is {len(values[index])} bytes, larger than {self._max_bytes}, "
            "the largest Kafka message allowed (raise message.max.bytes with -X if the "
            "broker accepts more)",
            source=source,
            line=lines[index],
            byte_offset=ends[index - 1] if index else first_start,
        )
        return values[:index], error

    def expected(self, row: Sequence[str], line: int) -> dict[str, object]:
        """The JSON object a row must appear as (for verify)."""
        record: dict[str, object] = dict(zip(self._header, row, strict=True))
        record["_source_line"] = line
        record["_source_file"] = self._source
        return record
