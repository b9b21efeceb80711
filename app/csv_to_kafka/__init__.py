"""csv-to-kafka: copy a CSV object from Amazon S3 into one Kafka partition, every row, in file
order, exactly once.

The command line is ``csv-to-kafka`` (cli.py); the library's entry point is ``Processor``.
"""

from __future__ import annotations

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
    "verify",
]


def __getattr__(name: str) -> object:
    # The pipeline pulls in boto3 and the Kafka clients: import it only when asked for.
    if name in {"Processor", "RunResult"}:
        from . import processor  # noqa: PLC0415

        return getattr(processor, name)
    if name in {"verify", "VerifyReport"}:
        from . import verify as verify_module  # noqa: PLC0415

        return getattr(verify_module, name)
    raise AttributeError(name)
