variable "name" {
  description = "Prefix of every resource name (table, log group, repository, roles)."
  type        = string
  default     = "csv-to-kafka"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2 to 20 lowercase letters, digits or hyphens, starting with a letter (IAM name prefixes are short)."
  }
}

variable "aws_region" {
  description = "Region of the stack; used in ARNs and in the KMS condition for CloudWatch Logs."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like us-east-1."
  }
}

variable "s3_bucket" {
  description = "Bucket that holds the CSV objects to copy."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket))
    error_message = "s3_bucket must be a valid bucket name (3 to 63 lowercase letters, digits, dots, hyphens)."
  }
}

variable "s3_keys" {
  description = "Keys (or key patterns with *) of the objects the job may read: s3:GetObject is granted on these only."
  type        = list(string)

  validation {
    condition     = length(var.s3_keys) > 0 && alltrue([for key in var.s3_keys : length(key) > 0 && !startswith(key, "/")])
    error_message = "s3_keys needs at least one key, none empty or starting with /."
  }
}

variable "s3_prefixes" {
  description = "Prefixes (ending in /) of the jobs that copy a whole prefix (--source s3://BUCKET/PREFIX/): s3:ListBucket is granted under these only. Their objects must also match s3_keys (e.g. PREFIX/*)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for prefix in var.s3_prefixes : endswith(prefix, "/") && !startswith(prefix, "/")])
    error_message = "Each of s3_prefixes must end with / and not start with /."
  }
}

variable "s3_versioned" {
  description = "Whether the bucket is versioned: the processor then reads the pinned VersionId, which needs s3:GetObjectVersion."
  type        = bool
  default     = false
}

variable "s3_kms_key_arn" {
  description = "KMS key that encrypts the source objects (SSE-KMS), or null for SSE-S3."
  type        = string
  default     = null
}

variable "msk_cluster_arn" {
  description = "ARN of the MSK cluster (arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID); topic, group and transactional-id ARNs derive from it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kafka:[a-z0-9-]+:[0-9]{12}:cluster/[^/]+/[^/]+$", var.msk_cluster_arn))
    error_message = "msk_cluster_arn must be an MSK cluster ARN: arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID."
  }
}

variable "kafka_topics" {
  description = "Topics the job writes (and reads back to find where to resume)."
  type        = list(string)

  validation {
    condition     = length(var.kafka_topics) > 0 && alltrue([for t in var.kafka_topics : can(regex("^[a-zA-Z0-9._*-]{1,249}$", t))])
    error_message = "kafka_topics needs at least one topic name (letters, digits, . _ -; * as a wildcard)."
  }
}

variable "kafka_create_topic" {
  description = "Whether the processor may create its topic (kafka-cluster:CreateTopic); deployments normally create topics beforehand."
  type        = bool
  default     = false
}

variable "kafka_auth" {
  description = "How the processor authenticates to MSK: iam (IAM access control), tls (TLS encryption without a client certificate: MSK with unauthenticated access over TLS) or scram-sha-512 (SASL/SCRAM with a Secrets Manager secret)."
  type        = string
  default     = "iam"

  validation {
    condition     = contains(["iam", "tls", "scram-sha-512"], var.kafka_auth)
    error_message = "kafka_auth must be iam, tls or scram-sha-512."
  }
}

variable "sasl_secret_arn" {
  description = "Secrets Manager secret (AmazonMSK_*) holding the SCRAM username and password; required with kafka_auth = scram-sha-512."
  type        = string
  default     = null
}

variable "sasl_secret_kms_key_arn" {
  description = "Customer managed KMS key that encrypts sasl_secret_arn (MSK requires one for SCRAM secrets)."
  type        = string
  default     = null
}

variable "job_ids" {
  description = "Job ids (or prefixes ending in *) the processor runs under; each owns the transactional id csv-to-kafka-<job id>."
  type        = list(string)

  validation {
    condition     = length(var.job_ids) > 0 && alltrue([for id in var.job_ids : length(id) > 0 && length(id) <= 200])
    error_message = "job_ids needs at least one id of 1 to 200 characters."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the processor's metrics (CSV_TO_KAFKA_METRICS_NAMESPACE); PutMetricData is allowed in this namespace only."
  type        = string
  default     = "CsvToKafka"
}

variable "role_service_principal" {
  description = "Service that assumes the processor's role: ecs-tasks.amazonaws.com for ECS and Batch, ec2.amazonaws.com for an EC2 instance (an instance profile is then created)."
  type        = string
  default     = "ecs-tasks.amazonaws.com"

  validation {
    condition     = contains(["ecs-tasks.amazonaws.com", "ec2.amazonaws.com"], var.role_service_principal)
    error_message = "role_service_principal must be ecs-tasks.amazonaws.com or ec2.amazonaws.com."
  }
}

variable "create_execution_role" {
  description = "Whether to create an ECS task execution role (image pull, log writes, secret injection). Without it, the processor's role gets those permissions (EC2)."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "VPC of the subnets the processor runs in."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "kafka_cidr_blocks" {
  description = "Where the brokers are, for the security group's egress on the MSK ports 9092-9098; null means the VPC's CIDR."
  type        = list(string)
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the job's CloudWatch log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ..., 365, ...)."
  }
}

variable "ecr_keep_images" {
  description = "How many images the ECR repository keeps; older ones expire."
  type        = number
  default     = 20

  validation {
    condition     = var.ecr_keep_images >= 1
    error_message = "ecr_keep_images must be at least 1."
  }
}

variable "deletion_protection" {
  description = "Protect the checkpoint table from deletion (turn off before destroying the stack on purpose)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "kafka_bootstrap_servers" {
  description = "Bootstrap brokers for the chosen authentication (MSK lists them per port: 9098 IAM, 9096 SCRAM, 9094 TLS)."
  type        = string

  validation {
    condition     = can(regex("^[^,:\\s]+:[0-9]+(,[^,:\\s]+:[0-9]+)*$", var.kafka_bootstrap_servers))
    error_message = "kafka_bootstrap_servers must be HOST:PORT[,HOST:PORT...]."
  }
}

variable "sasl_username" {
  description = "SCRAM user (CSV_TO_KAFKA_SASL_USERNAME); required with kafka_auth = scram-sha-512."
  type        = string
  default     = null
}

variable "extra_environment" {
  description = "More CSV_TO_KAFKA_* settings for the container (e.g. CSV_TO_KAFKA_CHECKPOINT_EVERY); they win over the module's."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : startswith(k, "CSV_TO_KAFKA_") && k != "CSV_TO_KAFKA_SASL_PASSWORD"])
    error_message = "extra_environment takes CSV_TO_KAFKA_* names only, and never the password (it comes from the secret)."
  }
}
