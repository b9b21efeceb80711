"""The deployment scripts, run for real with the AWS CLI against moto in server mode.

Each script runs with --skip-build --skip-apply --outputs FILE: no Docker engine, no Terraform
apply. What `terraform apply` would have created is created here in moto with boto3, from the
same values as the Terraform (the Batch retry rules are read from option2's main.tf), and the
outputs file has the stack's output names. The build and apply steps (scripts/deploy-common.sh)
run too, with stand-ins for terraform and docker that record what they are asked to do.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from .conftest import (
    ROOT,
    STACKS,
    BuiltImage,
    ImageVenv,
    Network,
    TerraformDir,
    unquote,
    write_outputs,
)
from .helpers import (
    checkpoint,
    committed_lines,
    create_checkpoint_table,
    data_lines,
    imds_stub,
    make_csv,
)

DEPLOY = STACKS["option1-ecs-fargate"] / "deploy.sh"
SUBMIT = STACKS["option2-aws-batch"] / "submit-job.sh"
LAUNCH = STACKS["option3-ec2-spot"] / "launch-spot.sh"
USER_DATA = STACKS["option3-ec2-spot"] / "user-data.sh"
TABLE = "csv-to-kafka-deployment-checkpoints"


def run(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), "--skip-build", "--skip-apply", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def common_environment(stack: dict[str, str]) -> dict[str, str]:
    """modules/core's `environment` output, with the local stack's values."""
    return {
        "AWS_REGION": stack["AWS_REGION"],
        "AWS_DEFAULT_REGION": stack["AWS_REGION"],
        "CSV_TO_KAFKA_BOOTSTRAP_SERVERS": stack["KAFKA_BOOTSTRAP_SERVERS"],
        "CSV_TO_KAFKA_CHECKPOINT_TABLE": TABLE,
        "CSV_TO_KAFKA_CREATE_TABLE": "false",
        "CSV_TO_KAFKA_CREATE_TOPIC": "true",
        "CSV_TO_KAFKA_AUTH": "none",
        "CSV_TO_KAFKA_METRICS_NAMESPACE": "CsvToKafka",
        "CSV_TO_KAFKA_PROGRESS": "json",
    }


def as_pairs(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": env[k]} for k in sorted(env)]


def repository(name: str) -> str:
    ecr = boto3.client("ecr")
    try:
        return str(ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"])
    except ecr.exceptions.RepositoryAlreadyExistsException:
        return str(
            ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"]
        )


# --- option 1: ECS Fargate ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ecs_outputs(
    aws_env: dict[str, str], network: Network, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    name = f"c2k-ecs-{uuid.uuid4().hex[:8]}"
    ecs = boto3.client("ecs")
    repo = repository(name)
    ecs.create_cluster(
        clusterName=name,
        settings=[{"name": "containerInsights", "value": "enabled"}],
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
    )
    environment = {
        **common_environment(aws_env),
        "CSV_TO_KAFKA_SOURCE": "s3://bucket/orders.csv",
        "CSV_TO_KAFKA_TOPIC": "orders",
        "CSV_TO_KAFKA_JOB_ID": "orders-2024",
    }
    # aws_ecs_task_definition.this of option1-ecs-fargate/terraform/main.tf.
    definition = ecs.register_task_definition(
        family=name,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="2048",
        memory="4096",
        executionRoleArn="arn:aws:iam::123456789012:role/csv-to-kafka-exec",
        taskRoleArn="arn:aws:iam::123456789012:role/csv-to-kafka-job",
        runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        volumes=[{"name": "tmp"}],
        containerDefinitions=[
            {
                "name": "csv-to-kafka",
                "image": f"{repo}:first",
                "essential": True,
                "memory": 4096,
                "readonlyRootFilesystem": True,
                "stopTimeout": 120,
                "environment": as_pairs(environment),
                "secrets": [],
                "mountPoints": [
                    {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
                ],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": f"/csv-to-kafka/{name}",
                        "awslogs-region": aws_env["AWS_REGION"],
                        "awslogs-stream-prefix": "ecs",
                    },
                },
            }
        ],
    )["taskDefinition"]
    return write_outputs(
        tmp_path_factory.mktemp("ecs") / "outputs.json",
        {
            "aws_region": aws_env["AWS_REGION"],
            "cluster_name": name,
            "task_definition_arn": definition["taskDefinitionArn"],
            "task_definition_family": name,
            "container_name": "csv-to-kafka",
            "capacity_provider": "FARGATE",
            "subnet_ids": [network.subnet_id],
            "security_group_id": network.security_group_id,
            "assign_public_ip": False,
            "ecr_repository_url": repo,
            "table_name": TABLE,
            "log_group_name": f"/csv-to-kafka/{name}",
            "job_id": "orders-2024",
            "source": "s3://bucket/orders.csv",
            "kafka_topic": "orders",
            "dashboard_url": "https://console.aws.amazon.com/cloudwatch/home",
            "run_task_command": "aws ecs run-task ...",
        },
    )


def describe_task(outputs: Path, task_arn: str) -> dict[str, Any]:
    cluster = json.loads(outputs.read_text())["cluster_name"]["value"]
    return dict(boto3.client("ecs").describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0])


def test_deploy_runs_the_terraform_task_definition(
    aws_env: dict[str, str], ecs_outputs: Path, network: Network
) -> None:
    result = run(DEPLOY, aws_env, "--outputs", str(ecs_outputs))
    assert result.returncode == 0, result.stderr
    task = describe_task(ecs_outputs, result.stdout.strip())
    assert task["taskDefinitionArn"].endswith(":1")
    assert task["capacityProviderName"] == "FARGATE"
    assert task["startedBy"] == "deploy.sh"
    assert task["overrides"]["containerOverrides"][0]["environment"] == []
    subnets = [
        d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "subnetId"
    ]
    assert subnets == [network.subnet_id]
    assert "aws logs tail" in result.stderr
    assert "dynamodb get-item" in result.stderr


def test_deploy_registers_a_revision_for_a_new_image_and_overrides_the_job(
    aws_env: dict[str, str], ecs_outputs: Path
) -> None:
    result = run(
        DEPLOY,
        aws_env,
        "--outputs",
        str(ecs_outputs),
        "--image-tag",
        "v2",
        "--job-id",
        "refunds-2024",
        "--source",
        "s3://bucket/refunds.csv",
        "--topic",
        "refunds",
    )
    assert result.returncode == 0, result.stderr
    task = describe_task(ecs_outputs, result.stdout.strip())
    ecs = boto3.client("ecs")
    new = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    old = ecs.describe_task_definition(taskDefinition=new["family"] + ":1")["taskDefinition"]
    assert new["revision"] > 1
    container, before = new["containerDefinitions"][0], old["containerDefinitions"][0]
    assert container["image"].endswith(":v2")
    assert {k: v for k, v in container.items() if k != "image"} == {
        k: v for k, v in before.items() if k != "image"
    }, "only the image changes"
    assert (new["cpu"], new["memory"], new["taskRoleArn"]) == (
        old["cpu"],
        old["memory"],
        old["taskRoleArn"],
    )
    overrides = task["overrides"]["containerOverrides"][0]["environment"]
    assert {o["name"]: o["value"] for o in overrides} == {
        "CSV_TO_KAFKA_JOB_ID": "refunds-2024",
        "CSV_TO_KAFKA_SOURCE": "s3://bucket/refunds.csv",
        "CSV_TO_KAFKA_TOPIC": "refunds",
    }


def test_deploy_waits_for_the_task_and_exits_with_its_code(
    aws_env: dict[str, str], ecs_outputs: Path
) -> None:
    env = {**aws_env, "DEPLOY_POLL_SECONDS": "0.1"}
    result = run(DEPLOY, env, "--outputs", str(ecs_outputs), "--wait")
    assert result.returncode == 0, result.stderr
    assert "task stopped: exit code 0" in result.stderr


# --- option 2: AWS Batch ------------------------------------------------------------------------


def batch_retry_strategy(stacks: dict[str, TerraformDir]) -> dict[str, Any]:
    """retry_strategy of option2's job definitions, from its main.tf."""
    rules = []
    for rule in stacks["option2-aws-batch"].locals()["evaluate_on_exit"]:
        entry = {"action": unquote(rule["action"])}
        if rule["on_exit_code"] is not None:
            entry["onExitCode"] = unquote(rule["on_exit_code"])
        if rule["on_status_reason"] is not None:
            entry["onStatusReason"] = unquote(rule["on_status_reason"])
        rules.append(entry)
    attempts = stacks["option2-aws-batch"].named("variable")["retry_attempts"]["default"]
    return {"attempts": attempts, "evaluateOnExit": rules}


