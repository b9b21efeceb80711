# Option 2: the job on AWS Batch, on Spot capacity (Fargate Spot or EC2 Spot, capacity-optimized).
# Batch queues the job, starts it when capacity is there, and retries it after a Spot reclaim or
# an infrastructure failure; the processor resumes from its last commit each time.

provider "aws" {
  region = var.aws_region
}

data "aws_partition" "current" {}

locals {
  # The job's sources in order: s3_key (an object, or a prefix ending in /), then s3_prefixes.
  # CSV_TO_KAFKA_SOURCE takes them one per line (a line break never occurs in an S3 URL).
  source_keys = concat([var.s3_key], var.s3_prefixes)
  source      = join("\n", [for key in local.source_keys : "s3://${var.s3_bucket}/${key}"])
  # IAM: s3:GetObject on each object, or on every object under each prefix; s3:ListBucket
  # (modules/core) only under the prefixes.
  source_object_keys = [for key in local.source_keys : endswith(key, "/") ? "${key}*" : key]
  source_prefixes    = [for key in local.source_keys : key if endswith(key, "/")]

  fargate   = var.compute_type == "FARGATE_SPOT"
  image     = "${module.core.ecr_repository_url}:${var.image_tag}"
  vcpus     = var.task_cpu / 1024
  partition = data.aws_partition.current.partition

  # extra_environment last: an explicit setting wins, CSV_TO_KAFKA_SOURCE included (the IAM
  # policy still grants only the objects of s3_key and s3_prefixes).
  environment = merge(module.core.environment, {
    CSV_TO_KAFKA_SOURCE = local.source
    CSV_TO_KAFKA_TOPIC  = var.kafka_topic
    CSV_TO_KAFKA_JOB_ID = var.job_id
  }, var.extra_environment)
  # Array children get SOURCE, TOPIC and JOB_ID from their manifest line instead.
  array_environment = merge(
    module.core.environment,
    var.array_manifest_key == null ? {} : { CSV_TO_KAFKA_MANIFEST = "s3://${var.s3_bucket}/${var.array_manifest_key}" },
  )

  # Batch evaluates these in order; the first match decides. Exit codes are csv-to-kafka's.
  # Anything that matches none (a missing image, say) is retried by Batch up to retry_attempts.
  evaluate_on_exit = [
    { action = "RETRY", on_status_reason = "Host EC2*", on_exit_code = null }, # Spot reclaim of the instance
    { action = "RETRY", on_status_reason = null, on_exit_code = "143" },       # SIGTERM after a clean checkpoint
    { action = "RETRY", on_status_reason = null, on_exit_code = "4" },         # S3, Kafka or DynamoDB kept failing
    { action = "EXIT", on_status_reason = null, on_exit_code = "*" },          # 0 done, 2 configuration, 3 bad input, 1 bug
  ]

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = module.core.log_group_name
      awslogs-region        = var.aws_region
      awslogs-stream-prefix = "batch"
    }
  }

  container_common = {
    jobRoleArn             = module.core.processor_role_arn
    executionRoleArn       = module.core.execution_role_arn
    readonlyRootFilesystem = true
    privileged             = false
    resourceRequirements = [
      { type = "VCPU", value = tostring(local.vcpus) },
      { type = "MEMORY", value = tostring(var.task_memory) },
    ]
    secrets          = module.core.secrets
    logConfiguration = local.log_configuration
    volumes          = [{ name = "tmp" }]
    mountPoints      = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
  }

  container_platform = local.fargate ? {
    networkConfiguration         = { assignPublicIp = "DISABLED" }
    fargatePlatformConfiguration = { platformVersion = "LATEST" }
    runtimePlatform              = { operatingSystemFamily = "LINUX", cpuArchitecture = var.cpu_architecture }
  } : {}
}

module "core" {
  source = "../../modules/core"

  name                    = var.name
  aws_region              = var.aws_region
  s3_bucket               = var.s3_bucket
  s3_keys                 = distinct(concat(local.source_object_keys, var.array_manifest_key == null ? [] : [var.array_manifest_key], var.array_s3_keys))
  s3_prefixes             = local.source_prefixes
  s3_versioned            = var.s3_versioned
  s3_kms_key_arn          = var.s3_kms_key_arn
  msk_cluster_arn         = var.msk_cluster_arn
  kafka_bootstrap_servers = var.kafka_bootstrap_servers
  kafka_topics            = distinct(concat([var.kafka_topic], var.array_kafka_topics))
  kafka_create_topic      = var.create_topic
  kafka_auth              = var.kafka_auth
  sasl_username           = var.sasl_username
  sasl_secret_arn         = var.sasl_secret_arn
  sasl_secret_kms_key_arn = var.sasl_secret_kms_key_arn
  job_ids                 = concat([var.job_id], var.array_job_id_prefix == null ? [] : ["${var.array_job_id_prefix}*"])
  vpc_id                  = var.vpc_id
  role_service_principal  = "ecs-tasks.amazonaws.com"
  create_execution_role   = true
  log_retention_days      = var.log_retention_days
  extra_environment       = var.extra_environment
  tags                    = var.tags
}

