"""The producer settings ConfluentSink gives librdkafka (no broker: the producer starts later)."""

from __future__ import annotations

import pytest

from csv_to_kafka.cli import build_config, build_parser
from csv_to_kafka.errors import ConfigError
from csv_to_kafka.sink import ConfluentSink, login_refusal

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


@pytest.mark.parametrize(
    ("detail", "auth", "tls", "cause"),
    [
        ("SASL authentication error: Authentication failed", True, False, "refused"),
        ('{"status":"invalid_token: the token expired at ..."}', True, False, "refused"),
        ("SSL handshake failed: certificate verify failed: ...", False, True, "not trusted"),
        # MSK's IAM connection quota: a retry helps.
        ("SASL authentication error: Too many connects", True, False, None),
        ("SSL handshake failed: Connection reset by peer", False, True, None),
        ("Connection refused", False, False, None),
    ],
)
def test_login_refusal_tells_what_no_retry_mends(
    detail: str, auth: bool, tls: bool, cause: str | None
) -> None:
    refusal = login_refusal("connecting", detail, auth=auth, tls=tls)
    if cause is None:
        assert refusal is None
    else:
        assert isinstance(refusal, ConfigError)
        assert cause in str(refusal)
        assert detail in str(refusal)
