# The AWS side of one environment of the pipeline: storage, the online store, alarms, the
# definitions a fresh bucket starts with, and (in stages.tf) one module per routing-table row.
# The edge (modules/edge, Cloudflare) is composed beside it by the environment and reached
# through var.edge, so this module needs the aws provider only (and is applied against a
# local emulator by tests/tests/terraform_apply.rs).

data "aws_region" "current" {}

locals {
  lambda_zip      = "${var.package_dir}/lambda/mlpipe-lambda-${var.architecture}.zip"
  worker_main     = "${var.package_dir}/worker/index.js"
  worker_wasm     = "${var.package_dir}/worker/index_bg.wasm"
  definitions_dir = "${var.package_dir}/definitions"

  # Settings every function stage gets; each stage adds its own below.
  function_env = merge(
    {
      MLPIPE_STORE = module.storage.store_url
      RUST_LOG     = var.rust_log
    },
    var.otel_exporter_otlp_endpoint == "" ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT = var.otel_exporter_otlp_endpoint },
  )

  features_env = merge(local.function_env, {
    MLPIPE_ONLINE_STORE = "dynamodb://${module.online.table_name}?region=${data.aws_region.current.id}"
  })

  # The replication path to the edge: model bundles to R2 over its S3 API, feature records
  # to KV over Cloudflare's HTTP API.
  publish_env = merge(local.function_env, {
    MLPIPE_EDGE_R2           = var.edge.models_store_url
    MLPIPE_EDGE_KV_ACCOUNT   = var.edge.kv_account_id
    MLPIPE_EDGE_KV_NAMESPACE = var.edge.kv_namespace_id
    CLOUDFLARE_API_TOKEN     = var.edge.kv_api_token
  })

  # The drift stage reads the Worker's prediction logs from its R2 bucket.
  drift_env = merge(local.function_env, {
    MLPIPE_LOGS_STORE = var.edge.logs_store_url
  })

  train_env = merge(
    { RUST_LOG = var.rust_log },
    var.otel_exporter_otlp_endpoint == "" ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT = var.otel_exporter_otlp_endpoint },
    var.mlflow_tracking_uri == null ? {} : { MLFLOW_TRACKING_URI = var.mlflow_tracking_uri },
  )

  content_types = {
    json = "application/json"
    toml = "application/toml"
    yaml = "application/yaml"
    yml  = "application/yaml"
    csv  = "text/csv"
    md   = "text/markdown"
  }
}

module "storage" {
  source = "../storage"

  name_prefix                        = var.name_prefix
  bucket_name                        = var.bucket_name
  force_destroy                      = var.force_destroy
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  quarantine_expiration_days         = var.quarantine_expiration_days
  run_records_expiration_days        = var.run_records_expiration_days
  tags                               = var.tags
}

module "online" {
  source = "../online"

  table_name          = "${var.name_prefix}-online"
  kms_key_arn         = module.storage.kms_key_arn
  deletion_protection = var.deletion_protection
  tags                = var.tags
}

module "monitoring" {
  source = "../monitoring"

  name_prefix            = var.name_prefix
  kms_key_arn            = module.storage.kms_key_arn
  bucket_name            = module.storage.bucket_name
  alarm_email            = var.alarm_email
  drift_metric_namespace = var.drift_metric_namespace
  drift_alarm_models     = var.drift_alarm_models
  tags                   = var.tags
}

# The feature stage's online store: conditional puts and reads of single items, and the
# DescribeTable the binary makes at start (shared/online: ensure_table).
data "aws_iam_policy_document" "online" {
  statement {
    sid       = "OnlineStore"
    actions   = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [module.online.table_arn]
  }
}

# Batch inference reads entities from the online store (and DescribeTable at start).
data "aws_iam_policy_document" "online_read" {
  statement {
    sid       = "OnlineStoreRead"
    actions   = ["dynamodb:DescribeTable", "dynamodb:GetItem"]
    resources = [module.online.table_arn]
  }
}

# A fresh deployment starts with the project's contracts, feature and model definitions.
# The package's definitions are what `mlpipe push` publishes for the project (contracts by
# content hash, `_current.json` pointers, history). Terraform seeds a fresh bucket with them
# and then leaves them alone: later changes go through `mlpipe push --store s3://BUCKET`,
# which checks compatibility and moves the pointers, and an apply must not move them back.
resource "aws_s3_object" "definitions" {
  for_each = fileset(local.definitions_dir, "**")

  bucket       = module.storage.bucket_name
  key          = "definitions/${each.value}"
  source       = "${local.definitions_dir}/${each.value}"
  source_hash  = filemd5("${local.definitions_dir}/${each.value}")
  content_type = lookup(local.content_types, lower(reverse(split(".", each.value))[0]), "application/octet-stream")
  kms_key_id   = module.storage.kms_key_arn
  tags         = var.tags

  lifecycle {
    ignore_changes = all
  }
}

# --- network of the training instances ----------------------------------------------------

# Without batch_subnet_ids the instances start in the default VPC's default subnets; a
# region without a default VPC (deleted, or an organisation that never creates one) fails
# the plan here with what to set, rather than at the first job.
data "aws_vpcs" "default" {
  count = var.training_batch && length(var.batch_subnet_ids) == 0 ? 1 : 0
  filter {
    name   = "is-default"
    values = ["true"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.ids) == 1
      error_message = "This region has no default VPC: set batch_subnet_ids to subnets with a route to S3, ECR and CloudWatch (a public subnet, or NAT or VPC endpoints)."
    }
  }
}

data "aws_subnets" "default" {
  count = var.training_batch && length(var.batch_subnet_ids) == 0 ? 1 : 0
  filter {
    name   = "vpc-id"
    values = data.aws_vpcs.default[0].ids
  }
  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

data "aws_subnet" "given" {
  count = var.training_batch && length(var.batch_subnet_ids) > 0 && length(var.batch_security_group_ids) == 0 ? 1 : 0
  id    = var.batch_subnet_ids[0]
}

locals {
  batch_subnet_ids = length(var.batch_subnet_ids) > 0 ? var.batch_subnet_ids : flatten(data.aws_subnets.default[*].ids)
  batch_vpc_id     = length(var.batch_subnet_ids) > 0 ? one(data.aws_subnet.given[*].vpc_id) : one(flatten(data.aws_vpcs.default[*].ids))
}

resource "aws_security_group" "batch" {
  #checkov:skip=CKV2_AWS_5:Attached to both Batch compute environments (modules/training, for training and batch inference) through security_group_ids; checkov loses that edge once the module is instantiated twice.
  count       = var.training_batch && length(var.batch_security_group_ids) == 0 ? 1 : 0
  name        = "${var.name_prefix}-train"
  description = "mlpipe batch instances (training, batch inference): outbound HTTPS only (S3, ECR, CloudWatch, Batch)"
  vpc_id      = local.batch_vpc_id
  tags        = var.tags

  egress {
    description = "HTTPS to AWS APIs and the image registry"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

locals {
  batch_security_group_ids = length(var.batch_security_group_ids) > 0 ? var.batch_security_group_ids : aws_security_group.batch[*].id
}
