# The edge: the inference Worker (an ES module with its wasm), the R2 buckets it reads models
# from and writes prediction logs to, the KV namespace of online features, and the
# credentials the AWS side uses to replicate into them (tokens.tf). Binding names match
# edge/edge-worker/wrangler.toml.

locals {
  models_bucket = "${var.name_prefix}-models"
  logs_bucket   = "${var.name_prefix}-inference-logs"
  r2_endpoint   = "https://${var.account_id}.r2.cloudflarestorage.com"
}

resource "cloudflare_r2_bucket" "models" {
  account_id = var.account_id
  name       = local.models_bucket
  location   = var.r2_location
}

resource "cloudflare_r2_bucket" "logs" {
  account_id = var.account_id
  name       = local.logs_bucket
  location   = var.r2_location
}

resource "cloudflare_workers_kv_namespace" "features" {
  account_id = var.account_id
  title      = "${var.name_prefix}-features"
}

resource "cloudflare_workers_script" "this" {
  account_id         = var.account_id
  script_name        = var.script_name
  main_module        = "index.js"
  content_file       = var.worker_main_module
  content_sha256     = filesha256(var.worker_main_module)
  compatibility_date = var.compatibility_date

  # index.js imports "./index_bg.wasm": uploaded as a second module part.
  files = {
    "index_bg.wasm" = {
      content_base64 = filebase64(var.worker_wasm_module)
      content_type   = "application/wasm"
    }
  }

  bindings = [
    { name = "REGISTRY", type = "r2_bucket", bucket_name = cloudflare_r2_bucket.models.name },
    { name = "LOGS", type = "r2_bucket", bucket_name = cloudflare_r2_bucket.logs.name },
    { name = "FEATURES", type = "kv_namespace", namespace_id = cloudflare_workers_kv_namespace.features.id },
    { name = "MODELS", type = "plain_text", text = var.models },
    { name = "ALIAS_REFRESH_SECONDS", type = "plain_text", text = tostring(var.alias_refresh_seconds) },
    { name = "LOG_SAMPLE", type = "plain_text", text = tostring(var.log_sample) },
    { name = "MAX_BODY_BYTES", type = "plain_text", text = tostring(var.max_body_bytes) },
    { name = "MAX_BATCH", type = "plain_text", text = tostring(var.max_batch) },
    { name = "KEY_REFRESH_SECONDS", type = "plain_text", text = tostring(var.key_refresh_seconds) },
    { name = "MAX_FUTURE_SKEW_SECONDS", type = "plain_text", text = tostring(var.max_future_skew_seconds) },
    { name = "MODEL_CACHE_BYTES", type = "plain_text", text = tostring(var.model_cache_bytes) },
    { name = "OTEL_EXPORTER_OTLP_ENDPOINT", type = "plain_text", text = var.otlp_endpoint },
    { name = "OTLP_EXPORT_SECONDS", type = "plain_text", text = tostring(var.otlp_export_seconds) },
  ]

  observability = {
    enabled            = var.observability
    head_sampling_rate = var.observability_sampling_rate
  }
}

# Serve the script on <script_name>.<account subdomain>.workers.dev.
resource "cloudflare_workers_script_subdomain" "this" {
  account_id       = var.account_id
  script_name      = cloudflare_workers_script.this.script_name
  enabled          = true
  previews_enabled = false
}
