"""The image itself: app/Dockerfile built by ``local/engine image`` (``make image``) and run as a
container, on the host network, against the local stack.

Each test starts the built image with testcontainers, configured only by environment variables
(what the task definitions give it), and asserts what a user checks: the records in the topic,
the exit code, the messages, the checkpoint. The lock tests need no engine.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT, BuiltImage
from .helpers import checkpoint, committed_lines, create_checkpoint_table, data_lines, make_csv
from .requirements_lock import BUILD_PINS, LOCK, runtime_closure

TABLE = "csv-to-kafka-deployment-checkpoints"
# The image's own user (app/Dockerfile: USER 10001:10001).
APP_UID = "10001"
# Anything that looks like a credential or a private key, in a layer's command or the image's env.
SECRET_LIKE = re.compile(
    r"PASSWORD|SECRET|TOKEN|AWS_ACCESS_KEY|AWS_SESSION|PRIVATE KEY|BEGIN CERTIFICATE|PIP_CERT"
    r"|AKIA[0-9A-Z]{16}",
    re.IGNORECASE,
)
FIND_CREDENTIALS = (
    "find / -xdev \\( -name .netrc -o -name pip.conf -o -name credentials -o -name .aws"
    " -o -name .pypirc -o -name .git-credentials -o -name '*.key' -o -name 'id_rsa*' \\) -print;"
    " grep -rlE --exclude-dir=site-packages -- '-----BEGIN [A-Z ]*PRIVATE KEY-----'"
    " /etc /root /home /tmp /var /opt || true"
)


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
    modules/core (create-table off, JSON progress) and AWS' own; nothing else."""
    env = {
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


@dataclass
class Exited:
    code: int
    stdout: str
    stderr: str


def container(
    tag: str, env: dict[str, str], command: str | list[str] | None = None, **kwargs: Any
) -> Any:
    """The image as a testcontainers container on the host network (not yet started)."""
    from testcontainers.core.container import DockerContainer

    started = DockerContainer(tag).with_kwargs(network_mode="host", **kwargs)
    for name, value in env.items():
        started = started.with_env(name, value)
    if command is not None:
        started = started.with_command(command)
    return started


def finish(started: Any, timeout: float = 240) -> Exited:
    """Wait for a started container to exit; its code and logs; then remove it."""
    wrapped = started.get_wrapped_container()
    try:
        code = wrapped.wait(timeout=timeout)["StatusCode"]
        stdout, stderr = started.get_logs()
        return Exited(code, stdout.decode(), stderr.decode())
    finally:
        wrapped.remove(force=True)


def run(
    tag: str, env: dict[str, str], command: str | list[str] | None = None, **kwargs: Any
) -> Exited:
    """docker run TAG [COMMAND] to completion."""
    return finish(container(tag, env, command, **kwargs).start())


def test_the_image_copies_a_csv_configured_by_environment_only(
    stack: dict[str, str], bucket: str, image: BuiltImage
) -> None:
    topic, job = f"deploy-{uuid.uuid4()}", f"deploy-{uuid.uuid4()}"
    source = put(bucket, "image.csv", make_csv(3000))
    env = container_env(
        stack, CSV_TO_KAFKA_SOURCE=source, CSV_TO_KAFKA_TOPIC=topic, CSV_TO_KAFKA_JOB_ID=job
    )
    # The option READMEs' check before the copy: the container's settings, command `check`.
    checked = run(image.tag, env, "check")
    assert checked.code == 0, checked.stdout + checked.stderr[-2000:]
    assert checked.stdout.startswith(f"check OK: {source}: 3,000 rows of 3 columns")

    copied = run(image.tag, env)
    assert copied.code == 0, copied.stderr[-3000:]
    assert committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic) == data_lines(3000)
    # JSON log lines for CloudWatch Logs (the image's CSV_TO_KAFKA_PROGRESS), not a progress bar.
    last = json.loads(copied.stderr.strip().splitlines()[-1])
    assert isinstance(last, dict)

    # The READMEs' exact check, then the checkpoint as an operator reads it.
    verified = run(image.tag, env, "verify")
    assert verified.code == 0, verified.stdout + verified.stderr[-2000:]
    status = run(image.tag, env, "status")
    assert status.code == 0, status.stdout + status.stderr[-2000:]
    assert "COMPLETED" in status.stdout
    assert "3,000" in status.stdout


