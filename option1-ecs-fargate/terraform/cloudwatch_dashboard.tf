# The job's dashboard and alarms (modules/monitoring). The cost widget prices the task's vCPUs and
# memory at the Fargate rates in the variables.

locals {
  hourly_cost_usd = (var.task_cpu / 1024) * var.fargate_price_vcpu_hour + (var.task_memory / 1024) * var.fargate_price_gb_hour
}

module "monitoring" {
  source = "../../modules/monitoring"

  name                = "${var.name}-${replace(var.job_id, "/[^a-zA-Z0-9_-]/", "-")}"
  aws_region          = var.aws_region
  job_id              = var.job_id
  hourly_cost_usd     = local.hourly_cost_usd
  cost_label          = "(${var.capacity_provider} ${var.task_cpu / 1024} vCPU, ${var.task_memory / 1024} GB)"
  log_group_name      = module.core.log_group_name
  no_progress_minutes = var.no_progress_minutes
  parts               = var.parts
  alarm_actions       = var.alarm_actions
  tags                = var.tags

  extra_widgets = [{
    type = "metric", x = 0, y = 26, width = 24, height = 6
    properties = {
      title  = "ECS task CPU and memory (Container Insights)"
      region = var.aws_region
      view   = "timeSeries"
      stat   = "Maximum"
      period = 60
      metrics = [
        ["ECS/ContainerInsights", "CpuUtilized", "ClusterName", aws_ecs_cluster.this.name, "TaskDefinitionFamily", aws_ecs_task_definition.this.family],
        ["ECS/ContainerInsights", "MemoryUtilized", "ClusterName", aws_ecs_cluster.this.name, "TaskDefinitionFamily", aws_ecs_task_definition.this.family, { yAxis = "right" }],
      ]
    }
  }]
}
