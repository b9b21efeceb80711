# What a user types to see where the default job stands: `csv-to-kafka status` reads the
# checkpoints from the table, with the region of the stack. A job in parts (deploy.sh --parts,
# or N tasks of README's recipe) keeps its plan at SOURCE.plan.json, the default of both; with
# --plan every part is listed, also those not started yet. A job in parts is one object: s3_key
# (not a prefix, not s3_prefixes, which make a job of many objects).
# The key may hold spaces or quotes: the plan's URL is single-quoted for the shell.
locals {
  status_command       = "AWS_REGION=${var.aws_region} csv-to-kafka status --job-id ${var.job_id} --checkpoint-table ${module.core.table_name}"
  parts_status_command = "${local.status_command} --plan '${replace("s3://${var.s3_bucket}/${var.s3_key}.plan.json", "'", "'\\''")}'"
}

output "aws_region" {
  description = "Region of the stack."
  value       = var.aws_region
}

output "job_queue" {
  description = "Batch job queue to submit to."
  value       = aws_batch_job_queue.this.name
}

output "job_definition" {
  description = "Job definition (name:revision) of one job."
  value       = "${aws_batch_job_definition.this.name}:${aws_batch_job_definition.this.revision}"
}

output "array_job_definition" {
  description = "Job definition (name:revision) of manifest-driven array jobs."
  value       = "${aws_batch_job_definition.array.name}:${aws_batch_job_definition.array.revision}"
}

output "compute_environment_arn" {
  description = "Compute environment of the queue."
  value       = aws_batch_compute_environment.this.arn
}

output "ecr_repository_url" {
  description = "Where submit-job.sh pushes the images (<tag> and <tag>-array)."
  value       = module.core.ecr_repository_url
}

output "image_tag" {
  description = "Image tag the job definitions use."
  value       = var.image_tag
}

output "table_name" {
  description = "DynamoDB checkpoint table."
  value       = module.core.table_name
}

output "log_group_name" {
  description = "CloudWatch log group (streams batch/default/<task id>)."
  value       = module.core.log_group_name
}

output "job_id" {
  description = "Job id of the default job."
  value       = var.job_id
}

output "source" {
  description = "CSV object of the default job."
  value       = local.source
}

output "kafka_topic" {
  description = "Topic of the default job."
  value       = var.kafka_topic
}

output "dashboard_url" {
  description = "CloudWatch dashboard of the job."
  value       = module.monitoring.dashboard_url
}

output "submit_job_command" {
  description = "The aws batch submit-job command for the default job."
  value       = "aws batch submit-job --region ${var.aws_region} --job-name ${replace(var.job_id, "/[^a-zA-Z0-9_-]/", "-")} --job-queue ${aws_batch_job_queue.this.name} --job-definition ${aws_batch_job_definition.this.name}"
}

output "status_command" {
  description = "The command that shows the default job's checkpoint: status, rows, percent done, ETA (of a job in parts: each part found by its job id and the total)."
  value       = local.status_command
}

output "parts_status_command" {
  description = "The command that shows every part of the default job copied in parts (plan at SOURCE.plan.json): done, running or not started, percent, and the total."
  value       = local.parts_status_command
}
