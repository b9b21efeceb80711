output "table_name" {
  description = "DynamoDB checkpoint table (CSV_TO_KAFKA_CHECKPOINT_TABLE)."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the checkpoint table."
  value       = aws_dynamodb_table.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the job's output."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the log group."
  value       = aws_cloudwatch_log_group.this.arn
}

output "ecr_repository_url" {
  description = "ECR repository to push the image to (immutable tags)."
  value       = aws_ecr_repository.this.repository_url
}

output "ecr_repository_arn" {
  description = "ARN of the ECR repository."
  value       = aws_ecr_repository.this.arn
}

output "security_group_id" {
  description = "Egress-only security group for the processor."
  value       = aws_security_group.this.id
}

output "kms_key_arn" {
  description = "KMS key of the table, the log group and the repository."
  value       = aws_kms_key.this.arn
}

output "processor_role_arn" {
  description = "Role the processor runs as (ECS task role, Batch job role or EC2 instance role)."
  value       = aws_iam_role.processor.arn
}

output "processor_role_name" {
  description = "Name of the processor's role."
  value       = aws_iam_role.processor.name
}

output "execution_role_arn" {
  description = "ECS task execution role, or null when create_execution_role is false."
  value       = try(aws_iam_role.execution[0].arn, null)
}

output "instance_profile_name" {
  description = "Instance profile of the processor's role, or null unless role_service_principal is ec2.amazonaws.com."
  value       = try(aws_iam_instance_profile.this[0].name, null)
}

output "instance_profile_arn" {
  description = "ARN of the instance profile, or null."
  value       = try(aws_iam_instance_profile.this[0].arn, null)
}

output "processor_policy_json" {
  description = "The processor's IAM policy, for review."
  value       = data.aws_iam_policy_document.processor.json
}

output "launch_policy_json" {
  description = "The image-pull, log and secret policy of the execution role (or the instance), for review."
  value       = data.aws_iam_policy_document.launch.json
}

output "environment" {
  description = "CSV_TO_KAFKA_* and AWS_REGION settings shared by every job of the stack (without SOURCE, TOPIC and JOB_ID)."
  value       = local.environment
}

output "secrets" {
  description = "ECS/Batch container secrets: CSV_TO_KAFKA_SASL_PASSWORD from the SCRAM secret's password key, or empty."
  value       = local.secrets
}
