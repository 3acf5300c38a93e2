# The stage's role. Its S3 object statements come ONLY from var.read_prefixes and
# var.write_prefixes, i.e. from the routing table: a stage can read and write exactly the
# zones the table gives it (and delete under var.delete_prefixes, which only the training
# queue's watcher has).

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${local.name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "delete" {
  count = length(var.delete_prefixes) > 0 ? 1 : 0

  statement {
    sid       = "DeletePrefixes"
    actions   = ["s3:DeleteObject"]
    resources = [for p in var.delete_prefixes : "${var.bucket_arn}/${p}*"]
  }
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = concat(
    var.extra_policy_json == null ? [] : [var.extra_policy_json],
    data.aws_iam_policy_document.delete[*].json,
  )

  statement {
    sid       = "ReadPrefixes"
    actions   = ["s3:GetObject"]
    resources = [for p in var.read_prefixes : "${var.bucket_arn}/${p}*"]
  }

  # Listing is not limited by prefix: S3 answers a read of a missing key with 404 only to a
  # caller allowed s3:ListBucket for that request, and a GetObject request carries no
  # s3:prefix to match a condition on; without it "not there yet" (which the stages' exactly-
  # once checks rely on) would come back as 403. Key names are all a listing reveals.
  statement {
    sid       = "ListBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }

  statement {
    sid       = "WritePrefixes"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [for p in var.write_prefixes : "${var.bucket_arn}/${p}*"]
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${local.name}-lambda"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# EventBridge hands events that it could not deliver to the same dead-letter queue.
data "aws_iam_policy_document" "dlq" {
  count = length(var.object_triggers) + length(var.schedules) + length(var.event_patterns) > 0 ? 1 : 0

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
      values = concat(
        [for r in aws_cloudwatch_event_rule.object : r.arn],
        [for r in aws_cloudwatch_event_rule.schedule : r.arn],
        [for r in aws_cloudwatch_event_rule.pattern : r.arn],
      )
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  count     = length(var.object_triggers) + length(var.schedules) + length(var.event_patterns) > 0 ? 1 : 0
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq[0].json
}
