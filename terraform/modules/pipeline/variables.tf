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
  description = "Memory in MiB of each function stage (batch-predict, when absent, gets 3008)."
  type        = map(number)
  default = {
    ingest   = 2048
    features = 3008
    publish  = 512
    drift    = 1024

    "batch-predict" = 3008
  }

  validation {
    condition     = alltrue([for s in ["ingest", "features", "publish", "drift"] : contains(keys(var.lambda_memory_size), s)])
    error_message = "lambda_memory_size needs an entry for ingest, features, publish and drift."
  }
}

variable "lambda_timeout" {
  description = "Timeout in seconds of each function stage (at most 900; batch-predict, when absent, gets 900)."
  type        = map(number)
  default = {
    ingest   = 900
    features = 900
    publish  = 300
    drift    = 600

    "batch-predict" = 900
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
  description = "Tag of the training image in the ECR repository that jobs run; push it first (the plan reads it from the repository). Null: no job definition yet, and training events wait in the train dead-letter queue."
  type        = string
  default     = null
}

variable "batch_predict_image_tag" {
  description = "Tag of the batch inference image (batch-predict-job) in its ECR repository; push it first. Null: no job definition yet, and inputs of 64 MiB or more wait in the batch-predict-job dead-letter queue (smaller ones run in the function)."
  type        = string
  default     = null
}

variable "batch_predict_instance_types" {
  description = "CPU instance types of the batch inference compute environment (x86_64, as the image is built)."
  type        = list(string)
  default     = ["c7i.large", "c7i.xlarge"]
}

variable "training_batch" {
  description = "Create the Batch compute environment, queue, job definition and the network they need. Off only against emulators without Batch (the apply test): training events are then parked in the dead-letter queue."
  type        = bool
  default     = true
}

variable "check_gpu_quota" {
  description = "Check at plan time that the EC2 quota of G and VT instance vCPUs fits one training job (needs servicequotas:GetServiceQuota)."
  type        = bool
  default     = true
}

variable "mlflow_tracking_uri" {
  description = "MLflow tracking server (http/https) the training job also records runs in. Null: runs are recorded under runs/ only."
  type        = string
  default     = null
}

# --- edge -------------------------------------------------------------------------------

variable "edge" {
  description = "How the publish and drift stages reach the edge (outputs of modules/edge): the R2 store URLs with their key pairs (object write on the models bucket, object read on the logs bucket), the KV account, namespace and write token. The KV token is account-wide, the narrowest Cloudflare allows: its \"Workers KV Storage Write\" permission has no per-namespace scope."
  type = object({
    models_store_url = string
    logs_store_url   = string
    kv_account_id    = string
    kv_namespace_id  = string
    kv_api_token     = string
  })
  sensitive = true
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
