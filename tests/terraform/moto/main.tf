# The AWS side of mlpipe (terraform/modules/pipeline) as a root for a local moto server:
# `tests/tests/terraform_apply.rs` runs init, validate, plan, apply and destroy with it,
# using the aws provider from the machine's filesystem mirror (no registry). Batch is off
# when it applies (moto cannot create compute environments), so the training rules park
# their events in the train dead-letter queue, where the test observes which keys they
# match; with Batch on it only plans (the job definition waits for an image tag that
# exists). Not for a real account: the credentials below are moto's and every endpoint is
# the emulator.

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The release on the machines' filesystem mirror; the modules accept 5.100 to 6.x.
      version = "5.100.0"
    }
  }
}

variable "endpoint" {
  description = "The moto server, e.g. https://127.0.0.1:5000."
  type        = string
}

variable "package_dir" {
  description = "Output folder of `cargo xtask package` (its x86_64 Lambda zip and definitions)."
  type        = string
}

variable "training_batch" {
  description = "Batch on: moto cannot create compute environments, so the test only plans with it."
  type        = bool
  default     = false
}

variable "train_image_tag" {
  description = "The training image's tag (null: none yet; the training rules park their events)."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "mlpipe-apply"
}

provider "aws" {
  region     = "us-east-1"
  access_key = "testing"
  secret_key = "testing"

  # moto serves HTTPS with a self-signed certificate: the bucket policies deny requests
  # without TLS, and moto enforces them.
  insecure = true

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    cloudwatch    = var.endpoint
    dynamodb      = var.endpoint
    ec2           = var.endpoint
    ecr           = var.endpoint
    events        = var.endpoint
    iam           = var.endpoint
    kms           = var.endpoint
    lambda        = var.endpoint
    logs          = var.endpoint
    s3            = var.endpoint
    sns           = var.endpoint
    sqs           = var.endpoint
    sts           = var.endpoint
    batch         = var.endpoint
    servicequotas = var.endpoint
  }
}

module "pipeline" {
  source = "../../../terraform/modules/pipeline"

  name_prefix     = var.name_prefix
  package_dir     = var.package_dir
  architecture    = "x86_64"
  force_destroy   = true
  training_batch  = var.training_batch
  train_image_tag = var.train_image_tag
  alarm_email     = "oncall@example.com"

  # moto has no Service Quotas defaults to read.
  check_gpu_quota = false

  # Placeholders where the edge module's outputs go: the apply test checks the AWS side.
  edge = {
    models_store_url = "s3://mlpipe-apply-models?endpoint=https://0.r2.cloudflarestorage.com&region=auto"
    logs_store_url   = "s3://mlpipe-apply-logs?endpoint=https://0.r2.cloudflarestorage.com&region=auto"
    kv_account_id    = "0123456789abcdef0123456789abcdef"
    kv_namespace_id  = "fedcba9876543210fedcba9876543210"
    kv_api_token     = "not-a-token"
  }
}

output "bucket_name" {
  description = "The pipeline bucket."
  value       = module.pipeline.bucket_name
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URL of each stage."
  value       = module.pipeline.dead_letter_queue_urls
}

output "function_names" {
  description = "Lambda function of each function stage."
  value       = module.pipeline.function_names
}
