variable "name" {
  description = "Prefix of the dashboard and alarm names."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,200}$", var.name))
    error_message = "name may hold letters, digits, - and _ only (a dashboard name)."
  }
}

variable "aws_region" {
  description = "Region of the metrics and of the log group."
  type        = string
}

variable "job_id" {
  description = "Job id the per-job widgets and the alarms follow (the JobId dimension)."
  type        = string

  validation {
    condition     = length(var.job_id) > 0 && length(var.job_id) <= 200
    error_message = "job_id must be 1 to 200 characters."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the processor sends to (CSV_TO_KAFKA_METRICS_NAMESPACE)."
  type        = string
  default     = "CsvToKafka"
}

variable "metrics_interval_seconds" {
  description = "Seconds between the processor's sends (CSV_TO_KAFKA_METRICS_INTERVAL): the graph period."
  type        = number
  default     = 60

  validation {
    condition     = var.metrics_interval_seconds >= 60 && var.metrics_interval_seconds % 60 == 0
    error_message = "metrics_interval_seconds must be a multiple of 60 (standard-resolution periods)."
  }
}

variable "hourly_cost_usd" {
  description = "What one running job costs per hour (compute only), for the estimated-cost widget."
  type        = number

  validation {
    condition     = var.hourly_cost_usd >= 0
    error_message = "hourly_cost_usd must not be negative."
  }
}

variable "cost_label" {
  description = "What hourly_cost_usd prices, shown on the cost widget (e.g. \"Fargate 2 vCPU / 4 GB, us-east-1\")."
  type        = string
  default     = ""
}

variable "log_group_name" {
  description = "The job's log group, for the log widget."
  type        = string
}

variable "no_progress_minutes" {
  description = "Minutes without a committed row, while the job has not reached 100 %, before the no-progress alarm fires."
  type        = number
  default     = 15

  validation {
    condition     = var.no_progress_minutes >= 2 && var.no_progress_minutes <= 720
    error_message = "no_progress_minutes must be between 2 and 720."
  }
}

variable "parts" {
  description = "Parts of the job copied in parts (run --plan, deploy.sh --parts N): one no-progress alarm per part, over JobId = job_id.part-I; 0: none."
  type        = number
  default     = 0

  validation {
    condition     = var.parts >= 0 && var.parts <= 1000 && floor(var.parts) == var.parts
    error_message = "parts must be a whole number from 0 (not in parts) to 1000."
  }
}

variable "bad_rows_alarm_threshold" {
  description = "Bad rows (BadRows, --errors-tolerance all) in one period above which the bad-rows alarm fires; -1: no such alarm."
  type        = number
  default     = 0

  validation {
    condition     = var.bad_rows_alarm_threshold >= -1
    error_message = "bad_rows_alarm_threshold must be -1 (no alarm) or more."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires and clears (e.g. an SNS topic); empty for none."
  type        = list(string)
  default     = []
}

variable "extra_widgets" {
  description = "Widgets of the calling stack (CloudWatch dashboard body widget objects), appended at the bottom."
  type        = list(any)
  default     = []
}

variable "tags" {
  description = "Tags added to the alarms."
  type        = map(string)
  default     = {}
}