@pytest.fixture(scope="module")
def batch_outputs(
    aws_env: dict[str, str],
    network: Network,
    batch_without_docker: None,
    stacks: dict[str, TerraformDir],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    name = f"c2k-batch-{uuid.uuid4().hex[:8]}"
    batch, iam = boto3.client("batch"), boto3.client("iam")
    repo = repository(name)
    # Real Batch uses its service-linked role when none is given; moto insists on one.
    role = iam.create_role(
        RoleName=f"{name}-service",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "batch.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    compute = batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        state="ENABLED",
        serviceRole=role,
        computeResources={
            "type": "FARGATE_SPOT",
            "maxvCpus": 16,
            "subnets": [network.subnet_id],
            "securityGroupIds": [network.security_group_id],
        },
    )["computeEnvironmentArn"]
    batch.create_job_queue(
        jobQueueName=name,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute}],
    )
    environment = {
        **common_environment(aws_env),
        "CSV_TO_KAFKA_SOURCE": "s3://bucket/orders.csv",
        "CSV_TO_KAFKA_TOPIC": "orders",
        "CSV_TO_KAFKA_JOB_ID": "orders-2024",
    }
    container = {
        "jobRoleArn": "arn:aws:iam::123456789012:role/csv-to-kafka-job",
        "executionRoleArn": "arn:aws:iam::123456789012:role/csv-to-kafka-exec",
        "readonlyRootFilesystem": True,
        "privileged": False,
        "resourceRequirements": [
            {"type": "VCPU", "value": "2"},
            {"type": "MEMORY", "value": "4096"},
        ],
        "networkConfiguration": {"assignPublicIp": "DISABLED"},
        "fargatePlatformConfiguration": {"platformVersion": "LATEST"},
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
    }
    revisions = {}
    for suffix, env, tag in (
        ("", environment, "first"),
        ("-array", common_environment(aws_env), "first-array"),
    ):
        registered = batch.register_job_definition(
            jobDefinitionName=f"{name}{suffix}",
            type="container",
            platformCapabilities=["FARGATE"],
            propagateTags=True,
            containerProperties={
                **container,
                "image": f"{repo}:{tag}",
                "environment": as_pairs(env),
            },
            retryStrategy=batch_retry_strategy(stacks),
            timeout={"attemptDurationSeconds": 14400},
        )
        revisions[suffix] = f"{registered['jobDefinitionName']}:{registered['revision']}"
    return write_outputs(
        tmp_path_factory.mktemp("batch") / "outputs.json",
        {
            "aws_region": aws_env["AWS_REGION"],
            "job_queue": name,
            "job_definition": revisions[""],
            "array_job_definition": revisions["-array"],
            "compute_environment_arn": compute,
            "ecr_repository_url": repo,
            "image_tag": "first",
            "table_name": TABLE,
            "log_group_name": f"/csv-to-kafka/{name}",
            "job_id": "orders-2024",
            "source": "s3://bucket/orders.csv",
            "kafka_topic": "orders",
            "dashboard_url": "https://console.aws.amazon.com/cloudwatch/home",
            "submit_job_command": "aws batch submit-job ...",
        },
    )


