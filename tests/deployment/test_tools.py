"""The linters over the deployment code: tofu fmt, checkov, hadolint, shellcheck, ruff.

Each tool comes from ``make deploy-tools`` (DEPLOY_TOOLS_BIN); without it the test is skipped,
or fails under DEPLOY_CHECK_STRICT=1 (``make deploy-check``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MODULES, ROOT, STACKS, tool

SCRIPTS = sorted(p for stack in STACKS.values() for p in stack.glob("*.sh"))
# Sourced by the stacks' scripts, not run: no shebang, not executable.
LIBRARIES = sorted((ROOT / "scripts").glob("*.sh"))
TERRAFORM_DIRS = [MODULES, *STACKS.values()]
# The engine and the broker image of the local stack (make image, make kafka-image).
ENGINE_SCRIPTS = [ROOT / "local" / "engine", ROOT / "local" / "kafka" / "container-start"]
DOCKERFILES = [ROOT / "app" / "Dockerfile", ROOT / "local" / "kafka" / "Dockerfile"]


def run(*args: str, timeout: float = 300, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_every_script_is_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in SCRIPTS}
    assert names == {
        "option1-ecs-fargate/deploy.sh",
        "option2-aws-batch/deploy.sh",
        "option2-aws-batch/submit-job.sh",
        "option3-ec2-spot/launch-spot.sh",
        "option3-ec2-spot/user-data.sh",
    }
    for script in SCRIPTS:
        text = script.read_text()
        assert text.startswith("#!"), script
        assert "set -euo pipefail" in text, script
        assert os.access(script, os.X_OK), f"{script} is not executable"
    assert [p.relative_to(ROOT).as_posix() for p in LIBRARIES] == ["scripts/deploy-common.sh"]
    for library in LIBRARIES:
        assert library.read_text().startswith("# shellcheck shell=bash"), library


@pytest.mark.parametrize(
    "script", SCRIPTS + LIBRARIES + ENGINE_SCRIPTS, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_shellcheck(script: Path) -> None:
    result = run(tool("shellcheck"), "--severity=style", "--external-sources", str(script))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "script",
    [p for p in SCRIPTS if p.name != "user-data.sh"],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_scripts_document_their_skip_modes(script: Path) -> None:
    result = run(str(script), "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    for option in ("--skip-build", "--skip-apply", "--outputs", "--help"):
        assert option in result.stdout, f"{script.name} --help does not mention {option}"


def test_user_data_prints_its_settings_without_powering_off() -> None:
    result = run("bash", str(STACKS["option3-ec2-spot"] / "user-data.sh"), "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "SPOT_JOB_SHUTDOWN" in result.stdout
    assert "powering off" not in result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_hadolint(dockerfile: Path) -> None:
    result = run(tool("hadolint"), "--failure-threshold", "style", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


def tofu_env() -> dict[str, str]:
    # The machine may point TF_CLI_CONFIG_FILE at a missing file, which tofu warns about.
    return {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}


@pytest.mark.parametrize("path", TERRAFORM_DIRS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_tofu_fmt(path: Path) -> None:
    result = run(tool("tofu"), "fmt", "-check", "-recursive", "-diff", str(path), env=tofu_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_tofu_is_a_real_binary() -> None:
    result = run(tool("tofu"), "version", env=tofu_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OpenTofu v1."), result.stdout


def test_checkov_passes_with_only_reasoned_skips() -> None:
    result = run(
        tool("checkov"),
        "--directory",
        ".",
        "--framework",
        "terraform",
        "dockerfile",
        "--skip-path",
        r"\.venv",
        "--skip-path",
        "local/",
        "--skip-download",
        "--quiet",
        "--output",
        "json",
        timeout=600,
        env={**os.environ, "LOG_LEVEL": "ERROR", "BC_SKIP_MAPPING": "TRUE"},
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    frameworks = {report.get("check_type") for report in reports}
    assert {"terraform", "dockerfile"} <= frameworks, frameworks
    passed = sum(report["summary"]["passed"] for report in reports)
    assert passed > 100, f"checkov passed only {passed} checks: did it read the Terraform?"


def test_every_checkov_skip_gives_a_reason() -> None:
    files = [
        *ROOT.glob("modules/**/*.tf"),
        *ROOT.glob("option*/terraform/*.tf"),
        ROOT / "app/Dockerfile",
    ]
    skips = [
        (path, match)
        for path in files
        for match in re.finditer(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?", path.read_text())
    ]
    assert skips, "expected the documented skips"
    for path, match in skips:
        reason = (match.group(2) or "").strip()
        assert len(reason) > 20, f"{path}: {match.group(1)} skipped without a reason"


def test_ruff_on_the_batch_entrypoint() -> None:
    ruff = str(Path(sys.executable).with_name("ruff"))
    result = run(ruff, "check", "option2-aws-batch", "tests/deployment")
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(ruff, "format", "--check", "option2-aws-batch", "tests/deployment")
    assert result.returncode == 0, result.stdout + result.stderr
