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
