"""Configuration: a flag beats the environment, which beats the default; errors say what to do."""

from __future__ import annotations

import pytest

from csv_to_kafka.cli import build_config, build_parser, main
from csv_to_kafka.config import ENV, Config, Secret, parse_source_uri
from csv_to_kafka.errors import ConfigError

REQUIRED = [
    "--source",
    "s3://b/k.csv",
    "--topic",
    "t",
    "--bootstrap-servers",
    "h:9092",
    "--job-id",
    "j",
    "--checkpoint-table",
    "cp",
]


def config(argv: list[str], env: dict[str, str] | None = None) -> Config:
    return build_config(build_parser().parse_args(["run", *argv]), env or {})


def test_defaults() -> None:
    c = config(REQUIRED)
    assert c.source.bucket == "b"
    assert c.source.key == "k.csv"
    assert c.checkpoint_every == 10_000
    assert c.kafka_client == "confluent"
    assert c.create_topic is True
    assert c.allow_multiple_partitions is False
    assert c.transactional_id == "csv-to-kafka-j"


def test_everything_can_come_from_the_environment() -> None:
    env = {
        ENV["source"]: "s3://bucket/a/b.csv",
        ENV["topic"]: "topic",
        ENV["bootstrap_servers"]: "b1:9092,b2:9092",
        ENV["job_id"]: "job",
        ENV["checkpoint_table"]: "table",
        ENV["checkpoint_every"]: "500",
        ENV["kafka_client"]: "kafka-python",
        ENV["create_topic"]: "false",
        ENV["kafka_properties"]: "linger.ms=50,compression.type=zstd",
        ENV["retry_seconds"]: "12.5",
    }
    c = config([], env)
    assert str(c.source) == "s3://bucket/a/b.csv"
    assert c.checkpoint_every == 500
    assert c.kafka_client == "kafka-python"
    assert c.create_topic is False
    assert dict(c.kafka_properties) == {"linger.ms": "50", "compression.type": "zstd"}
    assert c.retry_seconds == 12.5


def test_a_flag_wins_over_the_environment() -> None:
    env = {ENV["checkpoint_every"]: "500", ENV["topic"]: "from-env", ENV["create_topic"]: "no"}
    c = config([*REQUIRED, "--checkpoint-every", "42", "--create-topic"], env)
    assert c.checkpoint_every == 42
    assert c.topic == "t"
    assert c.create_topic is True


def test_missing_options_are_named_with_their_variables() -> None:
    with pytest.raises(ConfigError) as caught:
        config(["--topic", "t"])
    message = str(caught.value)
    assert "--source (or CSV_TO_KAFKA_SOURCE)" in message
    assert "--job-id (or CSV_TO_KAFKA_JOB_ID)" in message


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--checkpoint-every", "0"], {}, "at least 1"),
        ([], {ENV["checkpoint_every"]: "many"}, "must be a number"),
        ([], {ENV["create_topic"]: "maybe"}, "true or false"),
        (["-X", "linger.ms"], {}, "kafka.property=value"),
        (["--auth", "scram-sha-512", "--sasl-username", "u"], {}, "password"),
        (["--delimiter", "ab"], {}, "one character"),
    ],
)
def test_bad_values(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config([*REQUIRED, *argv], env)


@pytest.mark.parametrize("uri", ["b/k", "s3://", "s3://bucket", "s3://bucket/", "http://b/k"])
def test_bad_source_uris(uri: str) -> None:
    with pytest.raises(ConfigError, match="s3://BUCKET/KEY"):
        parse_source_uri(uri)


def test_the_password_comes_from_the_environment_and_never_shows() -> None:
    c = config(
        [*REQUIRED, "--auth", "scram-sha-512", "--sasl-username", "u"],
        {ENV["sasl_password"]: "hunter2-secret"},
    )
    assert c.sasl_password == Secret("hunter2-secret")
    assert "hunter2" not in repr(c)
    assert "hunter2" not in str(c)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--topic", "t"]) == 2
    assert "missing --source" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["run", "--kafka-client", "nope"])
    assert caught.value.code == 2


def test_help_lists_exit_codes_and_variables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for text in [
        "143",
        "bad input data",
        "CSV_TO_KAFKA_CHECKPOINT_EVERY",
        "--checkpoint-every",
        "CSV_TO_KAFKA_SASL_PASSWORD",
    ]:
        assert text in out


def test_log_level_in_any_case(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build_parser().parse_args(["run", "--log-level", "debug"]).log_level == "DEBUG"
    monkeypatch.setenv(ENV["log_level"], "verbose")
    with pytest.raises(SystemExit) as caught:
        main(["run", "--topic", "t"])
    assert caught.value.code == 2
    assert "CSV_TO_KAFKA_LOG_LEVEL=verbose: choose from DEBUG, INFO, WARNING, ERROR" in (
        capsys.readouterr().err
    )


def test_input_compression_flag_env_and_default() -> None:
    assert config(REQUIRED).input_compression == "auto"
    assert config(REQUIRED, {ENV["input_compression"]: "zstd"}).input_compression == "zstd"
    flagged = config([*REQUIRED, "--input-compression", "none"], {ENV["input_compression"]: "gzip"})
    assert flagged.input_compression == "none"
    assert flagged.compression == "zstd"  # Kafka's, untouched
    with pytest.raises(ConfigError, match="--input-compression must be one of"):
        config(REQUIRED, {ENV["input_compression"]: "lz4"})
    for command in (["check", "--source", "s3://b/k"], ["verify", *REQUIRED[:6]]):
        args = build_parser().parse_args([*command, "--input-compression", "bzip2"])
        assert build_config(args, {}).input_compression == "bzip2"
