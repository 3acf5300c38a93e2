# Triggers: each object trigger submits one job whose only parameter is the event's key (the
# job definition's command reads it as Ref::key); the bucket is not a parameter: the rules
# match only the pipeline bucket, which the job reads from MLPIPE_STORE. Before the
# image is pushed and its tag set (or with Batch off) the same rules park their events in
# the dead-letter queue instead, where they wait, alarmed, to be re-delivered
# (docs/deploy.md, "Dead letters").

resource "aws_sqs_queue" "dlq" {
  name                              = "${local.name}-dlq"
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  message_retention_seconds         = 1209600
  tags                              = var.tags
}

resource "aws_cloudwatch_event_rule" "object" {
  for_each    = local.object_triggers
  name        = "${local.name}-object-${each.key}"
  description = "${var.stage}: object created under ${each.value.prefix}${each.value.suffix == "" ? "" : " ending in ${each.value.suffix}"}${each.value.max_size == null ? "" : ", under ${each.value.max_size} bytes"}${each.value.min_size == null ? "" : ", of ${each.value.min_size} bytes or more"}"

  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [var.bucket_name] }
      # EventBridge compares `detail.object.size` numerically when a bound is set.
      object = merge(
        {
          key = [
            each.value.suffix == ""
            ? tomap({ prefix = each.value.prefix })
            : tomap({ wildcard = "${each.value.prefix}*${each.value.suffix}" })
          ]
        },
        {
          for k, v in {
            size = [{
              numeric = each.value.max_size != null ? ["<", each.value.max_size] : [">=", each.value.min_size]
            }]
          } : k => v if each.value.min_size != null || each.value.max_size != null
        },
      )
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "object" {
  for_each = local.submit ? local.object_triggers : {}
  rule     = aws_cloudwatch_event_rule.object[each.key].name
  arn      = aws_batch_job_queue.this[0].arn
  role_arn = aws_iam_role.events[0].arn

  batch_target {
    job_definition = aws_batch_job_definition.this[0].arn
    job_name       = "${local.name}-job"
  }

  input_transformer {
    input_paths = {
      key = "$.detail.object.key"
    }
    input_template = "{\"Parameters\": {\"key\": <key>}}"
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }
}

resource "aws_cloudwatch_event_target" "parked" {
  for_each = local.submit ? {} : local.object_triggers
  rule     = aws_cloudwatch_event_rule.object[each.key].name
  arn      = aws_sqs_queue.dlq.arn
}

data "aws_iam_policy_document" "dlq" {

  statement {
    sid       = "EventBridgeDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = concat([for r in aws_cloudwatch_event_rule.object : r.arn], aws_cloudwatch_event_rule.failed[*].arn)
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

# --- alarms -----------------------------------------------------------------------------

# Batch emits a state-change event per job; a FAILED one (after its retries) notifies, and
# its event (with the job's parameters, i.e. the triggering key) is kept in the dead-letter
# queue like a submission that could not be made.
resource "aws_cloudwatch_event_rule" "failed" {
  count       = var.batch ? 1 : 0
  name        = "${local.name}-job-failed"
  description = "${var.stage}: a job on ${local.name} failed after its retries"

  event_pattern = jsonencode({
    source        = ["aws.batch"]
    "detail-type" = ["Batch Job State Change"]
    detail = {
      status   = ["FAILED"]
      jobQueue = [aws_batch_job_queue.this[0].arn]
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "failed_dead_letter" {
  count = var.batch ? 1 : 0
  rule  = aws_cloudwatch_event_rule.failed[0].name
  arn   = aws_sqs_queue.dlq.arn
}

resource "aws_cloudwatch_event_target" "failed" {
  count = var.batch ? 1 : 0
  rule  = aws_cloudwatch_event_rule.failed[0].name
  arn   = var.alarm_topic_arn

  input_transformer {
    input_paths = {
      job    = "$.detail.jobName"
      id     = "$.detail.jobId"
      reason = "$.detail.statusReason"
    }
    input_template = "\"mlpipe ${var.stage}: job <job> (<id>) failed: <reason>\""
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${local.name}-dead-letters"
  alarm_description   = "Training events wait in ${aws_sqs_queue.dlq.name}: parked before the image was set, submissions EventBridge could not make, or jobs that failed."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}

# --- jobs waiting for capacity ----------------------------------------------------------

# A job no instance can run (no GPU quota or capacity, a subnet without a route) waits in
# RUNNABLE without an error, and Batch publishes no queue metric. The watcher (the Lambda
# binary with MLPIPE_STAGE=batch-watch, functions/batch-watch) keeps each job's latest state
# from the queue's state-change events and every 5 minutes writes, per queue, the number of
# jobs waiting longer than runnable_alarm_minutes as an embedded-metric-format log line,
# which this alarm reads.
module "watch" {
  count  = var.batch ? 1 : 0
  source = "../function"

  # "<prefix>-batch-watch" for training; a second job module's watcher is named for it.
  name_prefix     = var.name_suffix == "" ? var.name_prefix : local.name
  stage           = "batch-watch"
  object_triggers = []
  schedules       = ["rate(5 minutes)"]
  event_patterns = {
    state = jsonencode({
      source        = ["aws.batch"]
      "detail-type" = ["Batch Job State Change"]
      detail        = { jobQueue = [aws_batch_job_queue.this[0].arn] }
    })
  }
  read_prefixes   = ["pipeline-runs/batch-watch/"]
  write_prefixes  = ["pipeline-runs/batch-watch/"]
  delete_prefixes = ["pipeline-runs/batch-watch/"] # a job's record, a day after it ended

  package_zip        = var.watch_package_zip
  architecture       = var.watch_architecture
  memory_size        = 256
  timeout            = 60
  bucket_name        = var.bucket_name
  bucket_arn         = var.bucket_arn
  kms_key_arn        = var.kms_key_arn
  alarm_topic_arn    = var.alarm_topic_arn
  log_retention_days = var.log_retention_days
  tags               = var.tags
  environment = merge(
    { for k, v in var.environment : k => v if k == "RUST_LOG" || k == "OTEL_EXPORTER_OTLP_ENDPOINT" },
    {
      MLPIPE_STORE                      = "s3://${var.bucket_name}"
      MLPIPE_BATCH_QUEUES               = local.name
      MLPIPE_RUNNABLE_THRESHOLD_SECONDS = tostring(var.runnable_alarm_minutes * 60)
      MLPIPE_METRIC_NAMESPACE           = var.metric_namespace
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "runnable" {
  count               = var.batch ? 1 : 0
  alarm_name          = "${local.name}-runnable-too-long"
  alarm_description   = "Training jobs on ${local.name} have waited in RUNNABLE over ${var.runnable_alarm_minutes} minutes: no instance can start (the GPU quota, the instance types' capacity, the subnets). docs/monitoring.md"
  namespace           = var.metric_namespace
  metric_name         = "TrainingJobsRunnableTooLong"
  dimensions          = { JobQueue = local.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
  tags                = var.tags
}