def describe_job(job_id: str) -> dict[str, Any]:
    return dict(boto3.client("batch").describe_jobs(jobs=[job_id])["jobs"][0])


def test_submit_job_submits_the_default_job(aws_env: dict[str, str], batch_outputs: Path) -> None:
    result = run(SUBMIT, aws_env, "--outputs", str(batch_outputs))
    assert result.returncode == 0, result.stderr
    job = describe_job(result.stdout.strip())
    assert job["jobName"] == "orders-2024"
    assert job["status"] == "SUCCEEDED"  # moto's Batch without Docker: submitted jobs succeed
    assert job["jobDefinition"].endswith(":1")
    assert "aws batch describe-jobs" in result.stderr


def test_submit_job_keeps_the_retry_rules_in_a_new_revision(
    aws_env: dict[str, str], batch_outputs: Path, stacks: dict[str, TerraformDir]
) -> None:
    result = run(
        SUBMIT,
        aws_env,
        "--outputs",
        str(batch_outputs),
        "--image-tag",
        "v2",
        "--job-id",
        "refunds.2024",
    )
    assert result.returncode == 0, result.stderr
    job = describe_job(result.stdout.strip())
    assert job["jobName"] == "refunds-2024", "a valid Batch job name"
    definition = boto3.client("batch").describe_job_definitions(
        jobDefinitions=[job["jobDefinition"]]
    )["jobDefinitions"][0]
    assert definition["revision"] >= 2
    assert definition["containerProperties"]["image"].endswith(":v2")
    strategy = definition["retryStrategy"]
    want = batch_retry_strategy(stacks)
    assert strategy["attempts"] == want["attempts"]
    assert [{**r, "action": r["action"].upper()} for r in strategy["evaluateOnExit"]] == want[
        "evaluateOnExit"
    ]
    assert definition["timeout"] == {"attemptDurationSeconds": 14400}
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert env["CSV_TO_KAFKA_JOB_ID"] == "refunds.2024"