# --- EC2 Spot only: the container instances' role and launch template -----------------------

data "aws_iam_policy_document" "instance" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  count = local.fargate ? 0 : 1

  name_prefix        = "${var.name}-batch-instance-"
  description        = "csv-to-kafka ${var.name}: Batch container instances (ECS agent); jobs use the job role"
  assume_role_policy = data.aws_iam_policy_document.instance.json

  tags = merge(var.tags, { Name = "${var.name}-batch-instance" })
}

resource "aws_iam_role_policy_attachment" "this" {
  count = local.fargate ? 0 : 1

  role       = aws_iam_role.this[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "this" {
  count = local.fargate ? 0 : 1

  name_prefix = "${var.name}-batch-"
  role        = aws_iam_role.this[0].name

  tags = merge(var.tags, { Name = "${var.name}-batch-instance" })
}

# IMDSv2 only, one hop: the ECS agent (host network) reaches the metadata service, the job's
# containers do not, so they hold only the job role's credentials.
resource "aws_launch_template" "this" {
  count = local.fargate ? 0 : 1

  name_prefix = "${var.name}-batch-"
  description = "csv-to-kafka ${var.name}: Batch Spot instances"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = 30
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name}-batch" })
  }

  tags = merge(var.tags, { Name = "${var.name}-batch" })
}

# --- Batch --------------------------------------------------------------------------------

resource "aws_batch_compute_environment" "this" {
  compute_environment_name_prefix = "${var.name}-"
  type                            = "MANAGED"
  state                           = "ENABLED"

  compute_resources {
    type               = var.compute_type
    max_vcpus          = var.max_vcpus
    subnets            = var.subnet_ids
    security_group_ids = [module.core.security_group_id]

    # EC2 Spot only (Fargate takes none of these): the pools least likely to be reclaimed.
    allocation_strategy = local.fargate ? null : "SPOT_CAPACITY_OPTIMIZED"
    min_vcpus           = local.fargate ? null : 0
    instance_type       = local.fargate ? null : split(",", var.instance_type)
    instance_role       = local.fargate ? null : aws_iam_instance_profile.this[0].arn
    tags                = local.fargate ? null : merge(var.tags, { Name = "${var.name}-batch" })

    dynamic "launch_template" {
      for_each = local.fargate ? [] : [1]
      content {
        launch_template_id = aws_launch_template.this[0].id
        version            = aws_launch_template.this[0].latest_version
      }
    }
  }

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_batch_job_queue" "this" {
  name     = var.name
  state    = "ENABLED"
  priority = 1

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.this.arn
  }

  tags = merge(var.tags, { Name = var.name })
}

# One job: the CSV object of s3_key (override the environment at submit time for another).
resource "aws_batch_job_definition" "this" {
  name                  = var.name
  type                  = "container"
  platform_capabilities = [local.fargate ? "FARGATE" : "EC2"]
  propagate_tags        = true

  container_properties = jsonencode(merge(local.container_common, local.container_platform, {
    image       = local.image
    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
  }))

  retry_strategy {
    attempts = var.retry_attempts

    dynamic "evaluate_on_exit" {
      for_each = local.evaluate_on_exit
      content {
        action           = evaluate_on_exit.value.action
        on_status_reason = evaluate_on_exit.value.on_status_reason
        on_exit_code     = evaluate_on_exit.value.on_exit_code
      }
    }
  }

  timeout {
    attempt_duration_seconds = var.timeout_seconds
  }

  tags = merge(var.tags, { Name = var.name })
}

# Array jobs: child N copies line N of the manifest (source,job_id,topic), with the image's
# batch-array target (submit-job.sh pushes it as <image_tag>-array). The manifest is
# array_manifest_key unless submit-job.sh --manifest names another (CSV_TO_KAFKA_MANIFEST).
resource "aws_batch_job_definition" "array" {
  name                  = "${var.name}-array"
  type                  = "container"
  platform_capabilities = [local.fargate ? "FARGATE" : "EC2"]
  propagate_tags        = true

  container_properties = jsonencode(merge(local.container_common, local.container_platform, {
    image       = "${local.image}-array"
    environment = [for k in sort(keys(local.array_environment)) : { name = k, value = local.array_environment[k] }]
  }))

  retry_strategy {
    attempts = var.retry_attempts

    dynamic "evaluate_on_exit" {
      for_each = local.evaluate_on_exit
      content {
        action           = evaluate_on_exit.value.action
        on_status_reason = evaluate_on_exit.value.on_status_reason
        on_exit_code     = evaluate_on_exit.value.on_exit_code
      }
    }
  }

  timeout {
    attempt_duration_seconds = var.timeout_seconds
  }

  tags = merge(var.tags, { Name = "${var.name}-array" })
}
