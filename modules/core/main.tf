# What every deployment option needs: the checkpoint table, the log group, the image repository,
# an egress-only security group, one KMS key for all of them, and the processor's IAM roles
# (iam.tf). The three stacks (option1-ecs-fargate, option2-aws-batch, option3-ec2-spot) call
# this module and add only how the container is started.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  table_name     = "${var.name}-checkpoints"
  log_group_name = "/csv-to-kafka/${var.name}"
  log_group_arn  = "arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:${local.log_group_name}"

  # MSK IAM resource ARNs share the cluster's NAME/UUID: cluster/NAME/UUID -> topic/NAME/UUID/TOPIC.
  msk_cluster_path = split(":cluster/", var.msk_cluster_arn)[1]
  msk_arn_prefix   = split(":cluster/", var.msk_cluster_arn)[0]
  topic_arns       = [for topic in var.kafka_topics : "${local.msk_arn_prefix}:topic/${local.msk_cluster_path}/${topic}"]
  # The processor's transactional.id is csv-to-kafka-<job id> (config.py, transactional_id).
  # A planned part I of job J (csv-to-kafka run --plan) is job J.part-I (plan.py, part_job_id).
  transactional_id_arns = flatten([for id in var.job_ids : [
    "${local.msk_arn_prefix}:transactional-id/${local.msk_cluster_path}/csv-to-kafka-${id}",
    "${local.msk_arn_prefix}:transactional-id/${local.msk_cluster_path}/csv-to-kafka-${id}.part-*",
  ]])
  # The resume scan uses a consumer with group.id csv-to-kafka-reader-<uuid4> and assign(): no
  # join and no commits, but librdkafka still looks up the group's coordinator (Describe on it).
  reader_group_arn = "${local.msk_arn_prefix}:group/${local.msk_cluster_path}/csv-to-kafka-reader-*"

  source_object_arns = [for key in var.s3_keys : "arn:${local.partition}:s3:::${var.s3_bucket}/${key}"]
  # csv-to-kafka plan writes KEY.plan.json beside the object (option2-aws-batch/deploy.sh --parts)
  # and every part reads it.
  plan_object_arns  = [for key in var.s3_keys : "arn:${local.partition}:s3:::${var.s3_bucket}/${key}.plan.json"]
  kafka_cidr_blocks = var.kafka_cidr_blocks != null ? var.kafka_cidr_blocks : [data.aws_vpc.this.cidr_block]

  # The container's settings common to every job of the stack (csv-to-kafka run --help lists
  # them); each stack adds the per-job ones: SOURCE, TOPIC, JOB_ID.
  environment = merge(
    {
      AWS_REGION                     = var.aws_region
      AWS_DEFAULT_REGION             = var.aws_region
      CSV_TO_KAFKA_BOOTSTRAP_SERVERS = var.kafka_bootstrap_servers
      CSV_TO_KAFKA_CHECKPOINT_TABLE  = local.table_name
      CSV_TO_KAFKA_CREATE_TABLE      = "false"
      CSV_TO_KAFKA_CREATE_TOPIC      = tostring(var.kafka_create_topic)
      CSV_TO_KAFKA_AUTH              = var.kafka_auth
      CSV_TO_KAFKA_METRICS_NAMESPACE = var.metrics_namespace
      CSV_TO_KAFKA_PROGRESS          = "json"
    },
    var.kafka_auth == "scram-sha-512" ? { CSV_TO_KAFKA_SASL_USERNAME = var.sasl_username } : {},
    var.extra_environment,
  )

  # MSK SCRAM secrets are JSON {"username": ..., "password": ...}: only the password is injected.
  secrets = var.kafka_auth == "scram-sha-512" ? [
    { name = "CSV_TO_KAFKA_SASL_PASSWORD", valueFrom = "${var.sasl_secret_arn}:password::" },
  ] : []
}

# One customer managed key for the table, the log group and the repository: who may read them is
# then decided in one key policy, and every use is in CloudTrail.
data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:A key policy's Resource "*" is this key alone; the account-root statement is AWS's default key policy, which hands the key's administration to IAM policies.
  # checkov:skip=CKV_AWS_111:Same statement: in a key policy, "*" cannot reach any other resource than the key.
  # checkov:skip=CKV_AWS_356:Same statement: key policies have no narrower Resource than "*" (the key itself).
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsTheJobLogGroup"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [local.log_group_arn]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "csv-to-kafka ${var.name}: checkpoint table, logs, image repository"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# Key job_id (S), as the processor reads and writes it. On-demand: a job writes one item per
# Kafka transaction, a few per second at most, and nothing between runs.
resource "aws_dynamodb_table" "this" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "job_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "job_id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = merge(var.tags, { Name = local.table_name })
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn

  tags = merge(var.tags, { Name = local.log_group_name })
}

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.ecr_keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.ecr_keep_images
      }
      action = { type = "expire" }
    }]
  })
}

# Nothing connects to the processor; it connects to the brokers and to AWS APIs (HTTPS, through a
# NAT gateway or VPC endpoints). DNS and the instance metadata service are not filtered by
# security groups.
resource "aws_security_group" "this" {
  # checkov:skip=CKV2_AWS_5:Attached by each stack (ECS task network configuration, Batch compute environment, EC2 launch template) through the security_group_id output; checkov's graph does not follow module outputs.
  name_prefix = "${var.name}-"
  description = "csv-to-kafka ${var.name}: egress only, to MSK and to AWS APIs"
  vpc_id      = var.vpc_id

  egress {
    description = "MSK brokers: 9092 plaintext, 9094 TLS, 9096 SASL/SCRAM, 9098 IAM"
    from_port   = 9092
    to_port     = 9098
    protocol    = "tcp"
    cidr_blocks = local.kafka_cidr_blocks
  }

  egress {
    description = "AWS APIs over HTTPS: S3, DynamoDB, CloudWatch, ECR, STS, Secrets Manager"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}
