"""Dead letters: bad rows as records of the dead-letter topic, in the copy's own transaction.

Like Kafka Connect's ``DeadLetterQueueReporter``, one object (``DeadLetters``) is handed every
bad row (a ``source.Reject``) and every header name is a constant here. Unlike Connect, the
records go through the job's transactional producer, in the transaction that holds the rows
around them: after any crash both topics hold exactly what was committed, and a fenced
instance (a zombie) cannot write a dead letter.

A dead letter's value is the row's bytes as in the object, without its line terminator. Its
headers say where the row was and why it is bad (``csv-to-kafka.line``, ``.offset``,
``.source-file``, ``.job``, a planned part's ``.part``, ``.error`` and Connect's
``__connect.errors.exception.*``), and, as the main topic's last record of a batch does,
where the copy stands after the batch that held it (``.rows``, ``.bad-rows``, ``.next-line``,
``.next-offset``, ``.etag``): when a transaction ends with bad rows, the dead-letter topic
holds the newest position. Every part of a plan writes its dead letters to partition 0 of the
one-partition dead-letter topic (``processor.dlq_view``)."""

from __future__ import annotations

import logging

from .errors import BadInputError
from .record import HEADER_PREFIX
from .source import Reject

logger = logging.getLogger(__name__)

__all__ = [
    "CONNECT_CLASS",
    "CONNECT_MESSAGE",
    "ERROR",
    "JOB",
    "LINE",
    "NEXT_OFFSET",
    "OFFSET",
    "PART",
    "SOURCE_FILE",
    "BadRowLimit",
    "DeadLetters",
    "dead_letter_headers",
    "limit_error",
]

LINE = HEADER_PREFIX + "line"  # the row's first line, decimal
OFFSET = HEADER_PREFIX + "offset"  # the byte where the row starts, decimal
SOURCE_FILE = HEADER_PREFIX + "source-file"  # s3://bucket/key
JOB = HEADER_PREFIX + "job"
PART = HEADER_PREFIX + "part"  # a planned job's part index, decimal (on a part's dead letters)
ERROR = HEADER_PREFIX + "error"  # field-count, encoding, record-too-large, type
NEXT_OFFSET = HEADER_PREFIX + "next-offset"  # the byte a resumed run reads from
CONNECT_CLASS = "__connect.errors.exception.class.name"
CONNECT_MESSAGE = "__connect.errors.exception.message"
_CLASS_NAME = f"{BadInputError.__module__}.{BadInputError.__qualname__}".encode()
# The position headers of the batch's record that a dead letter carries too; "line" and
# "offset" are the row's own there, and the position's offset is NEXT_OFFSET.
_OWN = {LINE, OFFSET, JOB}
LOGGED_BAD_ROWS = 100  # bad rows named one by one in the log; after that, only counted


def dead_letter_headers(
    reject: Reject,
    *,
    source: str,
    job_id: str,
    position: list[tuple[str, bytes]],
    part: int | None = None,
) -> list[tuple[str, bytes]]:
    """The headers of ``reject``'s dead letter; ``position`` is its batch's ``to_headers()``;
    ``part``: the index of the planned part that found it (None: not a part)."""
    headers = [
        (LINE, b"%d" % reject.line),
        (OFFSET, b"%d" % reject.offset),
        (SOURCE_FILE, source.encode()),
        (JOB, job_id.encode()),
    ]
    if part is not None:
        headers.append((PART, b"%d" % part))
    headers += [
        (ERROR, reject.reason.encode()),
        (CONNECT_CLASS, _CLASS_NAME),
        (CONNECT_MESSAGE, f"line {reject.line}, byte {reject.offset}: {reject.message}".encode()),
    ]
    for name, value in position:
        if name == OFFSET:
            headers.append((NEXT_OFFSET, value))
        elif name not in _OWN:
            headers.append((name, value))
    return headers


class DeadLetters:
    """Counts the job's bad rows, logs them, and makes their dead letters.

    ``topic`` None: the rows are dropped (``--skip-bad-rows``), counted and logged all the same.
    ``total`` starts at the job's count so far (read back from Kafka when resuming); ``part``
    is a planned part's index, named in its dead letters' headers.
    """

    def __init__(
        self,
        *,
        topic: str | None,
        source: str,
        job_id: str,
        max_bad_rows: int,
        total: int = 0,
        part: int | None = None,
    ) -> None:
        self.topic = topic
        self.part = part
        self.source = source
        self.job_id = job_id
        self.max_bad_rows = max_bad_rows
        self.total = total
        self._logged = 0

    def check_limit(self, rejects: tuple[Reject, ...]) -> None:
        """Raise the error that stops the copy if ``rejects`` take the job past the limit (the
        parser cuts a batch at the limit's row, ``BadRowLimit``: a guard)."""
        if self.total + len(rejects) <= self.max_bad_rows:
            return
        where = rejects[max(0, self.max_bad_rows - self.total)]
        raise limit_error(where, self.max_bad_rows, self.source)

    def take(
        self, rejects: tuple[Reject, ...], position: list[tuple[str, bytes]]
    ) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
        """Count and log ``rejects``; their dead letters (none when they are dropped)."""
        for reject in rejects:
            self.total += 1
            if self._logged < LOGGED_BAD_ROWS:
                self._logged += 1
                logger.warning(
                    "bad row %d at line %d, byte %d of %s (%s): %s; %s",
                    self.total,
                    reject.line,
                    reject.offset,
                    self.source,
                    reject.reason,
                    reject.message,
                    "dropped" if self.topic is None else f"sent to {self.topic}",
                    extra={
                        "bad_row": {
                            "source": self.source,
                            "line": reject.line,
                            "byte_offset": reject.offset,
                            "reason": reject.reason,
                        }
                    },
                )
                if self._logged == LOGGED_BAD_ROWS:
                    logger.warning(
                        "more bad rows are only counted from here on (%d logged)", LOGGED_BAD_ROWS
                    )
        if self.topic is None:
            return []
        return [
            (
                reject.raw,
                dead_letter_headers(
                    reject,
                    source=self.source,
                    job_id=self.job_id,
                    position=position,
                    part=self.part,
                ),
            )
            for reject in rejects
        ]


def limit_error(where: Reject, max_bad_rows: int, source: str) -> BadInputError:
    """The error of the job's (max_bad_rows + 1)th bad row, ``where``."""
    return BadInputError(
        f"more than {max_bad_rows} bad rows (--max-bad-rows); this one: "
        f"{where.reason}: {where.message}. The rows before it are committed; raise "
        "--max-bad-rows to go on with the same --job-id",
        source=source,
        line=where.line,
        byte_offset=where.offset,
    )


class BadRowLimit:
    """--max-bad-rows where the rows are parsed: how many more bad rows the job may have, over
    all its objects (``total``: the job's count when the run started, from Kafka)."""

    def __init__(self, max_bad_rows: int, total: int) -> None:
        self.max_bad_rows = max_bad_rows
        self.left = max_bad_rows - total

    def over(self, rejects: tuple[Reject, ...]) -> Reject | None:
        """The first of ``rejects`` past the limit (None: all pass, and are counted)."""
        if len(rejects) > self.left:
            return rejects[max(self.left, 0)]
        self.left -= len(rejects)
        return None
