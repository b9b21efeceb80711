"""Fixtures for the deployment tests: the parsed Terraform, the tools, and moto as AWS.

The structural tests read the Terraform with python-hcl2 and need nothing else. The linters
(tofu, checkov, hadolint, shellcheck) are found on ``DEPLOY_TOOLS_BIN`` (``make deploy-tools``
installs them there); where one is missing its test is skipped, unless ``DEPLOY_CHECK_STRICT=1``
(as ``make deploy-check`` sets), which turns the skip into a failure. The script tests run the
real AWS CLI of the venv against the moto server of the session's ``stack`` fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest

from tests.conftest import environ_set

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "modules"
STACKS = {
    "option1-ecs-fargate": ROOT / "option1-ecs-fargate",
    "option2-aws-batch": ROOT / "option2-aws-batch",
    "option3-ec2-spot": ROOT / "option3-ec2-spot",
}
TOOLS_BIN = Path(
    os.environ.get("DEPLOY_TOOLS_BIN", Path.home() / ".cache" / "csv-to-kafka" / "bin")
).expanduser()
VENV_BIN = Path(sys.executable).parent


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and labels: drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@dataclass
class TerraformDir:
    """One Terraform directory, parsed: declarations by kind, and the raw text of every file."""

    path: Path
    blocks: dict[str, list[dict[str, Any]]]
    text: dict[str, str]

    def named(self, kind: str) -> dict[str, dict[str, Any]]:
        """``variable``/``output``/``module`` blocks by name."""
        out: dict[str, dict[str, Any]] = {}
        for block in self.blocks.get(kind, []):
            for name, body in block.items():
                out[unquote(name)] = body
        return out

    def typed(self, kind: str) -> dict[str, dict[str, Any]]:
        """``resource``/``data`` blocks as {"aws_x.name": body}."""
        out: dict[str, dict[str, Any]] = {}
        for block in self.blocks.get(kind, []):
            for rtype, named in block.items():
                for name, body in named.items():
                    out[f"{unquote(rtype)}.{unquote(name)}"] = body
        return out

    def locals(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for block in self.blocks.get("locals", []):
            out.update({k: v for k, v in block.items() if not k.startswith("__")})
        return out

    @property
    def all_text(self) -> str:
        return "\n".join(self.text.values())


def parse_dir(path: Path) -> TerraformDir:
    blocks: dict[str, list[dict[str, Any]]] = {}
    text: dict[str, str] = {}
    for tf in sorted(path.glob("*.tf")):
        text[tf.name] = tf.read_text()
        with tf.open() as handle:
            parsed = hcl2.load(handle)
        for kind, values in parsed.items():
            if kind.startswith("__"):
                continue
            blocks.setdefault(kind, []).extend(values)
    return TerraformDir(path=path, blocks=blocks, text=text)


@pytest.fixture(scope="session")
def modules() -> dict[str, TerraformDir]:
    return {path.name: parse_dir(path) for path in sorted(MODULES.iterdir()) if path.is_dir()}


@pytest.fixture(scope="session")
def stacks() -> dict[str, TerraformDir]:
    return {name: parse_dir(path / "terraform") for name, path in STACKS.items()}


def tool(name: str) -> str:
    """The path of a linter, from DEPLOY_TOOLS_BIN, the venv or PATH; skip (or fail) if absent."""
    for candidate in (TOOLS_BIN / name, VENV_BIN / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run `make deploy-tools`"
    if os.environ.get("DEPLOY_CHECK_STRICT") == "1":
        pytest.fail(message)
    pytest.skip(message)


# --- moto as AWS ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aws_env(stack: dict[str, str]) -> dict[str, str]:
    """Environment for the deployment scripts: the venv's aws CLI first on PATH, moto as AWS."""
    return {
        **os.environ,
        **stack,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_PAGER": "",
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "2",
    }


@dataclass
class Network:
    """What the stacks' Terraform would find or create in moto: a VPC, a subnet, a group."""

    vpc_id: str
    subnet_id: str
    security_group_id: str


@pytest.fixture(scope="session")
def network(aws_env: dict[str, str]) -> Network:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    # moto's Fargate tasks name their network interface from the VPC's DNS host names.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=f"csv-to-kafka-{uuid.uuid4().hex[:8]}",
        Description="csv-to-kafka: egress only",
        VpcId=vpc,
    )["GroupId"]
    return Network(vpc_id=vpc, subnet_id=subnet, security_group_id=group)


