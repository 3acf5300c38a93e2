# Three roles: the GPU instances (ECS agent, image pulls, logs), the job itself (S3 by
# prefix, from the routing table), and EventBridge (submit jobs to this queue only).

# --- instances --------------------------------------------------------------------------

data "aws_iam_policy_document" "instance_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  count              = var.batch ? 1 : 0
  name               = "${local.name}-instance"
  assume_role_policy = data.aws_iam_policy_document.instance_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "instance" {
  count      = var.batch ? 1 : 0
  role       = aws_iam_role.instance[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

data "aws_iam_policy_document" "instance" {
  statement {
    sid       = "DecryptImages"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "instance" {
  count  = var.batch ? 1 : 0
  name   = "${local.name}-instance"
  role   = aws_iam_role.instance[0].id
  policy = data.aws_iam_policy_document.instance.json
}

resource "aws_iam_instance_profile" "instance" {
  count = var.batch ? 1 : 0
  name  = "${local.name}-instance"
  role  = aws_iam_role.instance[0].name
  tags  = var.tags
}

# --- the job ----------------------------------------------------------------------------

data "aws_iam_policy_document" "job_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "job" {
  name               = "${local.name}-job"
  assume_role_policy = data.aws_iam_policy_document.job_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "job" {
  source_policy_documents = var.extra_policy_json == null ? [] : [var.extra_policy_json]

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
}

resource "aws_iam_role_policy" "job" {
  name   = "${local.name}-job"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

# --- EventBridge ------------------------------------------------------------------------

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "events" {
  count              = local.submit ? 1 : 0
  name               = "${local.name}-events"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "events" {
  count = local.submit ? 1 : 0
  statement {
    sid     = "SubmitTrainingJobs"
    actions = ["batch:SubmitJob"]
    resources = [
      aws_batch_job_queue.this[0].arn,
      "arn:${local.partition}:batch:${local.region}:${local.account_id}:job-definition/${aws_batch_job_definition.this[0].name}:*",
    ]
  }
}

resource "aws_iam_role_policy" "events" {
  count  = local.submit ? 1 : 0
  name   = "${local.name}-events"
  role   = aws_iam_role.events[0].id
  policy = data.aws_iam_policy_document.events[0].json
}
