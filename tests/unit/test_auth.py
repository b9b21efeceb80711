"""Security settings for both Kafka clients: the dicts, MSK IAM tokens, region lookup, redaction.

No broker and no network: the signer is replaced by a fake, or signs offline with made-up keys.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka import Producer
from kafka import KafkaProducer
from kafka.net.sasl.oauth import AbstractTokenProvider, SaslMechanismOAuth

from csv_to_kafka._auth import (
    MskIamTokenProvider,
    OAuthCallback,
    aws_region,
    confluent_oauth_cb,
    confluent_security,
    kafka_python_security,
    redact,
)
from csv_to_kafka.config import AUTH_MODES, Config, Secret, SourceUri
from csv_to_kafka.errors import ConfigError

PASSWORD = "hunter2-do-not-print"
TOKEN = "signed-msk-token"
REGION = "eu-west-1"


def make_config(**overrides: Any) -> Config:
    options: dict[str, Any] = {
        "source": SourceUri("bucket", "data.csv"),
        "topic": "rows",
        "bootstrap_servers": "b-1.example.kafka.eu-west-1.amazonaws.com:9098",
        "job_id": "job-1",
        "checkpoint_table": "checkpoints",
    }
    options.update(overrides)
    return Config(**options)


def scram_config(auth: str = "scram-sha-512", **overrides: Any) -> Config:
    return make_config(
        auth=auth, sasl_username="alice", sasl_password=Secret(PASSWORD), **overrides
    )


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No region, no credentials and no instance metadata, whatever the machine has."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def region(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_REGION", REGION)
    return REGION


class FakeSigner:
    """Stands in for ``MSKAuthTokenProvider.generate_auth_token``: (TOKEN, expiry_ms)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        # In the future: librdkafka refuses a token that has already expired.
        self.expiry_ms = int((time.time() + 900) * 1000)

    def __call__(self, region: str, aws_debug_creds: bool = False) -> tuple[str, int]:
        self.calls.append(region)
        return TOKEN, self.expiry_ms


@pytest.fixture
def signer(monkeypatch: pytest.MonkeyPatch) -> FakeSigner:
    fake = FakeSigner()
    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", fake)
    return fake


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Made-up keys: the real signer signs offline with them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


# --- the dicts, mode by mode -------------------------------------------------------------------


def test_none_is_plaintext_for_both_clients() -> None:
    config = make_config(auth="none")
    assert confluent_security(config) == {"security.protocol": "PLAINTEXT"}
    assert kafka_python_security(config) == {"security_protocol": "PLAINTEXT"}


def test_none_ignores_a_ca_location() -> None:
    config = make_config(auth="none", ssl_ca_location="/etc/ca.pem")
    assert confluent_security(config) == {"security.protocol": "PLAINTEXT"}
    assert kafka_python_security(config) == {"security_protocol": "PLAINTEXT"}


def test_tls_without_ca_uses_the_default_trust_store() -> None:
    config = make_config(auth="tls")
    assert confluent_security(config) == {"security.protocol": "SSL"}
    assert kafka_python_security(config) == {"security_protocol": "SSL"}


def test_tls_with_ca() -> None:
    config = make_config(auth="tls", ssl_ca_location="/etc/ca.pem")
    assert confluent_security(config) == {
        "security.protocol": "SSL",
        "ssl.ca.location": "/etc/ca.pem",
    }
    assert kafka_python_security(config) == {
        "security_protocol": "SSL",
        "ssl_cafile": "/etc/ca.pem",
    }


