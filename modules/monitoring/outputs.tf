output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_url" {
  description = "Console address of the dashboard."
  value       = "https://${var.aws_region}.console.aws.amazon.com/cloudwatch/home?region=${var.aws_region}#dashboards:name=${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "alarm_arns" {
  description = "ARNs of the errors, no-progress and (unless disabled) bad-rows alarms, then the parts' no-progress alarms."
  value       = local.alarm_arns
}

output "widget_count" {
  description = "How many widgets the dashboard has."
  value       = length(local.widgets) + length(var.extra_widgets)
}