def test_submit_job_runs_an_array_job_over_a_manifest(
    aws_env: dict[str, str], batch_outputs: Path
) -> None:
    bucket = f"c2k-manifest-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    lines = ["source,job_id,topic"] + [
        f"s3://{bucket}/part-{n}.csv,2024-part-{n},orders" for n in range(3)
    ]
    s3.put_object(Bucket=bucket, Key="manifest.csv", Body=("\n".join(lines) + "\n\n").encode())
    manifest = f"s3://{bucket}/manifest.csv"
    result = run(SUBMIT, aws_env, "--outputs", str(batch_outputs), "--manifest", manifest)
    assert result.returncode == 0, result.stderr
    job = describe_job(result.stdout.strip())
    assert job["arrayProperties"]["size"] == 3, "one child per manifest line"
    assert "-array:" in job["jobDefinition"]
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert env["CSV_TO_KAFKA_MANIFEST"] == manifest
    children = boto3.client("batch").list_jobs(arrayJobId=job["jobId"])["jobSummaryList"]
    assert len(children) == 3


DEPLOY_BATCH = STACKS["option2-aws-batch"] / "deploy.sh"


def test_deploy_with_parts_submits_a_plan_job_then_an_array_job_after_it(
    aws_env: dict[str, str], batch_outputs: Path
) -> None:
    result = run(
        DEPLOY_BATCH,
        aws_env,
        "--outputs",
        str(batch_outputs),
        "--parts",
        "4",
        "--job-id",
        "orders.big",
        "--source",
        "s3://bucket/big.csv",
    )
    assert result.returncode == 0, result.stderr
    plan_id, parts_id = result.stdout.split()
    plan_job, parts_job = describe_job(plan_id), describe_job(parts_id)
    assert plan_job["container"]["command"] == [
        "plan",
        "--source",
        "s3://bucket/big.csv",
        "--parts",
        "4",
        "--output",
        "s3://bucket/big.csv.plan.json",
    ]
    assert parts_job["arrayProperties"]["size"] == 4
    assert parts_job["dependsOn"] == [{"jobId": plan_id}]
    assert "-array:" not in parts_job["jobDefinition"], "children run csv-to-kafka run"
    env = {e["name"]: e["value"] for e in parts_job["container"]["environment"]}
    assert env["CSV_TO_KAFKA_PLAN"] == "s3://bucket/big.csv.plan.json"
    assert env["CSV_TO_KAFKA_JOB_ID"] == "orders.big"
    assert "CSV_TO_KAFKA_PART" not in env, "each child takes AWS_BATCH_JOB_ARRAY_INDEX"
    assert "status --job-id orders.big --plan s3://bucket/big.csv.plan.json" in result.stderr


