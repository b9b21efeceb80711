"""MSK's three ways in, against the local stack's secure listeners (``local/stack``).

- TLS (MSK port 9094): the broker's certificate is checked against ``KAFKA_CA_LOCATION``;
- SASL/SCRAM-SHA-512 over TLS (9096): the user made when the storage was formatted;
- IAM (9098): SASL/OAUTHBEARER over TLS with the token aws-msk-iam-sasl-signer-python signs,
  checked by the broker's stand-in for MSK (local/kafka/src/.../MskIamLocalValidator.java:
  signature against the stack's AWS keys, action, host, expiry; no IAM policies).

A copy through each listener with each client lands every row once, in order (read back on the
plaintext listener with read_committed), and verify agrees through the same listener. A wrong
password, wrong AWS keys, an expired token and an untrusted CA each end the run at once with
exit 2 and a message naming the cause, well within --retry-seconds; no secret is ever printed.
"""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from pathlib import Path

import botocore.auth
import pytest
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from .conftest import Job, make_csv

METHODS = ["tls", "scram", "iam"]
# Far more than any of the failures below may take: they must not wait for retries.
RETRY_SECONDS = "120"
FAIL_WITHIN_SECONDS = 30.0
WRONG_PASSWORD = "wrong-password-do-not-print"
WRONG_SECRET_KEY = "wrong-secret-key-do-not-print"
# base64url of "https://kafka.": how every MSK IAM token starts.
TOKEN_PREFIX = "aHR0cHM6Ly9rYWZrYS4"
# Run in the CLI's process through PYTHONPATH: botocore signs with a clock 20 minutes slow, so
# the tokens it signs had expired (15 minutes) when they were made. A client host whose clock is
# behind does the same to real MSK.
SLOW_CLOCK = """\
import datetime

import botocore.auth

_now = botocore.auth.get_current_datetime


def _slow():
    return _now() - datetime.timedelta(minutes=20)


botocore.auth.get_current_datetime = _slow
"""


@pytest.fixture
def secure_env(stack: dict[str, str]) -> dict[str, str]:
    missing = [
        name
        for name in ("KAFKA_TLS_BOOTSTRAP_SERVERS", "KAFKA_CA_LOCATION", "KAFKA_SCRAM_PASSWORD")
        if name not in stack
    ]
    if missing:
        pytest.skip(f"the broker has no secure listeners here ({', '.join(missing)} not set)")
    return stack


def secure_job(job: Job, env: dict[str, str], method: str) -> Job:
    """``job``, pointed at the listener of ``method`` with the options MSK would need."""
    ca = ("--ssl-ca-location", env["KAFKA_CA_LOCATION"])
    if method == "tls":
        job.listener = env["KAFKA_TLS_BOOTSTRAP_SERVERS"]
        job.kafka_args = ("--auth", "tls", *ca)
    elif method == "scram":
        job.listener = env["KAFKA_SCRAM_BOOTSTRAP_SERVERS"]
        job.kafka_args = (
            "--auth",
            "scram-sha-512",
            "--sasl-username",
            env["KAFKA_SCRAM_USERNAME"],
            *ca,
        )
    else:
        job.listener = env["KAFKA_IAM_BOOTSTRAP_SERVERS"]
        job.kafka_args = ("--auth", "iam", *ca)
    return job


def scram_env(env: dict[str, str], password: str | None = None) -> dict[str, str]:
    return {"CSV_TO_KAFKA_SASL_PASSWORD": password or env["KAFKA_SCRAM_PASSWORD"]}


def assert_no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output, "a secret was printed"
    assert TOKEN_PREFIX not in output, "an MSK IAM token was printed"


@pytest.mark.parametrize("method", METHODS)
def test_copy_through_each_secure_listener_is_exact(
    job: Job, secure_env: dict[str, str], method: str
) -> None:
    secure_job(job, secure_env, method)
    extra = scram_env(secure_env) if method == "scram" else {}
    job.put(make_csv(3_000))

    result = job.run("--log-level", "debug", env=extra)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "complete: 3000 rows" in result.stdout
    job.assert_exact()
    check = job.verify(env=extra)
    assert check.returncode == 0, check.stdout + check.stderr[-3000:]
    assert "missing 0, duplicated 0, out of order 0" in check.stdout
    assert_no_secret(result, secure_env["KAFKA_SCRAM_PASSWORD"])
    assert_no_secret(check, secure_env["KAFKA_SCRAM_PASSWORD"])


