variable "account_id" {
  description = "Cloudflare account ID that owns the Worker, the R2 buckets and the KV namespace."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the R2 bucket, KV namespace and API token names, e.g. \"mlpipe-dev\"."
  type        = string
}

variable "script_name" {
  description = "Name of the Worker script (its workers.dev host is <script_name>.<workers_dev_subdomain>.workers.dev)."
  type        = string
  default     = "mlpipe-edge"
}

variable "worker_main_module" {
  description = "Path of the Worker's ES module entry (worker-build's index.js)."
  type        = string
}

variable "worker_wasm_module" {
  description = "Path of the wasm module the entry imports as ./index_bg.wasm."
  type        = string
}

variable "compatibility_date" {
  description = "Workers runtime compatibility date (edge/edge-worker/wrangler.toml)."
  type        = string
  default     = "2026-11-01"
}

variable "models" {
  description = "MODELS: models served, comma-separated; each by its `champion` alias."
  type        = string
  default     = "fraud"
}

variable "alias_refresh_seconds" {
  description = "ALIAS_REFRESH_SECONDS: seconds a read champion alias is trusted before it is read again."
  type        = number
  default     = 10
}

variable "log_sample" {
  description = "LOG_SAMPLE: share (0..1) of requests whose predictions are written to the LOGS bucket for the drift stage."
  type        = number
  default     = 1

  validation {
    condition     = var.log_sample >= 0 && var.log_sample <= 1
    error_message = "log_sample must be between 0 and 1."
  }
}

variable "max_body_bytes" {
  description = "MAX_BODY_BYTES: largest request body the Worker accepts."
  type        = number
  default     = 4194304
}

variable "max_batch" {
  description = "MAX_BATCH: most rows one inference request may carry."
  type        = number
  default     = 1024
}

variable "key_refresh_seconds" {
  description = "KEY_REFRESH_SECONDS: seconds the API key hashes (edge/keys.json in the models bucket) are trusted before they are read again; how long a revoked key may still be accepted."
  type        = number
  default     = 10
}

variable "max_future_skew_seconds" {
  description = "MAX_FUTURE_SKEW_SECONDS: how far ahead of the clock a /v1 record's event time may be before it is refused (422)."
  type        = number
  default     = 300
}

variable "otlp_endpoint" {
  description = "OTEL_EXPORTER_OTLP_ENDPOINT: base URL of an OTLP/HTTP receiver (an OpenTelemetry Collector, or Prometheus' /api/v1/otlp) the Worker posts its request metrics to. Empty: none."
  type        = string
  default     = ""
}

variable "otlp_export_seconds" {
  description = "OTLP_EXPORT_SECONDS: at most one metrics export per isolate every this many seconds."
  type        = number
  default     = 10
}

variable "r2_location" {
  description = "R2 location hint of both buckets (e.g. \"weur\", \"enam\"). Null: Cloudflare chooses."
  type        = string
  default     = null
}

variable "workers_dev" {
  description = "Serve the Worker on <script_name>.<account subdomain>.workers.dev. Off in prod, where custom_domain serves it. The account must have a workers.dev subdomain (dashboard: Workers & Pages)."
  type        = bool
  default     = true
}

variable "custom_domain" {
  description = "Hostname the Worker serves as a custom domain (e.g. \"infer.example.com\"), in the zone zone_id. Null: none."
  type        = string
  default     = null
}

variable "zone_id" {
  description = "ID of the Cloudflare zone custom_domain belongs to (required with custom_domain)."
  type        = string
  default     = null
}

variable "otlp_headers" {
  description = "OTEL_EXPORTER_OTLP_HEADERS (k=v,k2=v2, values percent-encoded): credentials for the OTLP receiver, bound as a secret (secret_text). Empty: none."
  type        = string
  default     = ""
  sensitive   = true
}

variable "workers_dev_subdomain" {
  description = "The account's workers.dev subdomain (dashboard: Workers & Pages, Subdomain), used to report the endpoint URL. Null: the URL output is null."
  type        = string
  default     = null
}

variable "observability" {
  description = "Turn on Workers Logs for the script (head-sampled by observability_sampling_rate)."
  type        = bool
  default     = true
}

variable "observability_sampling_rate" {
  description = "Share (0..1) of requests whose Workers Logs are kept when observability is on."
  type        = number
  default     = 0.1
}

variable "model_cache_bytes" {
  description = "MODEL_CACHE_BYTES: bytes of model files an isolate keeps loaded (least recently used out; the version in use always stays)."
  type        = number
  default     = 268435456
}
