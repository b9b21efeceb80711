"""Errors raised by csv-to-kafka, and the exit code of each.

The tree::

    CsvToKafkaError              exit 1    unexpected
    ├── ConfigError              exit 2    usage or configuration; not retryable
    ├── BadInputError            exit 3    the CSV cannot be copied as it is; not retryable
    │   ├── EmptyObjectError               no header row: nothing at all, once decoded (a job
    │   │                                  of several objects skips such an object)
    │   ├── ObjectChangedError             the object is not the version the job started on
    │   └── TypeMisfitError                a field does not fit its column's type (--schema)
    ├── InfrastructureError      exit 4    Kafka, S3 or DynamoDB failed after retries; retryable
    │   ├── FencedError                    another instance of the job took its transactional id
    │   └── CommitUnknownError             a commit timed out: re-read its outcome from Kafka
    └── StoppedError             exit 143  SIGTERM (130: SIGINT), after a clean checkpoint

``verify`` exits 1 when the topic does not match the CSV: a mismatch is its report
(``VerifyReport.ok`` false), not an error of the copy, so it is not part of this tree.

Every message says what happened, where (line, byte offset, object, offset) and what to do.
"""

from __future__ import annotations

import signal

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CONFIG",
    "EXIT_INFRASTRUCTURE",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_UNEXPECTED",
    "BadInputError",
    "CommitUnknownError",
    "ConfigError",
    "CsvToKafkaError",
    "EmptyObjectError",
    "FencedError",
    "InfrastructureError",
    "ObjectChangedError",
    "StoppedError",
    "TypeMisfitError",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_MISMATCH = 1  # verify: the topic does not match the CSV
EXIT_CONFIG = 2
EXIT_BAD_INPUT = 3
EXIT_INFRASTRUCTURE = 4
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class CsvToKafkaError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = EXIT_UNEXPECTED


class ConfigError(CsvToKafkaError):
    """A flag, an environment variable or the target (topic, table) is not usable as given."""

    exit_code = EXIT_CONFIG


class BadInputError(CsvToKafkaError):
    """The CSV object cannot be copied as it is.

    ``line`` is the 1-based line where the offending row starts (the header is line 1) and
    ``byte_offset`` the byte in the object where it starts; both are in the message too.
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        reason: str,
        *,
        line: int | None = None,
        byte_offset: int | None = None,
        source: str | None = None,
    ) -> None:
        self.reason = reason
        self.line = line
        self.byte_offset = byte_offset
        self.source = source
        where = []
        if source is not None:
            where.append(source)
        if line is not None:
            where.append(f"line {line}")
        if byte_offset is not None:
            where.append(f"byte offset {byte_offset}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{reason}")


class EmptyObjectError(BadInputError):
    """The object holds no header row: no bytes (once decoded: a gzip of an empty file, gzip
    members or zstd frames or bzip2 streams that are all empty) or blank lines only. Alone, it
    is bad input (exit 3); in a job of several objects it holds no rows and is skipped, as a
    zero-byte object in a listing is (Spark writes an empty partition as a gzip of nothing)."""


class ObjectChangedError(BadInputError):
    """The S3 object's ETag or version differs from the one the job started on."""


class TypeMisfitError(BadInputError):
    """A field that does not fit its column's type in ``--schema`` (kind ``type``): the row's
    line and byte offset, and ``column``, the column it is in."""

    kind = "type"

    def __init__(
        self,
        reason: str,
        *,
        line: int | None = None,
        byte_offset: int | None = None,
        source: str | None = None,
        column: str | None = None,
    ) -> None:
        self.column = column
        super().__init__(reason, line=line, byte_offset=byte_offset, source=source)


class InfrastructureError(CsvToKafkaError):
    """Kafka, S3 or DynamoDB kept failing after the retry budget; rerunning the job resumes it."""

    exit_code = EXIT_INFRASTRUCTURE


class FencedError(InfrastructureError):
    """A newer instance of the same job owns the transactional id; this one may no longer write."""


class CommitUnknownError(InfrastructureError):
    """A transaction commit did not answer in time: it may or may not have been applied."""


class StoppedError(CsvToKafkaError):
    """The run was stopped by a signal after committing and checkpointing what it had sent."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name} after a clean checkpoint")


def exit_code_for(error: BaseException) -> int:
    """The process exit code for ``error``: the one place that maps errors to exit codes."""
    if isinstance(error, CsvToKafkaError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_SIGINT
    return EXIT_UNEXPECTED