def test_deploy_without_parts_is_submit_job(aws_env: dict[str, str], batch_outputs: Path) -> None:
    result = run(DEPLOY_BATCH, aws_env, "--outputs", str(batch_outputs))
    assert result.returncode == 0, result.stderr
    assert describe_job(result.stdout.strip())["jobName"] == "orders-2024"
    refused = run(DEPLOY_BATCH, aws_env, "--outputs", str(batch_outputs), "--parts", "1")
    assert refused.returncode == 2
    assert "--parts takes 2 to 10000" in refused.stderr


def test_submit_job_refuses_a_one_line_manifest(
    aws_env: dict[str, str], batch_outputs: Path
) -> None:
    bucket = f"c2k-manifest-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="one.csv", Body=b"source,job_id,topic\ns3://b/k,j,t\n")
    result = run(
        SUBMIT, aws_env, "--outputs", str(batch_outputs), "--manifest", f"s3://{bucket}/one.csv"
    )
    assert result.returncode == 2
    assert "2 to 10000 children" in result.stderr


# --- option 3: EC2 Spot ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spot_outputs(
    aws_env: dict[str, str], network: Network, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    name = f"c2k-spot-{uuid.uuid4().hex[:8]}"
    ec2, iam = boto3.client("ec2"), boto3.client("iam")
    repo = repository(name)
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["RoleName"]
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    # aws_launch_template.this of option3-ec2-spot/terraform/main.tf.
    template = ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": image_id,
            "InstanceType": "c6i.large",
            "IamInstanceProfile": {"Arn": profile["Arn"]},
            "InstanceInitiatedShutdownBehavior": "terminate",
            "SecurityGroupIds": [network.security_group_id],
            "InstanceMarketOptions": {
                "MarketType": "spot",
                "SpotOptions": {
                    "SpotInstanceType": "one-time",
                    "InstanceInterruptionBehavior": "terminate",
                },
            },
            "MetadataOptions": {
                "HttpEndpoint": "enabled",
                "HttpTokens": "required",
                "HttpPutResponseHopLimit": 1,
            },
            "Monitoring": {"Enabled": True},
        },
    )["LaunchTemplate"]
    environment = {
        **common_environment(aws_env),
        "CSV_TO_KAFKA_SOURCE": "s3://bucket/orders.csv",
        "CSV_TO_KAFKA_TOPIC": "orders",
        "CSV_TO_KAFKA_JOB_ID": "orders-2024",
    }
    return write_outputs(
        tmp_path_factory.mktemp("spot") / "outputs.json",
        {
            "aws_region": aws_env["AWS_REGION"],
            "launch_template_id": template["LaunchTemplateId"],
            "launch_template_version": template["LatestVersionNumber"],
            "subnet_ids": [network.subnet_id],
            "ecr_repository_url": repo,
            "image": f"{repo}:first",
            "table_name": TABLE,
            "log_group_name": f"/csv-to-kafka/{name}",
            "instance_profile_name": name,
            "job_id": "orders-2024",
            "source": "s3://bucket/orders.csv",
            "kafka_topic": "orders",
            "environment": environment,
            "sasl_secret_arn": None,
            "retry_attempts": 3,
            "dashboard_url": "https://console.aws.amazon.com/cloudwatch/home",
        },
    )


def user_data_of(instance_id: str) -> str:
    attribute = boto3.client("ec2").describe_instance_attribute(
        InstanceId=instance_id, Attribute="userData"
    )
    return base64.b64decode(attribute["UserData"]["Value"]).decode()


def test_launch_spot_starts_a_spot_instance_from_the_template(
    aws_env: dict[str, str], spot_outputs: Path, network: Network
) -> None:
    result = run(LAUNCH, aws_env, "--outputs", str(spot_outputs))
    assert result.returncode == 0, result.stderr
    instance_id = result.stdout.strip()
    instance = boto3.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"
    ][0]
    assert instance["InstanceLifecycle"] == "spot"
    assert instance["SubnetId"] == network.subnet_id
    assert instance["MetadataOptions"]["HttpTokens"] == "required", "IMDSv2 from the template"
    assert "KeyName" not in instance, "no SSH key"
    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
    assert tags["JobId"] == "orders-2024"
    user_data = user_data_of(instance_id)
    assert user_data.startswith("#!/bin/bash\n")
    assert "export CSV_TO_KAFKA_JOB_ID='orders-2024'\n" in user_data
    assert "export SPOT_JOB_IMAGE=" in user_data
    assert USER_DATA.read_text() in user_data, "user-data.sh follows the settings"


