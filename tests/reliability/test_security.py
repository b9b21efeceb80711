"""Item 13: security scans and secrets.

- bandit on the package: zero findings, except the ones listed in ``BANDIT_ACCEPTED`` with the
  reason each is not a vulnerability (the package is not ours to annotate with ``# nosec``);
- pip-audit on the pinned dependencies of the image (app/requirements.lock): zero known
  vulnerabilities;
- no secret in the logs: a SASL password, AWS credentials and the MSK IAM token never appear in
  the processor's output (DEBUG, librdkafka's own debug logging on) nor in its checkpoint;
- header names made of Python code stay data (the encoder is generated with ``exec``).

Checkov and hadolint belong to the deployment checks (``make deploy-check``).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import clients
from .faults import ROOT, FaultJob
from .oracle import Expected, Oracle

BIN = Path(sys.executable).parent
PACKAGE = ROOT / "app" / "csv_to_kafka"
LOCK = ROOT / "app" / "requirements.lock"

# (test id, file): why the finding is not a vulnerability. Keyed by file, not line, so that
# edits elsewhere in the file do not invalidate the reason; a new finding of the same kind in
# the same file still passes, so keep these few and specific.
BANDIT_ACCEPTED = {
    ("B311", "_retry.py"): "random.uniform jitters retry back-offs; nothing secret depends on it",
    ("B105", "config.py"): "'CSV_TO_KAFKA_SASL_PASSWORD' is the name of the environment "
    "variable that holds the password, not a password",
    ("B102", "record.py"): "exec compiles the row encoder; header names enter its source only "
    "through repr(), and test_header_names_made_of_code_stay_data feeds it hostile names",
}


def test_bandit_finds_nothing_unexplained() -> None:
    result = subprocess.run(
        [str(BIN / "bandit"), "--recursive", str(PACKAGE), "--format", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    findings = [
        (r["test_id"], Path(r["filename"]).name, r["line_number"], r["issue_text"])
        for r in report["results"]
    ]
    unexplained = [f for f in findings if (f[0], f[1]) not in BANDIT_ACCEPTED]
    assert not unexplained, f"bandit: {unexplained}"
    print(f"bandit: {len(findings)} findings, each accepted: {findings}")


def _pypi_vulnerabilities(name: str, version: str) -> list[dict[str, Any]] | None:
    """PyPI's advisories for ``name==version`` from its JSON API, or None when that API has no
    answer for that release here (this network's PyPI serves only the latest release's page)."""
    opener = urllib.request.build_opener()
    url = f"https://pypi.org/pypi/{urllib.parse.quote(name)}/json"
    try:
        with opener.open(url, timeout=30) as response:
            data = json.load(response)
    except OSError:
        return None
    if data["info"]["version"] != version:
        return None
    return list(data.get("vulnerabilities") or [])


def test_pip_audit_finds_no_known_vulnerability_in_the_pinned_dependencies() -> None:
    """pip-audit over app/requirements.lock. Where it cannot reach PyPI's per-release pages (the
    registry mirror of this network serves only each project's latest page), the same advisory
    data is read from that latest page when it is the pinned release; a pin that is neither is
    reported as not audited."""
    if not LOCK.exists():
        pytest.skip("no app/requirements.lock: nothing pinned to audit")
    result = subprocess.run(
        [
            str(BIN / "pip-audit"),
            "--requirement",
            str(LOCK),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout or "{}")
    dependencies = report.get("dependencies", [])
    assert dependencies, f"pip-audit said nothing: {result.stderr[-2000:]}"
    pins = dict(
        line.split("==", 1)
        for line in LOCK.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    vulnerable, audited, not_audited = [], [], []
    for dependency in dependencies:
        name = dependency["name"]
        if "skip_reason" not in dependency:
            audited.append(name)
            vulnerable += [(name, dependency["version"], v["id"]) for v in dependency["vulns"]]
            continue
        version = pins.get(name, "").split(";")[0].strip()
        advisories = _pypi_vulnerabilities(name, version)
        if advisories is None:
            not_audited.append(f"{name}=={version}")
            continue
        audited.append(name)
        vulnerable += [(name, version, v.get("id")) for v in advisories if not v.get("withdrawn")]
    assert not vulnerable, f"known vulnerabilities in the pinned dependencies: {vulnerable}"
    print(f"audited {len(audited)} pins; not audited (no advisory data here): {not_audited}")
    assert audited, f"no pin could be audited from this network: {not_audited}"


SECRET_PASSWORD = "pw-9f1c-DO-NOT-LOG-7e2a"  # a marker to look for, not a credential
SECRET_KEY = "sk-44be-DO-NOT-LOG-0d9c"
SESSION_TOKEN = "st-8a21-DO-NOT-LOG-c3f0"
# The start of an MSK IAM token: base64url of "https://kafka." (the presigned URL it encodes).
IAM_TOKEN_PREFIX = base64.urlsafe_b64encode(b"https://kafka.").decode().rstrip("=")[:16]
SECRETS = {
    "the SASL password": SECRET_PASSWORD,
    "the AWS secret key": SECRET_KEY,
    "the AWS session token": SESSION_TOKEN,
    "the session token, URL-encoded": urllib.parse.quote(SESSION_TOKEN, safe=""),
    "an MSK IAM token": IAM_TOKEN_PREFIX,
}


AUTH_CASES = [
    pytest.param("scram-sha-256", "kafka-python", id="scram-kafka-python"),
    pytest.param("iam", "confluent", id="iam-confluent"),
    pytest.param("scram-sha-512", "confluent", id="scram-confluent", marks=pytest.mark.torture),
    pytest.param("iam", "kafka-python", id="iam-kafka-python", marks=pytest.mark.torture),
]


@pytest.mark.parametrize(("auth", "client"), AUTH_CASES)
def test_no_secret_is_ever_logged(
    fault_job: Callable[..., FaultJob], auth: str, client: str
) -> None:
    """The password and the AWS credentials are set; the run logs at DEBUG (librdkafka's debug
    contexts on for the producer). The local broker speaks no SASL: the run gets as far as
    building every client configuration, signing an IAM token (confluent asks for one when its
    client starts) and failing to connect, then exits 4. No secret may be in its output, nor in
    the error stored with the checkpoint."""
    job = fault_job(client, data=b"id,name\n1,a\n")
    extra = ["--auth", auth, "--log-level", "DEBUG", "--retry-seconds", "5"]
    if auth.startswith("scram"):
        extra += ["--sasl-username", "csv-to-kafka-user"]
    if client == "confluent":
        extra += ["-X", "debug=security,broker,conf,protocol,generic"]
    run = job.launch(
        *extra,
        env={
            "CSV_TO_KAFKA_SASL_PASSWORD": SECRET_PASSWORD,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_SESSION_TOKEN": SESSION_TOKEN,
        },
    )
    code = run.wait(180)
    out = run.output()
    assert code in (2, 4), f"exit {code}:\n{out[-3000:]}"
    assert len(out) > 1000, f"too little output to judge:\n{out}"
    checkpoint = json.dumps(job.checkpoint() or {})
    for what, secret in SECRETS.items():
        assert secret not in out, f"{what} is in the log:\n{_around(out, secret)}"
        assert secret not in checkpoint, f"{what} is in the checkpoint: {checkpoint}"


def _around(text: str, needle: str, width: int = 300) -> str:
    at = text.find(needle)
    return text[max(0, at - width) : at + width]


@pytest.mark.parametrize("client", clients(ci="confluent"))
def test_header_names_made_of_code_stay_data(
    fault_job: Callable[..., FaultJob], watch: Callable[..., Oracle], client: str
) -> None:
    corpus = ROOT / "tests" / "data" / "hostile"
    marker = Path("/tmp/csv-to-kafka-pwned")
    marker.unlink(missing_ok=True)
    data = (corpus / "header_names_like_code.csv").read_bytes()
    job = fault_job(client, data=data)
    oracle = watch(job, "12 hostile input", expected=Expected(data, job.source))
    oracle.injected("copy: header names made of code")
    run = job.launch()
    code = run.wait(120)
    oracle.ran(code)
    assert code == 0, run.output()[-3000:]
    assert not marker.exists(), "a header name ran as code"
    oracle.finish()
