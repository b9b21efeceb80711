# Option 3: a one-off EC2 Spot instance that runs the job and terminates itself. user-data.sh
# pulls the image, runs it, forwards the Spot interruption notice as SIGTERM and powers the
# instance off at the end; launch-spot.sh starts the instance from this launch template.

provider "aws" {
  region = var.aws_region
}

# The latest Amazon Linux 2023 for the architecture (docker and the AWS CLI are in its repos).
data "aws_ssm_parameter" "ami" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.cpu_architecture}"
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

  image = "${module.core.ecr_repository_url}:${var.image_tag}"

  # extra_environment last: an explicit setting wins, CSV_TO_KAFKA_SOURCE included (the IAM
  # policy still grants only the objects of s3_key and s3_prefixes).
  environment = merge(module.core.environment, {
    CSV_TO_KAFKA_SOURCE = local.source
    CSV_TO_KAFKA_TOPIC  = var.kafka_topic
    CSV_TO_KAFKA_JOB_ID = var.job_id
  }, var.extra_environment)

  # user-data.sh's own settings (see its header), then the container's environment.
  user_data_settings = merge(
    {
      SPOT_JOB_IMAGE     = local.image
      SPOT_JOB_LOG_GROUP = module.core.log_group_name
      SPOT_JOB_ATTEMPTS  = tostring(var.retry_attempts)
    },
    var.sasl_secret_arn == null ? {} : { SPOT_JOB_SASL_SECRET_ARN = var.sasl_secret_arn },
    local.environment,
  )

  # The same layout launch-spot.sh writes: a shebang, one single-quoted export per setting,
  # then user-data.sh itself.
  user_data = join("\n", concat(
    ["#!/bin/bash", "# Settings written by Terraform (option3-ec2-spot); user-data.sh follows."],
    [for k in sort(keys(local.user_data_settings)) : "export ${k}='${replace(local.user_data_settings[k], "'", "'\\''")}'"],
    [file("${path.module}/../user-data.sh")],
  ))
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
  role_service_principal  = "ec2.amazonaws.com"
  create_execution_role   = false
  log_retention_days      = var.log_retention_days
  extra_environment       = var.extra_environment
  tags                    = var.tags
}

resource "aws_launch_template" "this" {
  name_prefix   = "${var.name}-"
  description   = "csv-to-kafka ${var.name}: one-off Spot run of job ${var.job_id}"
  image_id      = data.aws_ssm_parameter.ami.insecure_value
  instance_type = var.instance_type
  user_data     = base64encode(local.user_data)
  # user-data.sh powers off at the end: the instance then terminates instead of stopping.
  instance_initiated_shutdown_behavior = "terminate"
  vpc_security_group_ids               = [module.core.security_group_id]
  update_default_version               = true

  iam_instance_profile {
    arn = module.core.instance_profile_arn
  }

  instance_market_options {
    market_type = "spot"

    spot_options {
      spot_instance_type             = "one-time"
      instance_interruption_behavior = "terminate"
      max_price                      = var.spot_max_price
    }
  }

  # IMDSv2 only, one hop: the container runs with --network host, so it reaches the metadata
  # service (the instance role) like the host does; nothing behind another hop can.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
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
    tags          = merge(var.tags, { Name = "${var.name}-${var.job_id}", JobId = var.job_id })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = "${var.name}-${var.job_id}", JobId = var.job_id })
  }

  tags = merge(var.tags, { Name = var.name })
}