def test_launch_spot_quotes_settings_and_prints_the_user_data(
    aws_env: dict[str, str], spot_outputs: Path
) -> None:
    result = run(
        LAUNCH,
        aws_env,
        "--outputs",
        str(spot_outputs),
        "--print-user-data",
        "--source",
        "s3://b/it's $HOME.csv",
    )
    assert result.returncode == 0, result.stderr
    exports = [line for line in result.stdout.splitlines() if line.startswith("export ")]
    probe = subprocess.run(
        ["bash", "-c", "\n".join([*exports, 'printf %s "$CSV_TO_KAFKA_SOURCE"'])],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert probe.stdout == "s3://b/it's $HOME.csv", "a value reaches the script unchanged"


def test_the_launched_user_data_runs_the_job_and_powers_off(
    aws_env: dict[str, str], spot_outputs: Path, image_venv: ImageVenv, tmp_path: Path
) -> None:
    """The user data run-instances received, run as cloud-init would, with the stubs."""
    bucket, topic, job = (
        f"c2k-spot-{uuid.uuid4().hex[:8]}",
        f"spot-{uuid.uuid4()}",
        f"spot-{uuid.uuid4()}",
    )
    boto3.client("s3").create_bucket(Bucket=bucket)
    boto3.client("s3").put_object(Bucket=bucket, Key="data.csv", Body=make_csv(2000))
    create_checkpoint_table(TABLE)
    result = run(
        LAUNCH,
        aws_env,
        "--outputs",
        str(spot_outputs),
        "--job-id",
        job,
        "--source",
        f"s3://{bucket}/data.csv",
        "--topic",
        topic,
    )
    assert result.returncode == 0, result.stderr
    script = tmp_path / "user-data"
    script.write_text(user_data_of(result.stdout.strip()))
    record = tmp_path / "shutdown.log"
    stub = tmp_path / "shutdown"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    stub.chmod(0o755)
    with imds_stub() as imds:
        env = {
            "PATH": os.environ["PATH"],
            "AWS_ENDPOINT_URL": aws_env["AWS_ENDPOINT_URL"],
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "SPOT_JOB_PROCESSOR": str(image_venv.bin / "csv-to-kafka"),
            "SPOT_JOB_SHUTDOWN": f"{stub} -h now",
            "SPOT_JOB_IMDS": imds.url,
            "SPOT_JOB_POLL_SECONDS": "0.2",
        }
        done = subprocess.run(
            ["bash", str(script)], env=env, capture_output=True, text=True, timeout=180
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert record.read_text() == "-h now\n"
    assert committed_lines(aws_env["KAFKA_BOOTSTRAP_SERVERS"], topic) == data_lines(2000)
    assert checkpoint(TABLE, job)["status"] == "COMPLETED"


# --- all three: the build and apply steps, with stand-ins for terraform and docker ---------------

# What scripts/deploy-common.sh runs of terraform and docker, recorded by stand-ins (no Docker
# engine and no provider here). The stand-in terraform keeps a little state: before any apply the
# stack has no outputs; after the targeted apply of the repository it has that one (and the
# region); after a full apply it has the stack's outputs (the fixture's file).
FAKE_TERRAFORM = r"""#!/usr/bin/env bash
set -euo pipefail
printf 'terraform %s\n' "$*" >>"$FAKE_LOG"
case " $* " in
*" output -json "*)
    if [[ -e "$FAKE_STATE/applied" ]]; then cat "$FAKE_OUTPUTS"
    elif [[ -e "$FAKE_STATE/repository" ]]; then cat "$FAKE_STATE/repository"
    else echo 'No outputs found' >&2; echo '{}'; fi ;;
*" apply "*"-target=module.core.aws_ecr_repository.this "*)
    jq '{ecr_repository_url, aws_region}' "$FAKE_OUTPUTS" >"$FAKE_STATE/repository" ;;
*" apply "*) touch "$FAKE_STATE/applied" ;;
*) echo "terraform stand-in: unexpected $*" >&2; exit 1 ;;
esac
"""
FAKE_DOCKER = r"""#!/usr/bin/env bash
set -euo pipefail
if [[ "$1" == login ]]; then
    password="$(cat)"
    printf 'docker %s <%d bytes on stdin>\n' "$*" "${#password}" >>"$FAKE_LOG"
    printf '%s' "$password" >"$FAKE_STATE/password"
else
    printf 'docker %s\n' "$*" >>"$FAKE_LOG"
fi
"""


def stand_ins(tmp_path: Path, env: dict[str, str], outputs: Path) -> dict[str, str]:
    """The environment that puts the stand-ins in place; their log is tmp_path/calls."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("terraform", FAKE_TERRAFORM), ("docker", FAKE_DOCKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls"),
        "FAKE_STATE": str(state),
        "FAKE_OUTPUTS": str(outputs),
    }


@pytest.mark.parametrize(
    ("script", "outputs_fixture", "images"),
    [
        pytest.param(DEPLOY, "ecs_outputs", [("", "")], id="deploy"),
        pytest.param(
            SUBMIT, "batch_outputs", [("", ""), ("batch-array", "-array")], id="submit-job"
        ),
        pytest.param(LAUNCH, "spot_outputs", [("", "")], id="launch-spot"),
    ],
)
def test_a_first_deployment_creates_the_repository_then_builds_pushes_and_applies(
    aws_env: dict[str, str],
    script: Path,
    outputs_fixture: str,
    images: list[tuple[str, str]],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    outputs: Path = request.getfixturevalue(outputs_fixture)
    repo = json.loads(outputs.read_text())["ecr_repository_url"]["value"]
    env = stand_ins(tmp_path, aws_env, outputs)
    result = subprocess.run(
        [str(script), "--image-tag", "v7", "--auto-approve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    chdir = f"-chdir={script.parent / 'terraform'}"
    root = script.parent.parent
    password = (tmp_path / "state" / "password").read_text()
    assert [
        f"terraform {chdir} output -json",
        f"terraform {chdir} apply -auto-approve -target=module.core.aws_ecr_repository.this",
        f"terraform {chdir} output -json",
        *(
            f"docker build --file {root}/app/Dockerfile"
            + (f" --target {target}" if target else "")
            + f" --tag {repo}:v7{suffix} {root}"
            for target, suffix in images
        ),
        f"docker login --username AWS --password-stdin {repo.split('/')[0]}"
        f" <{len(password)} bytes on stdin>",
        *(f"docker push {repo}:v7{suffix}" for _, suffix in images),
        f"terraform {chdir} apply -auto-approve -var image_tag=v7",
        f"terraform {chdir} output -json",
    ] == (tmp_path / "calls").read_text().splitlines()
    assert password, "docker login got no password from aws ecr get-login-password"
    assert password not in result.stderr + result.stdout
    assert result.stdout.strip(), "the script started nothing"
    if script == LAUNCH:
        assert f"export SPOT_JOB_IMAGE='{repo}:v7'" in user_data_of(result.stdout.strip())


def test_deploy_with_parts_applies_the_stack_with_an_alarm_per_part(
    aws_env: dict[str, str], batch_outputs: Path, tmp_path: Path
) -> None:
    """deploy.sh --parts N applies option 2's stack with TF_VAR_parts=N, the variable that gives
    each part a no-progress alarm of its own (modules/monitoring)."""
    env = stand_ins(tmp_path, aws_env, batch_outputs)
    (tmp_path / "state" / "applied").touch()  # an existing stack
    terraform = tmp_path / "bin" / "terraform"
    logged = "printf 'terraform %s\\n' \"$*\""
    assert logged in FAKE_TERRAFORM
    terraform.write_text(
        FAKE_TERRAFORM.replace(
            logged, 'printf \'terraform %s TF_VAR_parts=%s\\n\' "$*" "${TF_VAR_parts-}"'
        )
    )
    result = subprocess.run(
        [str(DEPLOY_BATCH), "--skip-build", "--auto-approve", "--parts", "4", "--job-id", "j"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    chdir = f"-chdir={DEPLOY_BATCH.parent / 'terraform'}"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert f"terraform {chdir} apply -auto-approve TF_VAR_parts=4" in calls, calls


# The docker of this machine for the scripts' build step: `build` is real (on local/engine's
# engine, host network: the engine has no bridge), `login` and `push` are recorded (no registry).
BUILDING_DOCKER = r"""#!/usr/bin/env bash
set -euo pipefail
printf 'docker %s\n' "$*" >>"$FAKE_LOG"
case "$1" in
build) shift; exec "$REAL_DOCKER" build --network host --quiet "$@" >/dev/null ;;
login) cat >/dev/null ;;
esac
"""


def test_submit_job_builds_both_targets_of_the_dockerfile_for_real(
    aws_env: dict[str, str], batch_outputs: Path, image: BuiltImage, tmp_path: Path
) -> None:
    """The build step of the three scripts (scripts/deploy-common.sh) on a real engine: Batch's
    two images from app/Dockerfile, with the local bases as --build-arg."""
    repo = json.loads(batch_outputs.read_text())["ecr_repository_url"]["value"]
    engine_env = {k: v for k, v in os.environ.items() if k == "DOCKER_HOST"}
    env = stand_ins(tmp_path, {**aws_env, **engine_env}, batch_outputs)
    docker = tmp_path / "bin" / "docker"
    docker.write_text(BUILDING_DOCKER)
    env["REAL_DOCKER"] = shutil.which("docker", path=aws_env["PATH"]) or "docker"
    env["DOCKER_BUILDKIT"] = "0"
    engine = subprocess.run(
        [str(ROOT / "local" / "engine"), "build-args"], capture_output=True, text=True, check=True
    )
    build_args = [arg for line in engine.stdout.split() for arg in ("--build-arg", line)]
    tag = f"real-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [str(SUBMIT), "--image-tag", tag, "--auto-approve", *build_args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    try:
        default = image.inspect(f"{repo}:{tag}")["Config"]
        array = image.inspect(f"{repo}:{tag}-array")["Config"]
        assert default["Entrypoint"] == ["csv-to-kafka"]
        assert array["Entrypoint"][-1] == "/opt/csv-to-kafka/manifest_entrypoint.py"
        assert default["User"] == array["User"] == "10001:10001"
        # The same layers as make image's: the build is the Dockerfile's, nothing of the script.
        assert default["Env"] == image.inspect(image.tag)["Config"]["Env"]
    finally:
        image.docker("rmi", f"{repo}:{tag}", f"{repo}:{tag}-array")
    calls = (tmp_path / "calls").read_text()
    assert f"docker push {repo}:{tag}-array" in calls


def test_an_existing_stack_gets_the_commits_image_without_a_targeted_apply(
    aws_env: dict[str, str], ecs_outputs: Path, tmp_path: Path
) -> None:
    env = stand_ins(tmp_path, aws_env, ecs_outputs)
    (tmp_path / "state" / "applied").touch()
    result = subprocess.run(
        [str(DEPLOY)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    commit = subprocess.run(
        ["git", "-C", str(DEPLOY.parent), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    calls = (tmp_path / "calls").read_text().splitlines()
    assert not any("-target" in call for call in calls), calls
    applies = [call for call in calls if " apply " in call]
    assert len(applies) == 1, calls
    # The commit, plus -dirty-<time> when the work tree has changes: ECR tags are immutable.
    assert re.fullmatch(rf".* apply -var image_tag={commit}(-dirty-\d{{14}})?", applies[0])


def test_a_script_refuses_an_unknown_option_with_its_usage(aws_env: dict[str, str]) -> None:
    for script in (DEPLOY, SUBMIT, LAUNCH):
        result = subprocess.run(
            [str(script), "--skip-biuld"], env=aws_env, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 2, (script, result.stderr)
        assert result.stderr.startswith("Usage: "), result.stderr
        assert f"{script.stem}: error: unknown option --skip-biuld" in result.stderr
