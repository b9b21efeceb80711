"""Item 13: security scans and secrets.

- bandit on the package: zero findings, except the lines listed in ``BANDIT_ACCEPTED`` with
  the reason each is not a vulnerability (the package is not ours to annotate with ``# nosec``);
- pip-audit on the pinned dependencies of the image (app/requirements.lock): zero known
  vulnerabilities, or a skip that says which pins could not be audited and why; the same PyPI
  advisories read per pin from each project's page, where pip-audit cannot reach them;
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

# Each finding bandit reports today, keyed by (test id, file, the flagged source line), with why
# it is not a vulnerability: the skip reason sits next to the skip. The package is not annotated
# with ``# nosec`` (app/ belongs to the product's engineers; its ruff ``noqa`` comments give the
# same reasons). Keyed by the line's text rather than its number, so that edits elsewhere in the
# file keep the reason; any other finding, or one of these lines changed, fails the test.
BANDIT_ACCEPTED = {
    (
        "B311",
        "_retry.py",
        "return min(remaining, random.uniform(delay / 2, delay))  # noqa: S311 (not crypto)",
    ): "random.uniform jitters retry back-offs; nothing secret depends on it",
    (
        "B105",
        "config.py",
        '"sasl_password": "CSV_TO_KAFKA_SASL_PASSWORD",',
    ): "the name of the environment variable that holds the password, not a password",
    (
        "B404",
        "_parse_process.py",
        "import subprocess",
    ): "starts the parser process: this interpreter running this package's own module",
    (
        "B603",
        "_parse_process.py",
        "self._child = subprocess.Popen(  # noqa: S603 (our own module, with our interpreter)",
    ): "argv is [sys.executable, '-m', the package's own module, two integers]; no shell and "
    "nothing from the CSV or the configuration",
    (
        "B102",
        "record.py",
        'exec(compile(code, "<csv_to_kafka.record>", "exec"), namespace)  # noqa: S102 (see above)',
    ): "compiles the row encoder; header names enter its source only through repr(), and "
    "test_header_names_made_of_code_stay_data feeds it hostile names",
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
    assert report["metrics"]["_totals"]["loc"] > 1000, "bandit scanned (almost) nothing"
    findings = []
    for r in report["results"]:
        path = Path(r["filename"])
        line = path.read_text().splitlines()[r["line_number"] - 1].strip()
        findings.append((r["test_id"], path.name, line))
    unexplained = [f for f in findings if f not in BANDIT_ACCEPTED]
    assert not unexplained, f"bandit: {unexplained}"
    print(f"bandit: {len(findings)} findings, each accepted with its reason: {findings}")


def _pins() -> dict[str, str]:
    """app/requirements.lock as {name: version}."""
    if not LOCK.exists():
        return {}
    pins = {}
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip()] = version.split(";")[0].strip()
    return pins


def test_pip_audit_finds_no_known_vulnerability_in_the_pinned_dependencies() -> None:
    """pip-audit over app/requirements.lock (the image's pins), against PyPI's advisories.

    pip-audit asks PyPI for each pinned release (``/pypi/NAME/VERSION/json``); a pin it cannot
    look up is not audited, and pip-audit still prints "No known vulnerabilities found" and exits
    0. This test does not pass in that case: it skips and says how many pins were not audited
    and why. (On this workplace's network the per-release pages answer 404 and osv.dev does not
    resolve, so pip-audit audits none; test_pypi_advisories_of_the_pinned_release below reads
    the same advisories from each project's page instead.)"""
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
    assert dependencies, f"pip-audit said nothing ({result.returncode}): {result.stderr[-2000:]}"
    vulnerable = [
        (d["name"], d["version"], v["id"]) for d in dependencies for v in d.get("vulns", [])
    ]
    assert not vulnerable, f"known vulnerabilities in the pinned dependencies: {vulnerable}"
    not_audited = [d for d in dependencies if "skip_reason" in d]
    if not_audited:
        pytest.skip(
            f"pip-audit could not audit {len(not_audited)} of {len(dependencies)} pins: PyPI's "
            f"vulnerability data for the pinned releases is unreachable from here (first: "
            f"{not_audited[0]['skip_reason']})"
        )
    print(f"pip-audit: {len(dependencies)} pins audited, no known vulnerability")


def _pypi_project(name: str) -> dict[str, Any] | str:
    """PyPI's JSON page of a project, or why it could not be read."""
    url = f"https://pypi.org/pypi/{urllib.parse.quote(name)}/json"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            page: dict[str, Any] = json.load(response)
    except OSError as err:
        return f"{url}: {err}"
    return page


@pytest.mark.parametrize(("name", "version"), sorted(_pins().items()))
def test_pypi_advisories_of_the_pinned_release(name: str, version: str) -> None:
    """The advisories pip-audit would have used, read from the project's own PyPI page, whose
    ``vulnerabilities`` describe its latest release: a pin that is that release is audited; an
    older pin cannot be audited this way and is skipped, saying so."""
    page = _pypi_project(name)
    if isinstance(page, str):
        pytest.skip(f"{name}=={version} not audited: PyPI unreachable ({page})")
    latest = page["info"]["version"]
    if latest != version:
        pytest.skip(
            f"{name}=={version} not audited: PyPI's page here describes only the latest release, "
            f"{latest}, and the pinned release's page is not served"
        )
    assert "vulnerabilities" in page, f"PyPI's page of {name} carries no advisory data"
    advisories = [v for v in page["vulnerabilities"] if not v.get("withdrawn")]
    assert not advisories, f"{name}=={version}: {advisories}"


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
    pytest.param("scram-sha-512", "confluent", id="scram-confluent"),
    pytest.param("iam", "confluent", id="iam-confluent"),
    # kafka-python backs off for 30 s before it gives up on the broker: the full run only.
    pytest.param(
        "scram-sha-256", "kafka-python", id="scram-kafka-python", marks=pytest.mark.torture
    ),
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