@pytest.fixture(scope="session")
def batch_without_docker(aws_env: dict[str, str]) -> Iterator[None]:
    """moto's Batch runs jobs in Docker by default; its simple backend marks them done instead.

    Set through the moto server's config endpoint (the server-mode equivalent of
    ``mock_aws(config={"batch": {"use_docker": False}})``), and restored afterwards.
    """
    url = f"{aws_env['AWS_ENDPOINT_URL']}/moto-api/config"

    def set_docker(value: bool) -> None:
        body = json.dumps({"batch": {"use_docker": value}}).encode()
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    set_docker(False)
    yield
    set_docker(True)


def write_outputs(path: Path, values: dict[str, Any]) -> Path:
    """A file in the form of `terraform output -json`."""
    path.write_text(
        json.dumps(
            {k: {"value": v, "type": "dynamic", "sensitive": False} for k, v in values.items()}
        )
    )
    return path


# --- the image, built by local/engine ----------------------------------------------------------


@dataclass
class BuiltImage:
    """The tags ``local/engine image`` built (app/Dockerfile's two targets) on its engine."""

    tag: str
    array_tag: str

    def docker(self, *args: str) -> str:
        """The docker client against the engine of ``DOCKER_HOST``; its stdout."""
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
        return result.stdout

    def inspect(self, tag: str) -> dict[str, Any]:
        inspected: list[dict[str, Any]] = json.loads(self.docker("image", "inspect", tag))
        return inspected[0]


@pytest.fixture(scope="session")
def image(stack: dict[str, str]) -> Iterator[BuiltImage]:
    """Build app/Dockerfile once per session with ``local/engine image`` (the same step as
    ``make image``; layers are cached, so after ``make image`` it takes seconds), and point
    ``docker`` and testcontainers at that engine. Where no engine can be had (not root, no apt),
    the image tests are skipped, or fail under ``DEPLOY_CHECK_STRICT=1``."""
    engine = str(ROOT / "local" / "engine")
    built = subprocess.run([engine, "image"], capture_output=True, text=True, timeout=3600)
    if built.returncode != 0:
        message = f"local/engine image failed:\n{built.stderr[-3000:]}"
        if os.environ.get("DEPLOY_CHECK_STRICT") == "1":
            pytest.fail(message)
        pytest.skip(message)
    exported = subprocess.run([engine, "env"], capture_output=True, text=True, check=True).stdout
    env = {"TESTCONTAINERS_RYUK_DISABLED": "true"}  # no registry serves the reaper's image
    for line in exported.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value
    with environ_set(env):
        tag = os.environ.get("CSV_TO_KAFKA_IMAGE", "csv-to-kafka:dev")
        yield BuiltImage(tag=tag, array_tag=f"{tag}-array")


# --- the image, without Docker (the spot script's job processor) -------------------------------


@dataclass
class ImageVenv:
    """A venv built the way app/Dockerfile builds /opt/csv-to-kafka: the lock's wheels, then the
    package without dependencies. Its bin directory stands for the image's PATH."""

    bin: Path

    def entrypoint(self, dockerfile_command: list[str]) -> list[str]:
        """An exec-form ENTRYPOINT + CMD, resolved on the image's PATH."""
        program, *args = dockerfile_command
        resolved = self.bin / program
        return [str(resolved) if resolved.exists() else program, *args]


@pytest.fixture(scope="session")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> ImageVenv:
    import subprocess
    import venv

    base = tmp_path_factory.mktemp("image")
    # The build stage sees only what it COPYs: the same files, in a directory of their own.
    context = base / "src"
    (context / "app").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copy(ROOT / "app" / "requirements.lock", context / "app" / "requirements.lock")
    shutil.copytree(
        ROOT / "app" / "csv_to_kafka",
        context / "app" / "csv_to_kafka",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"),
    )
    root = base / "opt-csv-to-kafka"
    venv.EnvBuilder(with_pip=True).create(root)
    pip = [str(root / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    steps = [
        # The same steps as the Dockerfile's build stage.
        [*pip, "install", "--only-binary=:all:", "--requirement", "app/requirements.lock"],
        [*pip, "install", "--no-deps", "--no-build-isolation", "."],
        [str(root / "bin" / "python"), "-c", "import csv_to_kafka._speedups"],
        [*pip, "check"],
    ]
    for step in steps:
        result = subprocess.run(step, cwd=context, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{' '.join(step)}:\n{result.stdout}\n{result.stderr}"
    return ImageVenv(bin=root / "bin")
