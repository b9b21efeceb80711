"""The producer settings ConfluentSink gives librdkafka (no broker: the producer starts later)."""

from __future__ import annotations

import pytest

from csv_to_kafka.cli import build_config, build_parser
from csv_to_kafka.sink import ConfluentSink

REQUIRED = ["--source", "s3://b/k.csv", "--topic", "t", "--bootstrap-servers", "h:9092"]
REQUIRED += ["--job-id", "j", "--checkpoint-table", "cp"]


def producer_props(*argv: str) -> dict[str, str]:
    config = build_config(build_parser().parse_args(["run", *REQUIRED, *argv]), {})
    return ConfluentSink(config)._producer_props


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        ([], "1"),  # zstd, the default, at level 1
        (["-X", "compression.level=5"], "5"),  # the user's level wins
        (["--compression", "lz4"], None),  # other codecs keep their default level
        (["-X", "compression.codec=gzip"], None),  # also when -X changes the codec
    ],
)
def test_zstd_level(argv: list[str], level: str | None) -> None:
    assert producer_props(*argv).get("compression.level") == level