def test_docker_stop_mid_copy_exits_143_and_a_second_container_completes(
    stack: dict[str, str], bucket: str, image: BuiltImage
) -> None:
    rows = 400_000
    topic, job = f"deploy-{uuid.uuid4()}", f"deploy-{uuid.uuid4()}"
    source = put(bucket, "stopped.csv", make_csv(rows))
    env = container_env(
        stack,
        CSV_TO_KAFKA_SOURCE=source,
        CSV_TO_KAFKA_TOPIC=topic,
        CSV_TO_KAFKA_JOB_ID=job,
        CSV_TO_KAFKA_CHECKPOINT_EVERY="1000",
    )
    started = container(image.tag, env).start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            cp = checkpoint(TABLE, job)
            if cp is not None and int(cp.get("total_sent", 0)) >= 5_000:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint of 5,000 rows within 120 s")
        image.docker("stop", "--time", "60", started.get_wrapped_container().id)
    finally:
        stopped = finish(started)
    assert stopped.code == 143, stopped.stderr[-3000:]
    cp = checkpoint(TABLE, job)
    assert cp is not None
    assert cp["status"] == "INTERRUPTED"
    in_topic = committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic)
    assert 0 < len(in_topic) < rows, "stopped in mid-copy"
    assert int(cp["total_sent"]) == len(in_topic)

    second = run(image.tag, env)
    assert second.code == 0, second.stderr[-3000:]
    assert committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic) == data_lines(rows)
    assert checkpoint(TABLE, job)["status"] == "COMPLETED"  # type: ignore[index]


def test_the_image_refuses_a_missing_table_as_configured(
    stack: dict[str, str], bucket: str, image: BuiltImage
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
    result = run(image.tag, env)
    assert result.code == 2, result.stderr[-2000:]
    assert "does not exist" in result.stderr


def test_the_container_runs_as_its_user_on_a_read_only_root(
    stack: dict[str, str], bucket: str, image: BuiltImage
) -> None:
    """What a hardened task definition sets: readonlyRootFilesystem, no root user."""
    inspected = image.inspect(image.tag)
    assert inspected["Config"]["User"] == f"{APP_UID}:{APP_UID}"
    who = run(image.tag, {}, entrypoint="id")
    assert who.code == 0, who.stderr
    assert re.match(rf"uid={APP_UID}\(csv-to-kafka\) gid={APP_UID}\(csv-to-kafka\)", who.stdout)

    # The build stage compiled the C speedups (the copy's hot loop) for the runtime's Python.
    speedups = run(
        image.tag,
        {},
        entrypoint="/opt/csv-to-kafka/bin/python",
        command=["-c", "import csv_to_kafka._speedups as s; print(s.__file__)"],
    )
    assert speedups.code == 0, speedups.stderr
    assert speedups.stdout.strip().endswith(".so"), speedups.stdout

    topic, job = f"deploy-{uuid.uuid4()}", f"deploy-{uuid.uuid4()}"
    source = put(bucket, "read-only.csv", make_csv(20_000))
    env = container_env(
        stack, CSV_TO_KAFKA_SOURCE=source, CSV_TO_KAFKA_TOPIC=topic, CSV_TO_KAFKA_JOB_ID=job
    )
    # The parse process's shared memory (/dev/shm) is the engine's own tmpfs; /tmp is one more.
    result = run(image.tag, env, read_only=True)
    assert result.code == 0, result.stderr[-3000:]
    assert committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic) == data_lines(20_000)


