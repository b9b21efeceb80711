# Option 1: the job as an ECS task on Fargate, started with `aws ecs run-task` (deploy.sh).
# Production runs: no instance to manage, on-demand capacity by default (never interrupted).

provider "aws" {
  region = var.aws_region
}

locals {
  # The job's sources in order: s3_key (an object, or a prefix ending in /), then s3_prefixes.
  # CSV_TO_KAFKA_SOURCE takes them one per line (a line break never occurs in an S3 URL).
  source_keys = concat([var.s3_key], var.s3_prefixes)
  source      = join("\n", [for key in local.source_keys : "s3://${var.s3_bucket}/${key}"])
  # IAM: s3:GetObject on each object, or on every object under each prefix; s3:ListBucket
  # (modules/core) only under the prefixes.
  source_object_keys = [for key in local.source_keys : endswith(key, "/") ? "${key}*" : key]
  source_prefixes    = [for key in local.source_keys : key if endswith(key, "/")]

  container_name = "csv-to-kafka"
  image          = "${module.core.ecr_repository_url}:${var.image_tag}"

  # extra_environment last: an explicit setting wins, CSV_TO_KAFKA_SOURCE included (the IAM
  # policy still grants only the objects of s3_key and s3_prefixes).
  environment = merge(module.core.environment, {
    CSV_TO_KAFKA_SOURCE = local.source
    CSV_TO_KAFKA_TOPIC  = var.kafka_topic
    CSV_TO_KAFKA_JOB_ID = var.job_id
  }, var.extra_environment)
}

module "core" {
  source = "../../modules/core"

  name                    = var.name
  aws_region              = var.aws_region
  s3_bucket               = var.s3_bucket
  s3_keys                 = local.source_object_keys
  s3_prefixes             = local.source_prefixes
  s3_versioned            = var.s3_versioned
  s3_kms_key_arn          = var.s3_kms_key_arn
  msk_cluster_arn         = var.msk_cluster_arn
  kafka_bootstrap_servers = var.kafka_bootstrap_servers
  kafka_topics            = [var.kafka_topic]
  kafka_create_topic      = var.create_topic
  kafka_auth              = var.kafka_auth
  sasl_username           = var.sasl_username
  sasl_secret_arn         = var.sasl_secret_arn
  sasl_secret_kms_key_arn = var.sasl_secret_kms_key_arn
  job_ids                 = [var.job_id]
  vpc_id                  = var.vpc_id
  role_service_principal  = "ecs-tasks.amazonaws.com"
  create_execution_role   = true
  log_retention_days      = var.log_retention_days
  extra_environment       = var.extra_environment
  tags                    = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = var.capacity_provider
    weight            = 1
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = module.core.execution_role_arn
  task_role_arn            = module.core.processor_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The root file system is read-only; /tmp is the task's ephemeral storage.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = local.image
    essential              = true
    memory                 = var.task_memory # the whole task's: one container
    readonlyRootFilesystem = true
    # SIGTERM, then this long before SIGKILL (120 s is Fargate's maximum): the processor commits
    # the open transaction, writes its checkpoint and exits 143 well within it.
    stopTimeout = 120
    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    secrets     = module.core.secrets
    mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = module.core.log_group_name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "ecs"
      }
    }
  }])

  tags = merge(var.tags, { Name = var.name })
}
