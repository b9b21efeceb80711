variable "aws_region" {
  description = "Region of the stack, the bucket, the MSK cluster and the metrics."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like us-east-1."
  }
}

variable "name" {
  description = "Prefix of every resource name; one stack per name."
  type        = string
  default     = "csv-to-kafka"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2 to 20 lowercase letters, digits or hyphens, starting with a letter (IAM name prefixes are short)."
  }
}

variable "s3_bucket" {
  description = "Bucket of the CSV object."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket))
    error_message = "s3_bucket must be a valid bucket name."
  }
}

variable "s3_key" {
  description = "Key of the CSV object (the job's --source is s3://s3_bucket/s3_key), or a prefix ending in / (every object under it, in listing order, as one ordered job)."
  type        = string

  validation {
    condition     = length(var.s3_key) > 0 && !startswith(var.s3_key, "/")
    error_message = "s3_key must not be empty or start with /."
  }
}

variable "s3_prefixes" {
  description = "More sources of the same job after s3_key, in this order, each a prefix ending in / (CSV_TO_KAFKA_SOURCE holds them one per line). s3:ListBucket is granted under them and s3:GetObject on their objects."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for prefix in var.s3_prefixes : endswith(prefix, "/") && !startswith(prefix, "/")])
    error_message = "Each of s3_prefixes must end with / and not start with /."
  }
}

variable "s3_versioned" {
  description = "Whether the bucket is versioned (the processor then reads the pinned VersionId: s3:GetObjectVersion)."
  type        = bool
  default     = false
}

variable "s3_kms_key_arn" {
  description = "KMS key of the source objects if they use SSE-KMS, else null."
  type        = string
  default     = null
}

variable "kafka_bootstrap_servers" {
  description = "MSK bootstrap brokers for kafka_auth (port 9098 for IAM, 9096 SCRAM, 9094 TLS)."
  type        = string

  validation {
    condition     = can(regex("^[^,:\\s]+:[0-9]+(,[^,:\\s]+:[0-9]+)*$", var.kafka_bootstrap_servers))
    error_message = "kafka_bootstrap_servers must be HOST:PORT[,HOST:PORT...]."
  }
}

variable "kafka_topic" {
  description = "Topic the rows go to (partition 0)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]{1,249}$", var.kafka_topic))
    error_message = "kafka_topic must be 1 to 249 letters, digits, '.', '_' or '-'."
  }
}

variable "create_topic" {
  description = "Let the processor create the topic with one partition if it is absent (grants kafka-cluster:CreateTopic)."
  type        = bool
  default     = false
}

variable "msk_cluster_arn" {
  description = "ARN of the MSK cluster; the IAM policy is scoped to it, the topic and the job's transactional id."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kafka:[a-z0-9-]+:[0-9]{12}:cluster/[^/]+/[^/]+$", var.msk_cluster_arn))
    error_message = "msk_cluster_arn must be arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID."
  }
}

variable "kafka_auth" {
  description = "MSK authentication: iam (default), tls or scram-sha-512."
  type        = string
  default     = "iam"

  validation {
    condition     = contains(["iam", "tls", "scram-sha-512"], var.kafka_auth)
    error_message = "kafka_auth must be iam, tls or scram-sha-512."
  }
}

variable "sasl_username" {
  description = "SCRAM user, with kafka_auth = scram-sha-512."
  type        = string
  default     = null
}

variable "sasl_secret_arn" {
  description = "Secrets Manager secret (AmazonMSK_...) whose password key is the SCRAM password, with kafka_auth = scram-sha-512."
  type        = string
  default     = null
}

variable "sasl_secret_kms_key_arn" {
  description = "Customer managed KMS key of sasl_secret_arn."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC with a route to the MSK brokers."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Private subnets (with a NAT gateway or VPC endpoints for S3, DynamoDB, CloudWatch, ECR and STS) the processor runs in."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnet_ids needs at least one subnet-... id."
  }
}

variable "job_id" {
  description = "Names the copy: a rerun with the same id resumes it (CSV_TO_KAFKA_JOB_ID)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]{1,200}$", var.job_id))
    error_message = "job_id must be 1 to 200 letters, digits, '.', '_' or '-' (it is part of the Kafka transactional id)."
  }
}

variable "image_tag" {
  description = "Tag of the image in the stack's ECR repository (deploy scripts push it; tags are immutable)."
  type        = string
  default     = "latest-build"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid image tag."
  }
}

