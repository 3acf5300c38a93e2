# A stage as a container job on AWS Batch (training on GPU instances; batch inference on
# CPU instances for inputs too large for a function): the image repository, a managed EC2
# compute environment that scales to zero, a job queue, the job definition, and the
# EventBridge rules that submit one job per triggering object.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "${var.name_prefix}-${var.stage}${var.name_suffix}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.id
  partition  = data.aws_partition.current.partition

  object_triggers = { for i, t in var.object_triggers : tostring(i) => t }

  # Jobs are submitted only once the image they run exists: with Batch on and an image tag
  # set (and found in the repository, see data.aws_ecr_image.train). Until then the
  # triggering events are parked in the dead-letter queue, visible and alarmed, not lost.
  submit = var.batch && var.image_tag != null

  job_environment = [
    for k, v in merge(var.environment, { MLPIPE_STORE = "s3://${var.bucket_name}" }) :
    { name = k, value = v }
  ]
}

# --- image repository -------------------------------------------------------------------

resource "aws_ecr_repository" "this" {
  name                 = local.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the ${var.keep_images} most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.keep_images
      }
      action = { type = "expire" }
    }]
  })
}

# --- compute ----------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/batch/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# Unnamed: the argument is `compute_environment_name` in aws provider 5.x and `name` in 6.x,
# and leaving it out is valid in both (Terraform names it; the tag says whose it is).
resource "aws_batch_compute_environment" "this" {
  count = var.batch ? 1 : 0
  type  = "MANAGED"

  compute_resources {
    type                = var.compute_type
    allocation_strategy = var.compute_type == "SPOT" ? "SPOT_PRICE_CAPACITY_OPTIMIZED" : "BEST_FIT_PROGRESSIVE"
    instance_type       = var.instance_types
    instance_role       = aws_iam_instance_profile.instance[0].arn
    min_vcpus           = 0
    max_vcpus           = var.max_vcpus
    subnets             = var.subnet_ids
    security_group_ids  = var.security_group_ids

    ec2_configuration {
      image_type = var.image_type
    }

    tags = merge(var.tags, { Name = "${local.name}-batch" })
  }

  tags = merge(var.tags, { Name = local.name })

  depends_on = [aws_iam_role_policy_attachment.instance]

  lifecycle {
    precondition {
      condition     = length(var.subnet_ids) > 0
      error_message = "The training instances have no subnets: set batch_subnet_ids, or deploy in a region whose default VPC has default subnets."
    }
  }
}

# A new account's quota of GPU (G and VT) instance vCPUs is often 0, and Batch then leaves
# every job in RUNNABLE without an error: the plan checks that one job fits.
data "aws_servicequotas_service_quota" "gpu" {
  count        = var.batch && var.check_gpu_quota && var.job_gpus > 0 ? 1 : 0
  service_code = "ec2"
  # "Running On-Demand G and VT instances" / "All G and VT Spot Instance Requests" (vCPUs).
  quota_code = var.compute_type == "SPOT" ? "L-3819A6DF" : "L-DB2E81BA"

  lifecycle {
    postcondition {
      condition     = self.value >= var.job_vcpus
      error_message = "The account's EC2 quota \"${self.quota_name}\" in this region is ${self.value} vCPUs, below the ${var.job_vcpus} of one training job: request an increase in Service Quotas (EC2), or set check_gpu_quota = false to plan anyway."
    }
  }
}

resource "aws_batch_job_queue" "this" {
  count    = var.batch ? 1 : 0
  name     = local.name
  state    = "ENABLED"
  priority = 1

  compute_environment_order {
    order               = 0
    compute_environment = aws_batch_compute_environment.this[0].arn
  }

  tags = var.tags
}

# The image must exist before a job definition names it: with a tag that is not in the
# repository (not pushed yet, or a typo) this read fails the plan, before anything changes.
data "aws_ecr_image" "train" {
  count           = local.submit ? 1 : 0
  repository_name = aws_ecr_repository.this.name
  image_tag       = var.image_tag
}

# train-job is the image's ENTRYPOINT. Batch substitutes Ref::key (a whole argument, the
# only form Batch documents) from the job's parameters, which the EventBridge targets fill
# from the triggering event's key; the store is the pipeline bucket, from MLPIPE_STORE in
# the environment (the rules only match that bucket). A job submitted by hand passes
# `--parameters key=<manifest or request key>`.
resource "aws_batch_job_definition" "this" {
  count                 = local.submit ? 1 : 0
  name                  = local.name
  type                  = "container"
  platform_capabilities = ["EC2"]
  propagate_tags        = true

  container_properties = jsonencode({
    image      = "${aws_ecr_repository.this.repository_url}:${data.aws_ecr_image.train[0].image_tag}"
    command    = ["--key", "Ref::key"]
    jobRoleArn = aws_iam_role.job.arn
    resourceRequirements = concat(
      [
        { type = "VCPU", value = tostring(var.job_vcpus) },
        { type = "MEMORY", value = tostring(var.job_memory_mib) },
      ],
      var.job_gpus > 0 ? [{ type = "GPU", value = tostring(var.job_gpus) }] : [],
    )
    environment = local.job_environment
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = local.region
        awslogs-stream-prefix = var.stage
      }
    }
  })

  # 75 = temporary failure (train-job's contract), a lost host (e.g. a Spot interruption)
  # and a container that failed to start (an image pull that failed, a task that did not
  # start) are retried; every other exit, including 1 = rejected, ends the job. A job that
  # ends FAILED is a dead-letter record (events.tf).
  retry_strategy {
    attempts = var.job_attempts
    evaluate_on_exit {
      on_exit_code = "75"
      action       = "RETRY"
    }
    evaluate_on_exit {
      on_status_reason = "Host EC2*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_reason = "CannotPullContainerError*"
      action    = "RETRY"
    }
    evaluate_on_exit {
      on_status_reason = "Task failed to start*"
      action           = "RETRY"
    }
    evaluate_on_exit {
      on_reason = "*"
      action    = "EXIT"
    }
  }

  timeout {
    attempt_duration_seconds = var.job_timeout_seconds
  }

  tags = var.tags
}
