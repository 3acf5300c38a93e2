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
  description = "${var.stage}: object created under ${each.value.prefix}${each.value.suffix == "" ? "" : " ending in ${each.value.suffix}"}"

  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [var.bucket_name] }
      object = {
        key = [
          each.value.suffix == ""
          ? tomap({ prefix = each.value.prefix })
          : tomap({ wildcard = "${each.value.prefix}*${each.value.suffix}" })
        ]
      }
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