def run_refused(job: Job, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    job.put(make_csv(10))
    started = time.monotonic()
    result = job.run(env={"CSV_TO_KAFKA_RETRY_SECONDS": RETRY_SECONDS, **env}, timeout=180)
    return result, time.monotonic() - started


def assert_refused(
    job: Job, result: subprocess.CompletedProcess[str], elapsed: float, cause: str
) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    assert cause in result.stderr, result.stderr[-3000:]
    assert elapsed < FAIL_WITHIN_SECONDS, f"took {elapsed:.1f} s"
    assert job.records() == []


def test_wrong_scram_password_ends_at_once(job: Job, secure_env: dict[str, str]) -> None:
    secure_job(job, secure_env, "scram")

    result, elapsed = run_refused(job, scram_env(secure_env, WRONG_PASSWORD))

    assert_refused(job, result, elapsed, "the broker refused the credentials")
    assert "SCRAM-SHA-512" in result.stderr
    assert_no_secret(result, WRONG_PASSWORD, secure_env["KAFKA_SCRAM_PASSWORD"])


def test_verify_with_a_wrong_scram_password_ends_at_once(
    job: Job, secure_env: dict[str, str]
) -> None:
    secure_job(job, secure_env, "scram")
    job.put(make_csv(10))
    started = time.monotonic()

    check = job.verify(env=scram_env(secure_env, WRONG_PASSWORD))

    assert check.returncode == 2, check.stderr[-3000:]
    assert "the broker refused the credentials" in check.stderr
    assert time.monotonic() - started < FAIL_WITHIN_SECONDS
    assert_no_secret(check, WRONG_PASSWORD)


def test_wrong_aws_secret_key_ends_at_once(job: Job, secure_env: dict[str, str]) -> None:
    """moto takes any key; the IAM listener takes only the stack's."""
    secure_job(job, secure_env, "iam")

    result, elapsed = run_refused(job, {"AWS_SECRET_ACCESS_KEY": WRONG_SECRET_KEY})

    assert_refused(job, result, elapsed, "the broker refused the credentials")
    assert "signature does not match" in result.stderr
    assert_no_secret(result, WRONG_SECRET_KEY)


def test_expired_iam_token_ends_at_once(
    job: Job, secure_env: dict[str, str], tmp_path: Path
) -> None:
    secure_job(job, secure_env, "iam")
    (tmp_path / "sitecustomize.py").write_text(SLOW_CLOCK)

    result, elapsed = run_refused(job, {"PYTHONPATH": str(tmp_path)})

    assert_refused(job, result, elapsed, "the broker refused the credentials")
    assert "expired" in result.stderr
    assert_no_secret(result)


def test_untrusted_ca_ends_at_once(job: Job, secure_env: dict[str, str], tmp_path: Path) -> None:
    """A CA bundle that did not sign the broker's certificate: exit 2, whatever the method."""
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(tmp_path / "other-ca.key"), "-out", str(other_ca),
            "-subj", "/CN=not the stack's CA",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    secure_job(job, secure_env, "tls")
    job.kafka_args = ("--auth", "tls", "--ssl-ca-location", str(other_ca))

    result, elapsed = run_refused(job, {})

    assert_refused(job, result, elapsed, "TLS certificate is not trusted")
    assert "--ssl-ca-location" in result.stderr


def sign(region: str, *, minutes_slow: int = 0) -> str:
    """An MSK IAM token from aws-msk-iam-sasl-signer-python, signed ``minutes_slow`` ago."""
    real_now = botocore.auth.get_current_datetime
    try:
        botocore.auth.get_current_datetime = lambda: real_now() - timedelta(minutes=minutes_slow)
        token, _expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    finally:
        botocore.auth.get_current_datetime = real_now
    return str(token)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "the token expired at"),
        ("other region", "signed for host kafka.eu-west-1.amazonaws.com"),
        ("other secret key", "the signature does not match"),
        ("not a token", "not a base64url-encoded URL"),
    ],
)
def test_the_iam_listener_refuses_what_msk_would(
    secure_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, case: str, reason: str
) -> None:
    """The broker's own check, with a client that hides nothing: librdkafka is told each token
    is good for ten more minutes, so only the broker can refuse it."""
    if case == "other secret key":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET_KEY)
    token = {
        "expired": lambda: sign("us-east-1", minutes_slow=20),
        "other region": lambda: sign("eu-west-1"),
        "other secret key": lambda: sign("us-east-1"),
        "not a token": lambda: "bm90IGEgdG9rZW4",
    }[case]()
    errors: list[str] = []
    admin = AdminClient(
        {
            "bootstrap.servers": secure_env["KAFKA_IAM_BOOTSTRAP_SERVERS"],
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": secure_env["KAFKA_CA_LOCATION"],
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": lambda _config: (token, time.time() + 600),
            "error_cb": lambda err: errors.append(err.str()),
        }
    )
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        with pytest.raises(KafkaException):  # the metadata never comes
            admin.list_topics(timeout=0.5)
        admin.poll(0)  # serves error_cb
    assert any(reason in error for error in errors), errors
