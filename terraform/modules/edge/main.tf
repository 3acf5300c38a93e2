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

# The Worker in three resources (provider >= 5.9): the Worker itself (name, workers.dev
# subdomain, observability), an immutable version (modules, bindings) and the deployment that
# sends all traffic to it. cloudflare_workers_script has no argument for a second module, so
# the wasm that index.js imports could not go with it.
resource "cloudflare_worker" "this" {
  account_id = var.account_id
  name       = var.script_name

  # <name>.<account subdomain>.workers.dev; off where a custom domain serves (prod).
  subdomain = {
    enabled          = var.workers_dev
    previews_enabled = false
  }

  observability = {
    enabled            = var.observability
    head_sampling_rate = var.observability_sampling_rate
  }
}

resource "cloudflare_worker_version" "this" {
  account_id         = var.account_id
  worker_id          = cloudflare_worker.this.id
  compatibility_date = var.compatibility_date
  main_module        = "index.js"

  # worker-build's output: the ES module entry and the wasm it imports as ./index_bg.wasm.
  # The provider hashes each file at plan time: a rebuilt Worker is a new version.
  modules = [
    { name = "index.js", content_type = "application/javascript+module", content_file = var.worker_main_module },
    { name = "index_bg.wasm", content_type = "application/wasm", content_file = var.worker_wasm_module },
  ]

  # As edge/edge-worker/wrangler.toml (tests/tests/deploy.rs holds them equal).
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
    # Credentials are secret bindings: never shown in the dashboard or the API's reads.
    { name = "OTEL_EXPORTER_OTLP_HEADERS", type = "secret_text", text = var.otlp_headers },
    # Per-key rate tiers (inference::auth::WORKER_RATE_TIERS): N requests per 10 s per key.
    { name = "RATE_LIMIT_0_1", type = "ratelimit", namespace_id = "4201", simple = { limit = 1, period = 10 } },
    { name = "RATE_LIMIT_1", type = "ratelimit", namespace_id = "4202", simple = { limit = 10, period = 10 } },
    { name = "RATE_LIMIT_10", type = "ratelimit", namespace_id = "4203", simple = { limit = 100, period = 10 } },
    { name = "RATE_LIMIT_100", type = "ratelimit", namespace_id = "4204", simple = { limit = 1000, period = 10 } },
    { name = "RATE_LIMIT_1000", type = "ratelimit", namespace_id = "4205", simple = { limit = 10000, period = 10 } },
  ]
}

resource "cloudflare_workers_deployment" "this" {
  account_id  = var.account_id
  script_name = cloudflare_worker.this.name
  strategy    = "percentage"
  versions    = [{ version_id = cloudflare_worker_version.this.id, percentage = 100 }]

  lifecycle {
    precondition {
      condition     = var.workers_dev || var.custom_domain != null
      error_message = "The Worker would have no endpoint: set workers_dev = true or a custom_domain."
    }
  }
}

# The Worker on a hostname of a zone in the account (Cloudflare creates the DNS record and
# the certificate).
resource "cloudflare_workers_custom_domain" "this" {
  count = var.custom_domain == null ? 0 : 1

  account_id = var.account_id
  hostname   = var.custom_domain
  service    = cloudflare_worker.this.name
  zone_id    = var.zone_id

  depends_on = [cloudflare_workers_deployment.this]

  lifecycle {
    precondition {
      condition     = var.zone_id != null
      error_message = "custom_domain needs zone_id, the ID of the zone the hostname is in."
    }
  }
}
