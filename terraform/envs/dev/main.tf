# The dev environment: small functions, on-demand GPU capacity that scales to zero, and
# buckets that `terraform destroy` may empty.

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge({ project = "mlpipe", environment = "dev" }, var.tags)
  }
}

# Reads the API token from CLOUDFLARE_API_TOKEN.
provider "cloudflare" {}

# The edge: the Worker with its R2 buckets, KV namespace and the stages' API tokens.
module "edge" {
  source = "../../modules/edge"

  account_id            = var.cloudflare_account_id
  name_prefix           = var.name_prefix
  script_name           = var.worker_script_name
  worker_main_module    = "${var.package_dir}/worker/index.js"
  worker_wasm_module    = "${var.package_dir}/worker/index_bg.wasm"
  models                = var.worker_models
  log_sample            = var.worker_log_sample
  r2_location           = var.r2_location
  workers_dev_subdomain = var.workers_dev_subdomain
  workers_dev           = var.workers_dev
  custom_domain         = var.custom_domain
  zone_id               = var.zone_id
  otlp_endpoint         = var.worker_otlp_endpoint
  otlp_headers          = var.worker_otlp_headers
}

# The AWS side, which reaches the edge through the edge module's outputs.
module "pipeline" {
  source = "../../modules/pipeline"

  name_prefix                 = var.name_prefix
  package_dir                 = var.package_dir
  architecture                = var.architecture
  force_destroy               = var.force_destroy
  deletion_protection         = var.deletion_protection
  log_retention_days          = var.log_retention_days
  rust_log                    = var.rust_log
  otel_exporter_otlp_endpoint = var.otel_exporter_otlp_endpoint
  alarm_email                 = var.alarm_email

  lambda_memory_size   = var.lambda_memory_size
  lambda_timeout       = var.lambda_timeout
  reserved_concurrency = var.reserved_concurrency

  batch_subnet_ids         = var.batch_subnet_ids
  batch_security_group_ids = var.batch_security_group_ids
  batch_instance_types     = var.batch_instance_types
  batch_compute_type       = var.batch_compute_type
  batch_max_vcpus          = var.batch_max_vcpus
  train_image_tag          = var.train_image_tag
  batch_predict_image_tag  = var.batch_predict_image_tag
  check_gpu_quota          = var.check_gpu_quota
  mlflow_tracking_uri      = var.mlflow_tracking_uri

  edge = {
    models_store_url = module.edge.models_store_url
    logs_store_url   = module.edge.logs_store_url
    kv_account_id    = var.cloudflare_account_id
    kv_namespace_id  = module.edge.kv_namespace_id
    kv_api_token     = module.edge.kv_api_token
  }

  drift_metric_namespace = var.drift_metric_namespace
  drift_alarm_models     = var.drift_alarm_models
}
