# The job's dashboard and alarms (modules/monitoring), the cost widget at the Spot price assumed
# in ec2_spot_price_hour.

module "monitoring" {
  source = "../../modules/monitoring"

  name                = "${var.name}-${replace(var.job_id, "/[^a-zA-Z0-9_-]/", "-")}"
  aws_region          = var.aws_region
  job_id              = var.job_id
  hourly_cost_usd     = var.ec2_spot_price_hour
  cost_label          = "(EC2 Spot ${var.instance_type})"
  log_group_name      = module.core.log_group_name
  no_progress_minutes = var.no_progress_minutes
  alarm_actions       = var.alarm_actions
  tags                = var.tags

  extra_widgets = [{
    type = "metric", x = 0, y = 26, width = 24, height = 6
    properties = {
      title  = "Spot instances of this stack: CPU (%)"
      region = var.aws_region
      view   = "timeSeries"
      period = 60
      metrics = [
        [{ expression = "SEARCH('{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\" ${var.name}', 'Average', 60)", id = "e1", label = "" }],
      ]
    }
  }]
}
