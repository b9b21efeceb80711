"""Kafka security settings for Amazon MSK, for both clients, from the ``auth`` part of Config.

=================  =================  ==============  =====================================
``--auth``         security protocol  SASL mechanism  credentials
=================  =================  ==============  =====================================
``none``           PLAINTEXT          -               -
``tls``            SSL                -               - (the broker's certificate is checked)
``scram-sha-256``  SASL_SSL           SCRAM-SHA-256   --sasl-username and the password
``scram-sha-512``  SASL_SSL           SCRAM-SHA-512   --sasl-username and the password
``iam``            SASL_SSL           OAUTHBEARER     a token signed with the AWS credentials
=================  =================  ==============  =====================================

``iam`` signs tokens with aws-msk-iam-sasl-signer-python for the region of the standard AWS
configuration. The SASL password is revealed only in the dicts built here: log them through
``redact``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
import botocore.exceptions
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

from .config import Config
from .errors import ConfigError, InfrastructureError

__all__ = [  # noqa: F822 (MskIamTokenProvider is defined on first use, by __getattr__)
    "MskIamTokenProvider",
    "OAuthCallback",
    "aws_region",
    "confluent_oauth_cb",
    "confluent_security",
    "kafka_python_security",
    "redact",
]

logger = logging.getLogger(__name__)

_SASL_MECHANISMS = {
    "scram-sha-256": "SCRAM-SHA-256",
    "scram-sha-512": "SCRAM-SHA-512",
    "iam": "OAUTHBEARER",
}

# kafka-python asks for a token on every connection; a signed token lasts 15 minutes, so one is
# reused until this close to its expiry.
_TOKEN_REFRESH_MARGIN_SECONDS = 60.0

# A property whose name contains one of these (after "_" -> ".") is shown as "***" by redact.
_SECRET_KEY_PARTS = ("password", "secret", "token", "sasl.oauthbearer.config", "ssl.key")
_REDACTED = "***"


def _protocol(config: Config) -> str:
    if config.auth == "none":
        if config.ssl_ca_location:
            logger.warning("--ssl-ca-location is ignored with --auth none (plaintext)")
        return "PLAINTEXT"
    if config.auth == "tls":
        return "SSL"
    return "SASL_SSL"


def _scram_credentials(config: Config) -> tuple[str, str]:
    # Config already refuses scram without both; this keeps the check next to the reveal.
    if not config.sasl_username or not config.sasl_password:
        raise ConfigError(f"--auth {config.auth} needs --sasl-username and a password")
    return config.sasl_username, config.sasl_password.reveal()


def confluent_security(config: Config) -> dict[str, Any]:
    """librdkafka properties for ``config.auth``; for ``iam``, an ``oauth_cb`` that signs tokens."""
    props: dict[str, Any] = {"security.protocol": _protocol(config)}
    if config.auth == "none":
        return props
    if config.ssl_ca_location:
        props["ssl.ca.location"] = config.ssl_ca_location
    if config.auth in ("scram-sha-256", "scram-sha-512"):
        username, password = _scram_credentials(config)
        props["sasl.mechanism"] = _SASL_MECHANISMS[config.auth]
        props["sasl.username"] = username
        props["sasl.password"] = password
    elif config.auth == "iam":
        props["sasl.mechanism"] = _SASL_MECHANISMS["iam"]
        props["oauth_cb"] = confluent_oauth_cb(aws_region())
    return props


def kafka_python_security(config: Config) -> dict[str, Any]:
    """kafka-python 3.x keyword arguments for ``config.auth``, as confluent_security chooses."""
    props: dict[str, Any] = {"security_protocol": _protocol(config)}
    if config.auth == "none":
        return props
    if config.ssl_ca_location:
        props["ssl_cafile"] = config.ssl_ca_location
    if config.auth in ("scram-sha-256", "scram-sha-512"):
        username, password = _scram_credentials(config)
        props["sasl_mechanism"] = _SASL_MECHANISMS[config.auth]
        props["sasl_plain_username"] = username
        props["sasl_plain_password"] = password
    elif config.auth == "iam":
        props["sasl_mechanism"] = _SASL_MECHANISMS["iam"]
        props["sasl_oauth_token_provider"] = _provider_class()(aws_region())
    return props


def _sign(region: str) -> tuple[str, int]:
    """A fresh MSK IAM token and its expiry in MILLISECONDS since the epoch, as the signer gives."""
    try:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    except (AttributeError, ValueError) as err:
        # The signer dereferences missing credentials (AttributeError on None) or rejects empty
        # ones (ValueError): either way no credentials were found.
        raise ConfigError(
            f"--auth iam found no AWS credentials to sign an MSK token for {region}: set "
            "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an instance "
            "or task role"
        ) from err
    except botocore.exceptions.BotoCoreError as err:
        raise InfrastructureError(
            f"--auth iam could not load AWS credentials to sign an MSK token for {region}: {err}"
        ) from err
    return str(token), int(expiry_ms)


class OAuthCallback:
    """An ``oauth_cb`` for confluent-kafka: it returns (token, expiry in SECONDS since the epoch).

    librdkafka calls it while the client is constructed and again before the token expires. The
    argument is ``sasl.oauthbearer.config`` (None when unset), not used: the region is all a token
    needs. confluent-kafka replaces an exception raised here by "OAuth token not set within 10
    seconds timeout" when it happens in the constructor, so the real one is logged and kept in
    ``error`` for the sink to raise instead.
    """

    def __init__(self, region: str) -> None:
        self.region = region
        self.error: ConfigError | InfrastructureError | None = None

    def __call__(self, _oauthbearer_config: Any) -> tuple[str, float]:
        region = self.region
        try:
            token, expiry_ms = _sign(region)
        except (ConfigError, InfrastructureError) as err:
            self.error = err
            logger.exception("could not sign an MSK IAM token for %s", region)
            raise
        self.error = None
        if expiry_ms / 1000.0 <= time.time():
            # librdkafka refuses such a token and says only "OAuth token not set": say why.
            logger.warning(
                "the MSK IAM token signed for %s expired at %s, before it was used: check this "
                "host's clock",
                region,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry_ms / 1000.0)),
            )
        return token, expiry_ms / 1000.0

    def __repr__(self) -> str:
        return f"OAuthCallback(region={self.region!r})"


def confluent_oauth_cb(region: str) -> Callable[[Any], tuple[str, float]]:
    """The ``oauth_cb`` for confluent-kafka and ``region`` (see OAuthCallback)."""
    return OAuthCallback(region)


@functools.cache
def _provider_class() -> type:
    """kafka-python's token provider class, defined on first use: importing kafka-python takes
    half a second, which a run with the confluent client should not pay."""
    from kafka.net.sasl.oauth import AbstractTokenProvider  # noqa: PLC0415

    class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # kafka-python is untyped
        """kafka-python's OAUTHBEARER token provider for MSK IAM; a token is reused until near
        its expiry."""

        def __init__(self, region: str) -> None:
            super().__init__()
            self.region = region
            self._lock = threading.Lock()
            self._token: str | None = None
            self._expires_at = 0.0  # seconds since the epoch

        def token(self) -> str:
            with self._lock:
                if (
                    self._token is None
                    or time.time() >= self._expires_at - _TOKEN_REFRESH_MARGIN_SECONDS
                ):
                    self._token, expiry_ms = _sign(self.region)
                    self._expires_at = expiry_ms / 1000.0
                return self._token

        def __repr__(self) -> str:
            return f"MskIamTokenProvider(region={self.region!r})"

    return MskIamTokenProvider


def __getattr__(name: str) -> Any:
    if name == "MskIamTokenProvider":
        return _provider_class()
    raise AttributeError(name)


def aws_region() -> str:
    """The region of the standard AWS configuration: AWS_DEFAULT_REGION or the profile's, else
    AWS_REGION (which boto3 does not read itself, though Lambda, ECS and the other SDKs set it).
    """
    try:
        region = boto3.session.Session().region_name or os.environ.get("AWS_REGION")
    except botocore.exceptions.BotoCoreError as err:
        raise ConfigError(f"--auth iam could not read the AWS configuration: {err}") from err
    if not region:
        raise ConfigError(
            "--auth iam signs tokens for a region, and the AWS configuration names none: "
            "set AWS_REGION (or AWS_DEFAULT_REGION, or region in the AWS profile) to the "
            "cluster's region"
        )
    return region


def redact(props: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of client properties that is safe to log: secrets as "***", callables by kind."""
    safe: dict[str, Any] = {}
    for key, value in props.items():
        name = str(key).lower().replace("_", ".")
        if any(part in name for part in _SECRET_KEY_PARTS):
            safe[key] = _REDACTED
        elif callable(value):
            safe[key] = "<callable>"
        else:
            safe[key] = value
    return safe