@pytest.mark.parametrize(
    ("auth", "mechanism"),
    [("scram-sha-256", "SCRAM-SHA-256"), ("scram-sha-512", "SCRAM-SHA-512")],
)
def test_scram_for_both_clients(auth: str, mechanism: str) -> None:
    config = scram_config(auth, ssl_ca_location="/etc/ca.pem")
    assert confluent_security(config) == {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": "/etc/ca.pem",
        "sasl.mechanism": mechanism,
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
    }
    assert kafka_python_security(config) == {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": "/etc/ca.pem",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }


def test_iam_for_confluent(region: str, signer: FakeSigner) -> None:
    props = confluent_security(make_config(auth="iam"))
    oauth_cb = props.pop("oauth_cb")
    assert props == {"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"}
    assert oauth_cb(None) == (TOKEN, signer.expiry_ms / 1000)
    assert signer.calls == [region]


def test_iam_for_kafka_python(region: str, signer: FakeSigner) -> None:
    props = kafka_python_security(make_config(auth="iam", ssl_ca_location="/etc/ca.pem"))
    provider = props.pop("sasl_oauth_token_provider")
    assert props == {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": "/etc/ca.pem",
        "sasl_mechanism": "OAUTHBEARER",
    }
    assert isinstance(provider, MskIamTokenProvider)
    assert provider.region == region
    assert provider.token() == TOKEN
    assert signer.calls == [region]


# --- MSK IAM tokens ----------------------------------------------------------------------------


def test_confluent_oauth_cb_turns_milliseconds_into_seconds(signer: FakeSigner) -> None:
    signer.expiry_ms = 1_700_000_900_250
    token, expiry = confluent_oauth_cb("us-east-2")("ignored sasl.oauthbearer.config")
    assert token == TOKEN
    assert expiry == 1_700_000_900.25
    assert signer.calls == ["us-east-2"]


def test_confluent_oauth_cb_with_the_real_signer_expires_in_seconds(fake_credentials: None) -> None:
    before = time.time()
    token, expiry = confluent_oauth_cb(REGION)(None)
    assert token
    # The signer's tokens last 900 s; X-Amz-Date has whole seconds, hence the slack.
    assert before - 1 <= expiry - 900 <= time.time() + 1


def test_token_provider_is_a_kafka_python_token_provider(signer: FakeSigner) -> None:
    provider = MskIamTokenProvider(REGION)
    assert isinstance(provider, AbstractTokenProvider)
    assert provider.token() == TOKEN
    assert provider.extensions() == {}
    assert repr(provider) == f"MskIamTokenProvider(region={REGION!r})"


def test_token_provider_reuses_a_token_until_near_expiry(signer: FakeSigner) -> None:
    provider = MskIamTokenProvider(REGION)
    # Less than a minute left: every call signs a new token.
    signer.expiry_ms = int((time.time() + 10) * 1000)
    provider.token()
    provider.token()
    assert len(signer.calls) == 2
    # Fifteen minutes left: the token is reused.
    signer.expiry_ms = int((time.time() + 900) * 1000)
    provider.token()
    provider.token()
    provider.token()
    assert len(signer.calls) == 3


def test_token_provider_with_the_real_signer(fake_credentials: None) -> None:
    token = MskIamTokenProvider(REGION).token()
    assert isinstance(token, str)
    assert token


def test_kafka_python_oauth_mechanism_sends_the_token(signer: FakeSigner) -> None:
    mechanism = SaslMechanismOAuth(sasl_oauth_token_provider=MskIamTokenProvider(REGION))
    assert mechanism.auth_bytes() == f"n,,\x01auth=Bearer {TOKEN}\x01\x01".encode()


def test_no_credentials_is_a_config_error(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="no AWS credentials"):
        MskIamTokenProvider(REGION).token()
    with caplog.at_level(logging.ERROR), pytest.raises(ConfigError, match="no AWS credentials"):
        confluent_oauth_cb(REGION)(None)
    # confluent-kafka hides what oauth_cb raised in its constructor, so it is logged.
    assert "could not sign an MSK IAM token" in caplog.text


def test_oauth_cb_keeps_why_it_could_not_sign(signer: FakeSigner) -> None:
    """The sink raises the kept error instead of librdkafka's "OAuth token not set"."""
    oauth_cb = OAuthCallback(REGION)
    failure = ConfigError("no credentials")

    def fail(_region: str) -> tuple[str, int]:
        raise failure

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("csv_to_kafka._auth._sign", fail)
        with pytest.raises(ConfigError):
            oauth_cb(None)
    assert oauth_cb.error is failure
    assert oauth_cb(None)[0] == TOKEN
    assert oauth_cb.error is None


def test_oauth_cb_warns_of_a_token_expired_when_signed(
    signer: FakeSigner, caplog: pytest.LogCaptureFixture
) -> None:
    signer.expiry_ms = int((time.time() - 60) * 1000)
    with caplog.at_level(logging.WARNING):
        confluent_oauth_cb(REGION)(None)
    assert "expired" in caplog.text
    assert "check this host's clock" in caplog.text


# --- the region --------------------------------------------------------------------------------


def test_region_from_aws_region(region: str) -> None:
    assert aws_region() == region


def test_region_from_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert aws_region() == "ap-south-1"


def test_region_of_boto3_wins_over_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 reads AWS_DEFAULT_REGION only; the S3 and DynamoDB clients use that one.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert aws_region() == "ap-south-1"


def test_region_from_the_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    config_file = tmp_path / "config"
    config_file.write_text("[profile msk]\nregion = sa-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_PROFILE", "msk")
    assert aws_region() == "sa-east-1"


def test_missing_region_is_a_config_error(signer: FakeSigner) -> None:
    with pytest.raises(ConfigError, match="AWS_REGION"):
        aws_region()
    with pytest.raises(ConfigError, match="AWS_REGION"):
        confluent_security(make_config(auth="iam"))
    with pytest.raises(ConfigError, match="AWS_REGION"):
        kafka_python_security(make_config(auth="iam"))
    assert signer.calls == []


def test_unknown_profile_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ConfigError, match="no-such-profile"):
        aws_region()


