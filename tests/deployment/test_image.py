"""The image without Docker: its lock, its entrypoints, run the way a container runs them.

``image_venv`` installs exactly what the Dockerfile's build stage installs (the lock's wheels,
then the package without dependencies, from a copy of only the files it COPYs); each test runs
an exec-form ENTRYPOINT + CMD of the Dockerfile from it, configured only by environment
variables, against the local stack.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT, ImageVenv
from .helpers import committed_lines, create_checkpoint_table, data_lines, make_csv
from .requirements_lock import BUILD_PINS, LOCK, runtime_closure

TABLE = "csv-to-kafka-deployment-checkpoints"


def stage_command(target: str) -> list[str]:
    """ENTRYPOINT + CMD of a Dockerfile stage, both exec form."""
    text = (ROOT / "app" / "Dockerfile").read_text()
    stage = re.split(r"^FROM .*$", text.split(f" AS {target}\n", 1)[1], flags=re.MULTILINE)[0]
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", stage, re.MULTILINE)
    cmd = re.search(r"^CMD (\[.*\])$", stage, re.MULTILINE)
    assert entrypoint, f"stage {target} has no exec-form ENTRYPOINT"
    assert cmd, f"stage {target} has no exec-form CMD"
    return [*json.loads(entrypoint.group(1)), *json.loads(cmd.group(1))]


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_every_runtime_dependency() -> None:
    pins = lock_pins()
    closure = runtime_closure()
    missing = set(closure) - set(pins)
    assert not missing, f"app/requirements.lock lacks {missing}: run `make docker-lock`"
    extra = set(pins) - set(closure) - set(BUILD_PINS)
    assert not extra, f"app/requirements.lock pins what nothing needs: {extra}"


def test_the_lock_satisfies_the_packages_requirements() -> None:
    import tomllib

    pins = lock_pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for text in project["project"]["dependencies"]:
        req = Requirement(text)
        pinned = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(pinned, prereleases=True), f"{req} but the lock has {pinned}"
    backend = project["build-system"]["requires"]
    for text in backend:
        req = Requirement(text)
        assert req.specifier.contains(pins[canonicalize_name(req.name)]), text


def container_env(stack: dict[str, str], **settings: str) -> dict[str, str]:
    """What the task definition gives the container: the CSV_TO_KAFKA_* settings of
    modules/core (create-table off, JSON progress) and AWS' own; nothing else of this process."""
    env = {
        "PATH": os.environ["PATH"],
        "AWS_REGION": stack["AWS_REGION"],
        "AWS_DEFAULT_REGION": stack["AWS_REGION"],
        "AWS_ENDPOINT_URL": stack["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CSV_TO_KAFKA_BOOTSTRAP_SERVERS": stack["KAFKA_BOOTSTRAP_SERVERS"],
        "CSV_TO_KAFKA_CHECKPOINT_TABLE": TABLE,
        "CSV_TO_KAFKA_CREATE_TABLE": "false",
        "CSV_TO_KAFKA_CREATE_TOPIC": "true",
        "CSV_TO_KAFKA_AUTH": "none",
        "CSV_TO_KAFKA_PROGRESS": "json",
        "CSV_TO_KAFKA_METRICS_INTERVAL": "5",
        "CSV_TO_KAFKA_RETRY_SECONDS": "60",
    }
    env.update(settings)
    return env


@pytest.fixture(scope="module")
def bucket(stack: dict[str, str]) -> str:
    name = f"deploy-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    create_checkpoint_table(TABLE)
    return name


def put(bucket: str, key: str, data: bytes) -> str:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def run_in_image(
    image_venv: ImageVenv, target: str, env: dict[str, str], command: list[str] | None = None
) -> Any:
    """ENTRYPOINT + CMD of the target, or ENTRYPOINT + ``command`` (a task's command override)."""
    env = {**env, "PATH": f"{image_venv.bin}{os.pathsep}{env['PATH']}"}  # ENV PATH of the image
    entrypoint_and_cmd = stage_command(target)
    if command is not None:
        entrypoint_and_cmd = [entrypoint_and_cmd[0], *command]
    command = image_venv.entrypoint(entrypoint_and_cmd)
    if target == "batch-array":  # COPY option2-aws-batch/manifest_entrypoint.py /opt/...
        command = [
            str(ROOT / "option2-aws-batch" / Path(arg).name) if arg.endswith(".py") else arg
            for arg in command
        ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)


def test_the_default_entrypoint_copies_a_csv_configured_by_environment_only(
    stack: dict[str, str], bucket: str, image_venv: ImageVenv
) -> None:
    assert stage_command("runtime") == ["csv-to-kafka", "run"]
    topic, job = f"deploy-{uuid.uuid4()}", f"deploy-{uuid.uuid4()}"
    source = put(bucket, "image.csv", make_csv(3000))
    env = container_env(
        stack, CSV_TO_KAFKA_SOURCE=source, CSV_TO_KAFKA_TOPIC=topic, CSV_TO_KAFKA_JOB_ID=job
    )
    # The option READMEs' check before the copy: the container's settings, command `check`.
    checked = run_in_image(image_venv, "runtime", env, command=["check"])
    assert checked.returncode == 0, checked.stdout + checked.stderr[-2000:]
    assert checked.stdout.startswith(f"check OK: {source}: 3,000 rows of 3 columns")

    result = run_in_image(image_venv, "runtime", env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic) == data_lines(3000)
    # JSON log lines for CloudWatch Logs, not a progress bar.
    last = json.loads(result.stderr.strip().splitlines()[-1])
    assert isinstance(last, dict)

    # The READMEs' exact check: the same container settings, the command overridden: `verify`.
    checked = run_in_image(image_venv, "runtime", env, command=["verify"])
    assert checked.returncode == 0, checked.stdout + checked.stderr[-2000:]


def test_the_image_refuses_a_missing_table_as_configured(
    stack: dict[str, str], bucket: str, image_venv: ImageVenv
) -> None:
    """CSV_TO_KAFKA_CREATE_TABLE=false: the deployments never create the table at run time."""
    source = put(bucket, "no-table.csv", make_csv(10))
    env = container_env(
        stack,
        CSV_TO_KAFKA_SOURCE=source,
        CSV_TO_KAFKA_TOPIC=f"deploy-{uuid.uuid4()}",
        CSV_TO_KAFKA_JOB_ID=f"deploy-{uuid.uuid4()}",
        CSV_TO_KAFKA_CHECKPOINT_TABLE=f"absent-{uuid.uuid4().hex[:8]}",
    )
    result = run_in_image(image_venv, "runtime", env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "does not exist" in result.stderr


def test_a_batch_array_child_copies_its_manifest_line(
    stack: dict[str, str], bucket: str, image_venv: ImageVenv
) -> None:
    jobs = [(f"deploy-{uuid.uuid4()}", f"deploy-{uuid.uuid4()}", rows) for rows in (40, 70)]
    lines = ["source,job_id,topic"]
    for n, (topic, job, rows) in enumerate(jobs):
        lines.append(f"{put(bucket, f'array-{n}.csv', make_csv(rows))},{job},{topic}")
    manifest = put(bucket, "manifest.csv", ("\n".join(lines) + "\n").encode())
    for index, (topic, _job, rows) in enumerate(jobs):
        env = container_env(
            stack, CSV_TO_KAFKA_MANIFEST=manifest, AWS_BATCH_JOB_ARRAY_INDEX=str(index)
        )
        result = run_in_image(image_venv, "batch-array", env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"child {index} copies" in result.stderr
        assert committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic) == data_lines(rows)


@pytest.mark.parametrize(
    ("manifest_text", "index", "message"),
    [
        (b"src,job,topic\ns3://b/k,j,t\n", "0", "header must be source,job_id,topic"),
        (b"source,job_id,topic\ns3://b/k,j,t\n", "1", "past the manifest's 1 lines"),
        (b"source,job_id,topic\ns3://b/k,,t\n", "0", "three non-empty fields"),
    ],
)
def test_a_bad_manifest_is_a_configuration_error(
    stack: dict[str, str],
    bucket: str,
    image_venv: ImageVenv,
    manifest_text: bytes,
    index: str,
    message: str,
) -> None:
    manifest = put(bucket, f"bad-{uuid.uuid4().hex[:6]}.csv", manifest_text)
    env = container_env(stack, CSV_TO_KAFKA_MANIFEST=manifest, AWS_BATCH_JOB_ARRAY_INDEX=index)
    result = run_in_image(image_venv, "batch-array", env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_a_missing_manifest_is_not_retried(
    stack: dict[str, str], bucket: str, image_venv: ImageVenv
) -> None:
    env = container_env(
        stack,
        CSV_TO_KAFKA_MANIFEST=f"s3://{bucket}/absent.csv",
        AWS_BATCH_JOB_ARRAY_INDEX="0",
    )
    result = run_in_image(image_venv, "batch-array", env)
    assert result.returncode == 2, result.stderr
    assert "NoSuchKey" in result.stderr
