# The job's dashboard and alarms (modules/monitoring). The cost widget prices one job at the Spot
# rates in the variables. For array jobs, the "All jobs" widget shows every child; the alarms
# follow job_id, and with parts = N (deploy.sh --parts N) also each part's job id.

locals {
  hourly_cost_usd = local.fargate ? (
    local.vcpus * var.fargate_spot_price_vcpu_hour + (var.task_memory / 1024) * var.fargate_spot_price_gb_hour
  ) : var.ec2_spot_price_hour
}

module "monitoring" {
  source = "../../modules/monitoring"

  name                = "${var.name}-${replace(var.job_id, "/[^a-zA-Z0-9_-]/", "-")}"
  aws_region          = var.aws_region
  job_id              = var.job_id
  hourly_cost_usd     = local.hourly_cost_usd
  cost_label          = local.fargate ? "(Fargate Spot ${local.vcpus} vCPU, ${var.task_memory / 1024} GB)" : "(EC2 Spot ${split(",", var.instance_type)[0]})"
  log_group_name      = module.core.log_group_name
  no_progress_minutes = var.no_progress_minutes
  parts               = var.parts
  alarm_actions       = var.alarm_actions
  tags                = var.tags

  extra_widgets = [{
    type = "text", x = 0, y = 26, width = 24, height = 3
    properties = {
      markdown = join("\n", [
        "### AWS Batch",
        "Queue `${aws_batch_job_queue.this.name}`: `aws batch list-jobs --job-queue ${aws_batch_job_queue.this.name} --job-status RUNNING` (also SUBMITTED, RUNNABLE, FAILED).",
        "A job's attempts and their exit codes: `aws batch describe-jobs --jobs JOB_ID --query 'jobs[0].attempts[].container.exitCode'`.",
      ])
    }
  }]
}
