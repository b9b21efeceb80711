# The job's CloudWatch dashboard and alarms, built from docs/metrics.md: every metric carries the
# dimension JobId (a part's ProgressPercent also {JobId, Part}); counters are graphed as Sum,
# gauges as Maximum/Minimum, statistics as Average/Maximum. The period is the processor's send
# interval.

locals {
  ns     = var.metrics_namespace
  period = var.metrics_interval_seconds

  # One metric of this job, in the dashboard's array form: [namespace, name, dim, value, options].
  job_metric = { for metric in [
    "RecordsSent", "BytesRead", "ProgressPercent", "RowsPerSecond", "EtaSeconds",
    "Retries", "Errors", "CommitLatency", "TransactionsCommitted", "CheckpointLatency",
    "BadRows",
    "ObjectsDone",
  ] : metric => [local.ns, metric, "JobId", var.job_id] }

  alarm_arns = concat(
    [aws_cloudwatch_metric_alarm.errors.arn, aws_cloudwatch_metric_alarm.no_progress["job"].arn],
    aws_cloudwatch_metric_alarm.bad_rows[*].arn,
    [for part in range(var.parts) : aws_cloudwatch_metric_alarm.no_progress["part-${part}"].arn],
  )

  widgets = [
    {
      type = "text", x = 0, y = 0, width = 24, height = 2
      properties = {
        markdown = join("", [
          "## csv-to-kafka `${var.job_id}`\n",
          "Metrics in namespace `${local.ns}` with dimension `JobId` (docs/metrics.md). ",
          "Set the time range to cover the whole job: the running sums start at the range's start.",
        ])
      }
    },
    {
      type = "metric", x = 0, y = 2, width = 12, height = 6
      properties = {
        title  = "Throughput (rows/s)"
        region = var.aws_region
        view   = "timeSeries"
        period = local.period
        metrics = [
          concat(local.job_metric["RecordsSent"], [{ id = "m1", stat = "Sum", visible = false }]),
          [{ expression = "m1 / PERIOD(m1)", id = "e1", label = "rows/s committed" }],
          concat(local.job_metric["RowsPerSecond"], [{ id = "m2", stat = "Average", label = "recent rate (ETA's)" }]),
        ]
        yAxis = { left = { min = 0 } }
      }
    },
    {
      type = "metric", x = 12, y = 2, width = 6, height = 6
      properties = {
        title     = "Progress (%)"
        region    = var.aws_region
        view      = "singleValue"
        sparkline = true
        period    = local.period
        metrics   = [concat(local.job_metric["ProgressPercent"], [{ stat = "Maximum", label = "bytes committed" }])]
      }
    },
    {
      type = "metric", x = 18, y = 2, width = 6, height = 6
      properties = {
        title  = "ETA (minutes)"
        region = var.aws_region
        view   = "singleValue"
        period = local.period
        metrics = [
          concat(local.job_metric["EtaSeconds"], [{ id = "m1", stat = "Minimum", visible = false }]),
          [{ expression = "m1 / 60", id = "e1", label = "minutes left" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 8, width = 8, height = 6
      properties = {
        title  = "Rows sent"
        region = var.aws_region
        view   = "timeSeries"
        period = local.period
        metrics = [
          concat(local.job_metric["RecordsSent"], [{ id = "m1", stat = "Sum", visible = false }]),
          [{ expression = "RUNNING_SUM(m1)", id = "e1", label = "rows committed (in range)" }],
          concat(local.job_metric["TransactionsCommitted"], [{ id = "m2", stat = "Sum", label = "transactions per period", yAxis = "right" }]),
        ]
      }
    },
    {
      type = "metric", x = 8, y = 8, width = 8, height = 6
      properties = {
        title  = "Retries and errors"
        region = var.aws_region
        view   = "timeSeries"
        stat   = "Sum"
        period = local.period
        metrics = [
          concat(local.job_metric["Retries"], [{ label = "retries" }]),
          concat(local.job_metric["Errors"], [{ label = "errors", color = "#d62728" }]),
          # --errors-tolerance all: rows committed to the dead-letter topic or dropped
          concat(local.job_metric["BadRows"], [{ label = "bad rows (dead letters)", color = "#ff7f0e" }]),
        ]
        yAxis = { left = { min = 0 } }
      }
    },
    {
      type = "metric", x = 16, y = 8, width = 8, height = 6
      properties = {
        title  = "Commit and checkpoint latency (ms)"
        region = var.aws_region
        view   = "timeSeries"
        period = local.period
        metrics = [
          concat(local.job_metric["CommitLatency"], [{ stat = "Average", label = "Kafka commit, average" }]),
          concat(local.job_metric["CommitLatency"], [{ stat = "Maximum", label = "Kafka commit, maximum" }]),
          concat(local.job_metric["CheckpointLatency"], [{ stat = "Average", label = "DynamoDB checkpoint, average" }]),
          concat(local.job_metric["CheckpointLatency"], [{ stat = "Maximum", label = "DynamoDB checkpoint, maximum" }]),
        ]
      }
    },
    {
      type = "metric", x = 0, y = 14, width = 8, height = 6
      properties = {
        title  = "Estimated cost so far (USD)"
        region = var.aws_region
        view   = "timeSeries"
        period = local.period
        metrics = [
          concat(local.job_metric["ProgressPercent"], [{ id = "m1", stat = "SampleCount", visible = false }]),
          [{ expression = "IF(m1 > 0, PERIOD(m1), 0)", id = "e1", label = "seconds running in the period", visible = false }],
          [{ expression = "RUNNING_SUM(e1) / 3600", id = "e2", label = "hours running so far", yAxis = "right" }],
          [{ expression = "e2 * ${var.hourly_cost_usd}", id = "e3", label = "USD at ${var.hourly_cost_usd}/h ${var.cost_label}" }],
        ]
      }
    },
    {
      type = "metric", x = 8, y = 14, width = 8, height = 6
      properties = {
        title  = "S3 bytes read (MB/s)"
        region = var.aws_region
        view   = "timeSeries"
        period = local.period
        metrics = [
          concat(local.job_metric["BytesRead"], [{ id = "m1", stat = "Sum", visible = false }]),
          [{ expression = "m1 / PERIOD(m1) / 1000000", id = "e1", label = "MB/s" }],
        ]
      }
    },
    {
      type = "metric", x = 16, y = 14, width = 8, height = 6
      properties = {
        title  = "All jobs: rows/s"
        region = var.aws_region
        view   = "timeSeries"
        period = local.period
        metrics = [
          [{ expression = "SEARCH('{${local.ns},JobId} MetricName=\"RecordsSent\"', 'Sum', ${local.period}) / ${local.period}", id = "e1", label = "" }],
        ]
      }
    },
    {
      type = "alarm", x = 0, y = 20, width = 8, height = 4
      properties = {
        title  = "Alarms"
        alarms = local.alarm_arns
      }
    },
    {
      type = "log", x = 8, y = 20, width = 16, height = 6
      properties = {
        title  = "Warnings and errors in the job's log"
        region = var.aws_region
        view   = "table"
        query  = "SOURCE '${var.log_group_name}' | fields @timestamp, @logStream, @message | filter @message like /WARNING|ERROR/ | sort @timestamp desc | limit 50"
      }
    },
    {
      # A job over many objects (a prefix, several sources, a manifest); empty for one object.
      type = "metric", x = 0, y = 24, width = 8, height = 2
      properties = {
        title  = "Objects done (a job over many objects)"
        region = var.aws_region
        view   = "singleValue"
        period = local.period
        metrics = [
          concat(local.job_metric["ObjectsDone"], [{ stat = "Maximum", label = "objects wholly committed" }]),
        ]
      }
    },
    {
      # A job in parts (run --plan --part I): each part sends ProgressPercent also under
      # {JobId = the job's id, Part = I}; one line per part. Empty for a job not in parts.
      type = "metric", x = 0, y = 26, width = 24, height = 6
      properties = {
        title  = "Progress per part (%)"
        region = var.aws_region
        view   = "timeSeries"
        period = local.period
        metrics = [
          [{ expression = "SEARCH('{${local.ns},JobId,Part} MetricName=\"ProgressPercent\" JobId=\"${var.job_id}\"', 'Maximum', ${local.period})", id = "e1", label = "part" }],
        ]
        yAxis = { left = { min = 0, max = 100 } }
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = concat(local.widgets, var.extra_widgets) })
}

# Errors counts attempts ended by exhausted retries, bad input or fencing: any is worth a look.
resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.name}-errors"
  alarm_description   = "csv-to-kafka job ${var.job_id} reported an error (exhausted retries, bad input or fencing): see the log group ${var.log_group_name}."
  namespace           = local.ns
  metric_name         = "Errors"
  dimensions          = { JobId = var.job_id }
  statistic           = "Sum"
  period              = local.period
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = merge(var.tags, { Name = "${var.name}-errors" })
}

# Bad rows (--errors-tolerance all): the job goes on and exits 0, so only this says that rows
# went to the dead-letter topic (or were dropped) instead of the topic.
resource "aws_cloudwatch_metric_alarm" "bad_rows" {
  count = var.bad_rows_alarm_threshold >= 0 ? 1 : 0

  alarm_name          = "${var.name}-bad-rows"
  alarm_description   = "csv-to-kafka job ${var.job_id} committed more than ${var.bad_rows_alarm_threshold} bad rows to its dead-letter topic (or dropped them) in a period: see the log group ${var.log_group_name}."
  namespace           = local.ns
  metric_name         = "BadRows"
  dimensions          = { JobId = var.job_id }
  statistic           = "Sum"
  period              = local.period
  evaluation_periods  = 1
  threshold           = var.bad_rows_alarm_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = merge(var.tags, { Name = "${var.name}-bad-rows" })
}

# "No progress": no row committed for no_progress_minutes while the last progress seen is below
# 100 %. Counters and gauges are sent only when the job commits, so a job that hangs, dies or
# retries sends nothing: FILL(REPEAT) carries the last progress forward over the gap, and the
# window is twice the limit so that the last data point before the gap is inside it. A finished
# job's last ProgressPercent is 100, and a job that never started has no data: neither alarms.
#
# A job in parts: each part is a job of its own (JobId = J.part-I) with its own RecordsSent and
# ProgressPercent, and sends no gauge under J, so the job's alarm stays OK while a part stalls
# among parts that run. So one alarm per part too, the same test over the part's own metrics: a
# part that finished has sent ProgressPercent 100, one not started yet has no data.
locals {
  progress_watches = merge(
    {
      job = {
        job_id      = var.job_id
        alarm_name  = "${var.name}-no-progress"
        description = "csv-to-kafka job ${var.job_id} committed no row for ${var.no_progress_minutes} minutes before reaching 100 %: it hangs, died or keeps retrying. `csv-to-kafka status --job-id ${var.job_id}` shows the checkpoint."
      }
    },
    { for part in range(var.parts) : "part-${part}" => {
      job_id      = "${var.job_id}.part-${part}"
      alarm_name  = "${var.name}-part-${part}-no-progress"
      description = "csv-to-kafka job ${var.job_id}, part ${part} (job id ${var.job_id}.part-${part}), committed no row for ${var.no_progress_minutes} minutes before reaching 100 % of its range: it hangs, died or keeps retrying. `csv-to-kafka status --job-id ${var.job_id} --plan PLAN` shows every part."
    } },
  )
}

resource "aws_cloudwatch_metric_alarm" "no_progress" {
  for_each = local.progress_watches

  alarm_name          = each.value.alarm_name
  alarm_description   = each.value.description
  evaluation_periods  = 2 * ceil(var.no_progress_minutes * 60 / local.period)
  datapoints_to_alarm = ceil(var.no_progress_minutes * 60 / local.period)
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  metric_query {
    id          = "progressing"
    label       = "1 while rows are committed or the job is done, 0 while stalled"
    expression  = "IF(FILL(progress, REPEAT) < 100, FILL(rows, 0), 1)"
    return_data = true
  }

  metric_query {
    id = "rows"
    metric {
      namespace   = local.ns
      metric_name = "RecordsSent"
      dimensions  = { JobId = each.value.job_id }
      stat        = "Sum"
      period      = local.period
    }
  }

  metric_query {
    id = "progress"
    metric {
      namespace   = local.ns
      metric_name = "ProgressPercent"
      dimensions  = { JobId = each.value.job_id }
      stat        = "Maximum"
      period      = local.period
    }
  }

  tags = merge(var.tags, { Name = each.value.alarm_name })
}

# The job's alarm was a single resource before parts had theirs.
moved {
  from = aws_cloudwatch_metric_alarm.no_progress
  to   = aws_cloudwatch_metric_alarm.no_progress["job"]
}
