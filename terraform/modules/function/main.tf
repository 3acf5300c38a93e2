# One function stage: the shared multi-call binary deployed as its own Lambda function, with
# its own role (built from the stage's read and write prefixes), triggers, dead-letter queue,
# log group and alarms.

locals {
  name = "${var.name_prefix}-${var.stage}"

  # Keyed by position, so that a rule keeps its name while the list keeps its order.
  object_triggers = { for i, t in var.object_triggers : tostring(i) => t }
  schedules       = { for i, s in var.schedules : tostring(i) => s }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sqs_queue" "dlq" {
  name                              = "${local.name}-dlq"
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  message_retention_seconds         = 1209600
  tags                              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The function reaches only S3, DynamoDB and Cloudflare over public endpoints; a VPC would add NAT cost and nothing to reach.
  #checkov:skip=CKV_AWS_272:The zip is built locally by `cargo xtask package` (sha256 in manifest.json); there is no signing profile to verify it against.
  function_name                  = local.name
  description                    = "mlpipe ${var.stage} stage"
  role                           = aws_iam_role.this.arn
  filename                       = var.package_zip
  source_code_hash               = filebase64sha256(var.package_zip)
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = merge(var.environment, { MLPIPE_STAGE = var.stage })
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this]
}
