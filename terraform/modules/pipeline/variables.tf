# --- general ----------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"mlpipe-dev\" (lower case: it also names the bucket and the table)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2 to 31 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "package_dir" {
  description = "Folder `cargo xtask package` wrote (target/package): the Lambda zip, the Worker and the definitions are read from it."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture, and which zip of the package is deployed: \"arm64\" or \"x86_64\"."
  type        = string
  default     = "arm64"
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the versioned buckets and the image repository with their contents."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the online feature table from deletion."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days the functions' and training jobs' CloudWatch logs are kept."
  type        = number
  default     = 365
}

variable "rust_log" {
  description = "RUST_LOG of every function and training job (tracing filter)."
  type        = string
  default     = "info"
}

variable "otel_exporter_otlp_endpoint" {
  description = "OTLP endpoint for traces and metrics (e.g. an ADOT collector). Empty: OTEL_EXPORTER_OTLP_ENDPOINT is not set."
  type        = string
  default     = ""
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic. Null: no subscription."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every AWS resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}

# --- storage ----------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the pipeline bucket. Null: \"<name_prefix>-<account id>\"."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which a replaced or deleted object version in the pipeline bucket expires."
  type        = number
  default     = 30
}

variable "quarantine_expiration_days" {
  description = "Days after which quarantine/ objects expire."
  type        = number
  default     = 90
}

variable "run_records_expiration_days" {
  description = "Days after which pipeline-runs/ and drift/ objects expire."
  type        = number
  default     = 180
}

# --- functions --------------------------------------------------------------------------

variable "lambda_memory_size" {
  description = "Memory in MiB of each function stage."
  type        = map(number)
  default = {
    ingest   = 2048
    features = 3008
    publish  = 512
    drift    = 1024
  }

  validation {
    condition     = alltrue([for s in ["ingest", "features", "publish", "drift"] : contains(keys(var.lambda_memory_size), s)])
    error_message = "lambda_memory_size needs an entry for ingest, features, publish and drift."
  }
}

variable "lambda_timeout" {
  description = "Timeout in seconds of each function stage (at most 900)."
  type        = map(number)
  default = {
    ingest   = 900
    features = 900
    publish  = 300
    drift    = 600
  }

  validation {
    condition     = alltrue([for s in ["ingest", "features", "publish", "drift"] : contains(keys(var.lambda_timeout), s)])
    error_message = "lambda_timeout needs an entry for ingest, features, publish and drift."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function stage (e.g. { ingest = 5 }); a stage not listed reserves none."
  type        = map(number)
  default     = {}
}

# --- training ---------------------------------------------------------------------------

variable "batch_subnet_ids" {
  description = "Subnets of the GPU instances. Empty: the default subnets of the account's default VPC."
  type        = list(string)
  default     = []
}

variable "batch_security_group_ids" {
  description = "Security groups of the GPU instances. Empty: one is created that allows outbound HTTPS only."
  type        = list(string)
  default     = []
}

variable "batch_instance_types" {
  description = "GPU instance types of the training compute environment."
  type        = list(string)
  default     = ["g5.xlarge"]
}

variable "batch_compute_type" {
  description = "\"EC2\" (on-demand) or \"SPOT\" for the training instances."
  type        = string
  default     = "EC2"
}

variable "batch_max_vcpus" {
  description = "Most vCPUs the training compute environment runs at once (it scales to 0 when idle)."
  type        = number
  default     = 8
}

variable "train_image_tag" {
  description = "Tag of the training image in the ECR repository that jobs run."
  type        = string
  default     = "v1"
}

variable "mlflow_tracking_uri" {
  description = "MLflow tracking server (http/https) the training job also records runs in. Null: runs are recorded under runs/ only."
  type        = string
  default     = null
}

# --- edge -------------------------------------------------------------------------------

variable "cloudflare_account_id" {
  description = "Cloudflare account ID of the Worker, R2 buckets and KV namespace."
  type        = string
}

variable "workers_dev_subdomain" {
  description = "The Cloudflare account's workers.dev subdomain, to report the endpoint URL. Null: the URL output is null."
  type        = string
  default     = null
}

variable "workers_dev" {
  description = "Serve the Worker on workers.dev (needs the account's workers.dev subdomain). Off where custom_domain serves it."
  type        = bool
  default     = true
}

variable "custom_domain" {
  description = "Hostname the Worker serves as a custom domain, in the zone zone_id. Null: none."
  type        = string
  default     = null
}

variable "zone_id" {
  description = "ID of the Cloudflare zone of custom_domain."
  type        = string
  default     = null
}

variable "worker_otlp_endpoint" {
  description = "OTLP/HTTP receiver the Worker posts its request metrics to (OTEL_EXPORTER_OTLP_ENDPOINT). Empty: none."
  type        = string
  default     = ""
}

variable "worker_otlp_headers" {
  description = "Headers with the OTLP receiver's credentials (OTEL_EXPORTER_OTLP_HEADERS, k=v,k2=v2), bound to the Worker as a secret."
  type        = string
  default     = ""
  sensitive   = true
}

variable "worker_script_name" {
  description = "Name of the Worker script."
  type        = string
  default     = "mlpipe-edge"
}

variable "worker_models" {
  description = "The Worker's MODELS: models served, comma-separated."
  type        = string
  default     = "fraud"
}

variable "worker_alias_refresh_seconds" {
  description = "The Worker's ALIAS_REFRESH_SECONDS."
  type        = number
  default     = 10
}

variable "worker_log_sample" {
  description = "The Worker's LOG_SAMPLE: share (0..1) of predictions logged for the drift stage."
  type        = number
  default     = 1
}

variable "worker_max_body_bytes" {
  description = "The Worker's MAX_BODY_BYTES."
  type        = number
  default     = 4194304
}

variable "worker_max_batch" {
  description = "The Worker's MAX_BATCH."
  type        = number
  default     = 1024
}

variable "r2_location" {
  description = "R2 location hint of the edge buckets (e.g. \"weur\"). Null: Cloudflare chooses."
  type        = string
  default     = null
}

# --- monitoring -------------------------------------------------------------------------

variable "drift_metric_namespace" {
  description = "CloudWatch namespace the OpenTelemetry metrics are exported to, if they are (e.g. by an ADOT collector). Null: no drift metric alarms."
  type        = string
  default     = null
}

variable "drift_alarm_models" {
  description = "Models that get a dataset-drift alarm when drift_metric_namespace is set."
  type        = list(string)
  default     = []
}
