# Where the pipeline's alarms go, and the drift signals AWS can see without extra collectors:
# a retrain request object (the drift stage writes one when drift held long enough) and,
# when the OpenTelemetry metrics are exported to CloudWatch, the dataset-drift gauge.
# Each function's error/DLQ/duration alarms and the training job's failures are defined in
# their own modules and notify this topic too.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "alarms" {
  statement {
    sid       = "AccountOwner"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:ListSubscriptionsByTopic"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "EventBridgeAndAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms.json
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# The drift stage writes requests/retrain/<id>.json when drift held for the configured number
# of windows; the training job starts from the same event. This tells a person.
resource "aws_cloudwatch_event_rule" "retrain_requested" {
  name        = "${var.name_prefix}-retrain-requested"
  description = "A retrain request was written (drift held long enough, or a person asked)"

  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [var.bucket_name] }
      object = { key = [{ prefix = "requests/retrain/" }] }
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "retrain_requested" {
  rule = aws_cloudwatch_event_rule.retrain_requested.name
  arn  = aws_sns_topic.alarms.arn

  input_transformer {
    input_paths = {
      bucket = "$.detail.bucket.name"
      key    = "$.detail.object.key"
    }
    input_template = "\"mlpipe: retrain requested by s3://<bucket>/<key>; the training stage starts from the same event.\""
  }
}

resource "aws_cloudwatch_metric_alarm" "dataset_drift" {
  for_each            = var.drift_metric_namespace == null ? toset([]) : toset(var.drift_alarm_models)
  alarm_name          = "${var.name_prefix}-dataset-drift-${each.value}"
  alarm_description   = "The drift stage reports dataset drift for model ${each.value} (mlpipe_drift_dataset_drift = 1); see docs/monitoring.md."
  namespace           = var.drift_metric_namespace
  metric_name         = "mlpipe_drift_dataset_drift"
  dimensions          = { model = each.value }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}
