output "aws_region" {
  description = "Region of the stack."
  value       = var.aws_region
}

output "launch_template_id" {
  description = "Launch template launch-spot.sh starts the instance from."
  value       = aws_launch_template.this.id
}

output "launch_template_version" {
  description = "Latest version of the launch template."
  value       = aws_launch_template.this.latest_version
}

output "subnet_ids" {
  description = "Subnets launch-spot.sh may pick (the first by default)."
  value       = var.subnet_ids
}

output "ecr_repository_url" {
  description = "Where launch-spot.sh pushes the image."
  value       = module.core.ecr_repository_url
}

output "image" {
  description = "Image the instance runs."
  value       = local.image
}

output "table_name" {
  description = "DynamoDB checkpoint table."
  value       = module.core.table_name
}

output "log_group_name" {
  description = "CloudWatch log group (one stream per job id and instance)."
  value       = module.core.log_group_name
}

output "instance_profile_name" {
  description = "Instance profile of the processor's role."
  value       = module.core.instance_profile_name
}

output "job_id" {
  description = "Job id of the default run."
  value       = var.job_id
}

output "source" {
  description = "CSV object of the default run."
  value       = local.source
}

output "kafka_topic" {
  description = "Topic of the default run."
  value       = var.kafka_topic
}

output "environment" {
  description = "The container's CSV_TO_KAFKA_* settings (launch-spot.sh writes them into the user data)."
  value       = local.environment
}

output "sasl_secret_arn" {
  description = "SCRAM secret user-data.sh reads the password from, or null."
  value       = var.sasl_secret_arn
}

output "retry_attempts" {
  description = "Runs of the processor on the instance after exit 4."
  value       = var.retry_attempts
}

output "dashboard_url" {
  description = "CloudWatch dashboard of the job."
  value       = module.monitoring.dashboard_url
}
