# Triggers. Object triggers match S3's "Object Created" events on EventBridge: a key must
# start with the prefix, and when a suffix is given it must also end with it (one wildcard
# "<prefix>*<suffix>" expresses both).

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
  for_each = local.object_triggers
  rule     = aws_cloudwatch_event_rule.object[each.key].name
  arn      = aws_lambda_function.this.arn

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  retry_policy {
    maximum_event_age_in_seconds = var.event_max_age_seconds
    maximum_retry_attempts       = var.event_max_retries
  }
}

resource "aws_lambda_permission" "object" {
  for_each      = local.object_triggers
  statement_id  = "events-object-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.object[each.key].arn
}

resource "aws_cloudwatch_event_rule" "pattern" {
  for_each      = var.event_patterns
  name          = "${local.name}-events-${each.key}"
  description   = "${var.stage}: ${each.key} events"
  event_pattern = each.value
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "pattern" {
  for_each = var.event_patterns
  rule     = aws_cloudwatch_event_rule.pattern[each.key].name
  arn      = aws_lambda_function.this.arn

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  retry_policy {
    maximum_event_age_in_seconds = var.event_max_age_seconds
    maximum_retry_attempts       = var.event_max_retries
  }
}

resource "aws_lambda_permission" "pattern" {
  for_each      = var.event_patterns
  statement_id  = "events-pattern-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.pattern[each.key].arn
}

resource "aws_cloudwatch_event_rule" "schedule" {
  for_each            = local.schedules
  name                = "${local.name}-schedule-${each.key}"
  description         = "${var.stage}: ${each.value}"
  schedule_expression = each.value
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "schedule" {
  for_each = local.schedules
  rule     = aws_cloudwatch_event_rule.schedule[each.key].name
  arn      = aws_lambda_function.this.arn

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  retry_policy {
    maximum_event_age_in_seconds = var.event_max_age_seconds
    maximum_retry_attempts       = var.event_max_retries
  }
}

resource "aws_lambda_permission" "schedule" {
  for_each      = local.schedules
  statement_id  = "events-schedule-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[each.key].arn
}
