# Least privilege for the processor (the ECS task role, the Batch job role or the EC2 instance
# role) and for whatever starts its container (the ECS task execution role, or the instance).

locals {
  uses_iam_auth   = var.kafka_auth == "iam"
  uses_scram_auth = var.kafka_auth == "scram-sha-512"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = [var.role_service_principal]
    }
  }
}

data "aws_iam_policy_document" "execution_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# What csv-to-kafka itself calls. CreateTable and DescribeTable are absent on purpose: the stacks
# run it with CSV_TO_KAFKA_CREATE_TABLE=false against the table created here.
data "aws_iam_policy_document" "processor" {
  statement {
    sid       = "ReadTheSourceObjects"
    actions   = concat(["s3:GetObject"], var.s3_versioned ? ["s3:GetObjectVersion"] : [])
    resources = local.source_object_arns
  }

  dynamic "statement" {
    for_each = var.s3_kms_key_arn == null ? [] : [var.s3_kms_key_arn]
    content {
      sid       = "DecryptTheSourceObjects"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.aws_region}.amazonaws.com"]
      }
    }
  }

  # A job over a prefix lists it at its first run (and again when it resumes, to find objects
  # changed or deleted): s3:ListBucket on the bucket, only under the prefixes given. The job's
  # fixed list of objects lives in the checkpoint table (the statement below covers it).
  dynamic "statement" {
    for_each = length(var.s3_prefixes) == 0 ? [] : [var.s3_prefixes]
    content {
      sid       = "ListTheSourcePrefixes"
      actions   = ["s3:ListBucket"]
      resources = ["arn:${local.partition}:s3:::${var.s3_bucket}"]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = statement.value
      }
    }
  }

  statement {
    sid       = "WriteAndReadThePlans"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = local.plan_object_arns
  }

  statement {
    sid       = "ReadAndWriteCheckpoints"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.this.arn]
  }

  statement {
    sid       = "UseTheTableKeyThroughDynamoDB"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.aws_region}.amazonaws.com"]
    }
  }

  # PutMetricData has no resource type: the namespace condition is how it is narrowed.
  statement {
    sid       = "SendMetricsToTheJobNamespace"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }

  dynamic "statement" {
    for_each = local.uses_iam_auth ? [1] : []
    content {
      sid       = "ConnectToTheCluster"
      actions   = ["kafka-cluster:Connect"]
      resources = [var.msk_cluster_arn]
    }
  }

  # WriteData to produce; ReadData and DescribeTopic because a run reads its topic back
  # (read_committed) to find the last committed row before it resumes.
  dynamic "statement" {
    for_each = local.uses_iam_auth ? [1] : []
    content {
      sid = "WriteAndReadBackTheTopics"
      actions = concat(
        ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData", "kafka-cluster:ReadData"],
        var.kafka_create_topic ? ["kafka-cluster:CreateTopic"] : [],
      )
      resources = local.topic_arns
    }
  }

  dynamic "statement" {
    for_each = local.uses_iam_auth ? [1] : []
    content {
      sid       = "OwnTheJobsTransactionalIds"
      actions   = ["kafka-cluster:DescribeTransactionalId", "kafka-cluster:AlterTransactionalId"]
      resources = local.transactional_id_arns
    }
  }

  dynamic "statement" {
    for_each = local.uses_iam_auth ? [1] : []
    content {
      sid       = "FindTheReaderGroupCoordinator"
      actions   = ["kafka-cluster:DescribeGroup"]
      resources = [local.reader_group_arn]
    }
  }
}

# What starting the container needs: pulling the image, writing its logs, reading the SCRAM
# secret into CSV_TO_KAFKA_SASL_PASSWORD.
data "aws_iam_policy_document" "launch" {
  # GetAuthorizationToken has no resource type; the pulls below are limited to the repository.
  statement {
    sid       = "LogInToEcr"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "WriteTheJobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
  }

  dynamic "statement" {
    for_each = local.uses_scram_auth ? [1] : []
    content {
      sid       = "ReadTheScramSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [var.sasl_secret_arn]
    }
  }

  dynamic "statement" {
    for_each = local.uses_scram_auth && var.sasl_secret_kms_key_arn != null ? [var.sasl_secret_kms_key_arn] : []
    content {
      sid       = "DecryptTheScramSecret"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.aws_region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "processor" {
  name_prefix        = "${var.name}-job-"
  description        = "csv-to-kafka ${var.name}: what the processor may do"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = merge(var.tags, { Name = "${var.name}-job" })

  lifecycle {
    precondition {
      condition     = var.kafka_auth != "scram-sha-512" || (var.sasl_username != null && var.sasl_secret_arn != null)
      error_message = "kafka_auth = scram-sha-512 needs sasl_username and sasl_secret_arn."
    }
  }
}

resource "aws_iam_role_policy" "processor" {
  name   = "csv-to-kafka"
  role   = aws_iam_role.processor.id
  policy = data.aws_iam_policy_document.processor.json
}

# Without an execution role (EC2), the instance itself pulls the image, writes the logs (Docker's
# awslogs driver) and reads the secret, with the processor's role.
resource "aws_iam_role_policy" "processor_launch" {
  count = var.create_execution_role ? 0 : 1

  name   = "launch"
  role   = aws_iam_role.processor.id
  policy = data.aws_iam_policy_document.launch.json
}

resource "aws_iam_instance_profile" "this" {
  count = var.role_service_principal == "ec2.amazonaws.com" ? 1 : 0

  name_prefix = "${var.name}-"
  role        = aws_iam_role.processor.name

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_iam_role" "execution" {
  count = var.create_execution_role ? 1 : 0

  name_prefix        = "${var.name}-exec-"
  description        = "csv-to-kafka ${var.name}: pull the image, write logs, inject the SCRAM secret"
  assume_role_policy = data.aws_iam_policy_document.execution_assume.json

  tags = merge(var.tags, { Name = "${var.name}-exec" })
}

resource "aws_iam_role_policy" "execution" {
  count = var.create_execution_role ? 1 : 0

  name   = "launch"
  role   = aws_iam_role.execution[0].id
  policy = data.aws_iam_policy_document.launch.json
}
