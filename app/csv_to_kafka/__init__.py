"""csv-to-kafka: copy a CSV object from Amazon S3 into one Kafka partition, every row, in file
order, exactly once.

The command line is ``csv-to-kafka`` (cli.py); the library's entry point is ``Processor``, and
``csv_to_kafka.verify.verify`` compares a topic with its CSV (the function shares its module's
name, so it is not re-exported here: a package attribute ``verify`` is the submodule once that
is imported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Config, Secret, SourceUri, parse_source_uri
from .errors import (
    BadInputError,
    CommitUnknownError,
    ConfigError,
    CsvToKafkaError,
    FencedError,
    InfrastructureError,
    ObjectChangedError,
    StoppedError,
    exit_code_for,
)

if TYPE_CHECKING:  # the real names for type checkers; at run time __getattr__ imports them late
    from .processor import Processor, RunResult
    from .verify import VerifyReport

__version__ = "0.1.0"

__all__ = [
    "BadInputError",
    "CommitUnknownError",
    "Config",
    "ConfigError",
    "CsvToKafkaError",
    "FencedError",
    "InfrastructureError",
    "ObjectChangedError",
    "Processor",
    "RunResult",
    "Secret",
    "SourceUri",
    "StoppedError",
    "VerifyReport",
    "__version__",
    "exit_code_for",
    "parse_source_uri",
]


def __getattr__(name: str) -> object:
    # The pipeline pulls in boto3 and the Kafka clients: import it only when asked for.
    if name in {"Processor", "RunResult"}:
        from . import processor  # noqa: PLC0415

        return getattr(processor, name)
    if name == "VerifyReport":
        from .verify import VerifyReport  # noqa: PLC0415

        return VerifyReport
    raise AttributeError(name)