# --- secrets -----------------------------------------------------------------------------------


def test_scram_without_password_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="password"):
        make_config(auth="scram-sha-256", sasl_username="alice")
    with pytest.raises(ConfigError, match="password"):
        make_config(auth="scram-sha-512", sasl_username="alice", sasl_password=Secret(""))
    with pytest.raises(ConfigError, match="sasl-username"):
        make_config(auth="scram-sha-512", sasl_password=Secret(PASSWORD))


def test_config_never_shows_the_password() -> None:
    config = scram_config()
    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(config)
    assert PASSWORD not in repr(config.sasl_password)
    assert PASSWORD not in str(config.sasl_password)


def test_redact_hides_the_scram_password() -> None:
    for props in (confluent_security(scram_config()), kafka_python_security(scram_config())):
        safe = redact(props)
        assert PASSWORD in props.values()
        assert PASSWORD not in repr(safe)
        assert "alice" in safe.values()
    assert redact(confluent_security(scram_config()))["sasl.password"] == "***"
    assert redact(kafka_python_security(scram_config()))["sasl_plain_password"] == "***"


def test_redact_shows_callables_and_hides_token_providers(region: str) -> None:
    assert redact(confluent_security(make_config(auth="iam")))["oauth_cb"] == "<callable>"
    safe = redact(kafka_python_security(make_config(auth="iam")))
    assert safe["sasl_oauth_token_provider"] == "***"


def test_redact_covers_every_secret_key_and_copies() -> None:
    props = {
        "bootstrap.servers": "b-1:9096",
        "linger.ms": 5,
        "ssl.key.password": "a",
        "ssl.key.pem": "b",
        "ssl.keystore.password": "c",
        "sasl.oauthbearer.config": "d",
        "sasl.oauthbearer.client.secret": "e",
        "SASL.PASSWORD": "f",
        "ssl_password": "g",
        "error_cb": print,
    }
    safe = redact(props)
    assert safe == {
        "bootstrap.servers": "b-1:9096",
        "linger.ms": 5,
        "ssl.key.password": "***",
        "ssl.key.pem": "***",
        "ssl.keystore.password": "***",
        "sasl.oauthbearer.config": "***",
        "sasl.oauthbearer.client.secret": "***",
        "SASL.PASSWORD": "***",
        "ssl_password": "***",
        "error_cb": "<callable>",
    }
    assert props["ssl.key.password"] == "a"


# --- the clients accept what we build ----------------------------------------------------------


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_confluent_producer_accepts_the_dict(auth: str, region: str, signer: FakeSigner) -> None:
    certifi = pytest.importorskip("certifi")
    ca = certifi.where() if auth != "none" else None
    if auth.startswith("scram"):
        config = scram_config(auth, ssl_ca_location=ca)
    else:
        config = make_config(auth=auth, ssl_ca_location=ca)
    # No bootstrap.servers: librdkafka builds the client and never connects.
    producer = Producer(confluent_security(config))
    try:
        assert producer.flush(0) == 0
    finally:
        producer.close()
    # With an oauth_cb, confluent-kafka asks for the first token while constructing the client.
    assert signer.calls == ([region] if auth == "iam" else [])


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_kafka_python_knows_every_parameter(auth: str, region: str, signer: FakeSigner) -> None:
    if auth.startswith("scram"):
        config = scram_config(auth, ssl_ca_location="/etc/ca.pem")
    else:
        config = make_config(auth=auth, ssl_ca_location="/etc/ca.pem")
    props = kafka_python_security(config)
    unknown = set(props) - set(KafkaProducer.DEFAULT_CONFIG)
    assert not unknown


def test_kafka_python_producer_accepts_the_iam_dict(region: str, signer: FakeSigner) -> None:
    # An explicit api_version spares kafka-python its probe of a broker at construction.
    producer = KafkaProducer(
        bootstrap_servers="localhost:1",
        api_version=(3, 6),
        **kafka_python_security(make_config(auth="iam")),
    )
    producer.close(timeout=0)