variable "extra_environment" {
  description = "More CSV_TO_KAFKA_* settings for the job, e.g. { CSV_TO_KAFKA_CHECKPOINT_EVERY = \"20000\" }."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the job's log group, in days."
  type        = number
  default     = 365
}

variable "no_progress_minutes" {
  description = "Minutes without a committed row before the no-progress alarm fires."
  type        = number
  default     = 15
}

variable "parts" {
  description = "Parts of the job when it is copied in parts (deploy.sh --parts N): one no-progress alarm per part; 0: not in parts."
  type        = number
  default     = 0
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified by the alarms; empty for none."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "compute_type" {
  description = "Capacity of the compute environment: FARGATE_SPOT (no instances to manage) or SPOT (EC2 Spot, capacity-optimized, instance_type)."
  type        = string
  default     = "FARGATE_SPOT"

  validation {
    condition     = contains(["FARGATE_SPOT", "SPOT"], var.compute_type)
    error_message = "compute_type must be FARGATE_SPOT or SPOT."
  }
}

variable "task_cpu" {
  description = "CPU units of one job (1024 = 1 vCPU); Batch takes whole or Fargate-sized vCPUs."
  type        = number
  default     = 2048

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu must be 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "task_memory" {
  description = "Memory of one job in MiB."
  type        = number
  default     = 4096

  validation {
    condition     = var.task_memory >= 512 && var.task_memory % 512 == 0
    error_message = "task_memory must be a multiple of 512 MiB."
  }
}

variable "instance_type" {
  description = "EC2 instance type(s) for compute_type = SPOT, comma-separated (several types give capacity-optimized Spot more pools)."
  type        = string
  default     = "c6i.large,c7i.large,m6i.large"

  validation {
    condition     = can(regex("^[a-z0-9]+\\.[a-z0-9]+(,[a-z0-9]+\\.[a-z0-9]+)*$", var.instance_type))
    error_message = "instance_type must be one or more instance types, comma-separated (e.g. c6i.large,m6i.large)."
  }
}

variable "cpu_architecture" {
  description = "X86_64, or ARM64 if the image was built for linux/arm64 (and instance_type is Graviton)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "max_vcpus" {
  description = "Most vCPUs the compute environment runs at once (jobs in parallel = max_vcpus / vCPUs per job)."
  type        = number
  default     = 16

  validation {
    condition     = var.max_vcpus >= 1
    error_message = "max_vcpus must be at least 1."
  }
}

variable "retry_attempts" {
  description = "Attempts per job (1 to 10): a Spot reclaim, exit 143 or exit 4 starts the next; exit 2 or 3 ends the job."
  type        = number
  default     = 5

  validation {
    condition     = var.retry_attempts >= 1 && var.retry_attempts <= 10
    error_message = "retry_attempts must be between 1 and 10 (Batch's limit)."
  }
}

variable "timeout_seconds" {
  description = "Longest one attempt may run before Batch stops it (SIGTERM, then SIGKILL); a resumed attempt starts the clock again."
  type        = number
  default     = 14400

  validation {
    condition     = var.timeout_seconds >= 60
    error_message = "timeout_seconds must be at least 60 (Batch's minimum)."
  }
}

variable "array_s3_keys" {
  description = "Key patterns (with *) the array job's children may read: the manifest and the CSV objects it lists."
  type        = list(string)
  default     = []
}

variable "array_kafka_topics" {
  description = "Topics the manifest names, besides kafka_topic."
  type        = list(string)
  default     = []
}

variable "array_job_id_prefix" {
  description = "Prefix of the job ids in the manifest (their transactional ids are csv-to-kafka-<prefix>*), or null without array jobs."
  type        = string
  default     = null
}

variable "fargate_spot_price_vcpu_hour" {
  description = "USD per vCPU-hour of Fargate Spot (varies by region and time; us-east-1 about 0.0125), for the cost widget."
  type        = number
  default     = 0.0125
}

variable "fargate_spot_price_gb_hour" {
  description = "USD per GB-hour of Fargate Spot memory (us-east-1 about 0.0014), for the cost widget."
  type        = number
  default     = 0.0014
}

variable "ec2_spot_price_hour" {
  description = "USD per hour of one Spot instance of instance_type, for the cost widget with compute_type = SPOT."
  type        = number
  default     = 0.035
}

variable "array_manifest_key" {
  description = "Key (in s3_bucket) of the default manifest for array jobs: a CSV with the header source,job_id,topic and one line per child; null for none."
  type        = string
  default     = null
}
