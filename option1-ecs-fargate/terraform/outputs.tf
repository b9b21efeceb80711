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

output "cluster_name" {
  description = "ECS cluster to run the task in."
  value       = aws_ecs_cluster.this.name
}

output "task_definition_arn" {
  description = "Task definition revision created by Terraform (deploy.sh registers one per image it pushes)."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family" {
  description = "Task definition family."
  value       = aws_ecs_task_definition.this.family
}

output "container_name" {
  description = "Name of the container in the task definition (for --overrides)."
  value       = local.container_name
}

output "capacity_provider" {
  description = "Capacity provider run-task uses."
  value       = var.capacity_provider
}

output "subnet_ids" {
  description = "Subnets the task runs in."
  value       = var.subnet_ids
}

output "security_group_id" {
  description = "Egress-only security group of the task."
  value       = module.core.security_group_id
}

output "assign_public_ip" {
  description = "Whether the task gets a public IP."
  value       = var.assign_public_ip
}

output "ecr_repository_url" {
  description = "Where deploy.sh pushes the image."
  value       = module.core.ecr_repository_url
}

output "table_name" {
  description = "DynamoDB checkpoint table."
  value       = module.core.table_name
}

output "log_group_name" {
  description = "CloudWatch log group of the task (streams ecs/csv-to-kafka/<task id>)."
  value       = module.core.log_group_name
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

output "dashboard_url" {
  description = "CloudWatch dashboard of the job."
  value       = module.monitoring.dashboard_url
}

output "run_task_command" {
  description = "The aws ecs run-task command that starts the job with the Terraform revision."
  value = join(" ", [
    "aws ecs run-task --region ${var.aws_region}",
    "--cluster ${aws_ecs_cluster.this.name}",
    "--task-definition ${aws_ecs_task_definition.this.arn}",
    "--capacity-provider-strategy capacityProvider=${var.capacity_provider},weight=1",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", var.subnet_ids)}],securityGroups=[${module.core.security_group_id}],assignPublicIp=${var.assign_public_ip ? "ENABLED" : "DISABLED"}}'",
  ])
}

output "status_command" {
  description = "The command that shows the default job's checkpoint: status, rows, percent done, ETA (of a job in parts: each part found by its job id and the total)."
  value       = local.status_command
}

output "parts_status_command" {
  description = "The command that shows every part of the default job copied in parts (plan at SOURCE.plan.json): done, running or not started, percent, and the total."
  value       = local.parts_status_command
}