def test_the_image_carries_no_secret_in_its_layers_or_environment(image: BuiltImage) -> None:
    for tag in (image.tag, image.array_tag):
        inspected = image.inspect(tag)
        env = inspected["Config"]["Env"]
        names = {entry.partition("=")[0] for entry in env}
        assert names == {
            "PATH",
            "PYTHONUNBUFFERED",
            "PYTHONDONTWRITEBYTECODE",
            "CSV_TO_KAFKA_PROGRESS",
        }
        leaks = [entry for entry in env if SECRET_LIKE.search(entry)]
        assert not leaks, f"{tag}: secret-like environment {leaks}"
        history = image.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag)
        leaks = [line for line in history.splitlines() if SECRET_LIKE.search(line)]
        assert not leaks, f"{tag}: secret-like build steps {leaks}"
        # The image's files: no credentials file, no private key (the CA certificates in
        # /etc/ssl/certs are public; the local base adds the proxy's CA there, nowhere else).
        found = run(tag, {}, entrypoint="sh", command=["-c", FIND_CREDENTIALS], user="0:0")
        assert found.code == 0, found.stderr
        assert found.stdout.strip() == "", f"{tag}: {found.stdout}"


def test_the_image_size_is_what_docs_deployment_reports(image: BuiltImage) -> None:
    size_mb = image.inspect(image.tag)["Size"] / 1e6
    documented = re.search(
        r"`csv-to-kafka:dev` is (\d+) MB", (ROOT / "docs" / "deployment.md").read_text()
    )
    assert documented, "docs/deployment.md reports the image's size"
    # The figure in the docs is within 10% of the image built now.
    assert abs(size_mb - int(documented.group(1))) <= 0.1 * size_mb, f"{size_mb:.0f} MB"


def test_a_batch_array_child_copies_its_manifest_line(
    stack: dict[str, str], bucket: str, image: BuiltImage
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
        result = run(image.array_tag, env)
        assert result.code == 0, result.stderr[-3000:]
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
    image: BuiltImage,
    manifest_text: bytes,
    index: str,
    message: str,
) -> None:
    manifest = put(bucket, f"bad-{uuid.uuid4().hex[:6]}.csv", manifest_text)
    env = container_env(stack, CSV_TO_KAFKA_MANIFEST=manifest, AWS_BATCH_JOB_ARRAY_INDEX=index)
    result = run(image.array_tag, env)
    assert result.code == 2, result.stderr
    assert message in result.stderr


def test_a_missing_manifest_is_not_retried(
    stack: dict[str, str], bucket: str, image: BuiltImage
) -> None:
    env = container_env(
        stack,
        CSV_TO_KAFKA_MANIFEST=f"s3://{bucket}/absent.csv",
        AWS_BATCH_JOB_ARRAY_INDEX="0",
    )
    result = run(image.array_tag, env)
    assert result.code == 2, result.stderr
    assert "NoSuchKey" in result.stderr


def test_a_batch_array_child_copies_its_part_of_a_plan(
    stack: dict[str, str], bucket: str, image: BuiltImage
) -> None:
    """option2-aws-batch/deploy.sh --parts: the plan job, then array children of the job
    definition's image (entrypoint csv-to-kafka, command run) that take their part from
    AWS_BATCH_JOB_ARRAY_INDEX alone."""
    from tests.reliability.oracle import read_partition

    topic, job = f"deploy-{uuid.uuid4()}", f"deploy-{uuid.uuid4()}"
    source = put(bucket, "parts.csv", make_csv(2500))
    plan = f"{source}.plan.json"
    env = container_env(stack, CSV_TO_KAFKA_TOPIC=topic, CSV_TO_KAFKA_JOB_ID=job)
    planned = run(image.tag, env, ["plan", "--source", source, "--parts", "2", "--output", plan])
    assert planned.code == 0, planned.stderr[-3000:]
    children = {**env, "CSV_TO_KAFKA_SOURCE": source, "CSV_TO_KAFKA_PLAN": plan}
    for index in (1, 0):
        result = run(image.tag, {**children, "AWS_BATCH_JOB_ARRAY_INDEX": str(index)})
        assert result.code == 0, result.stderr[-3000:]
        assert f"job {job}.part-{index} complete" in result.stdout
    lines = [
        [
            json.loads(value)["_source_line"]
            for _offset, value in read_partition(
                stack["KAFKA_BOOTSTRAP_SERVERS"], topic, partition=partition, timeout=60
            )
        ]
        for partition in (0, 1)
    ]
    assert lines[0]
    assert lines[1]
    assert lines[0] + lines[1] == data_lines(2500)
    verified = run(image.tag, children, ["verify", "--plan", plan])
    assert verified.code == 0, verified.stdout + verified.stderr[-2000:]
    assert "verify OK: 2 parts" in verified.stdout
