# --- where -------------------------------------------------------------------------------

variable "aws_region" {
  description = "AWS region of every AWS resource."
  type        = string
  default     = "eu-west-1"
}

variable "cloudflare_account_id" {
  description = "Cloudflare account ID of the Worker, the R2 buckets and the KV namespace."
  type        = string
}

variable "workers_dev_subdomain" {
  description = "The Cloudflare account's workers.dev subdomain (dashboard: Workers & Pages), to report the endpoint URL. Null: that output is null."
  type        = string
  default     = null
}

variable "workers_dev" {
  description = "Serve the Worker on workers.dev (needs the account's workers.dev subdomain). Off in prod: set custom_domain and zone_id instead."
  type        = bool
  default     = false
}

variable "custom_domain" {
  description = "Hostname the Worker serves as a custom domain (e.g. \"infer.example.com\"), in the zone zone_id. Null: none."
  type        = string
  default     = null
}

variable "zone_id" {
  description = "ID of the Cloudflare zone of custom_domain."
  type        = string
  default     = null
}

variable "worker_otlp_endpoint" {
  description = "OTLP/HTTP receiver for the Worker's request metrics (an OpenTelemetry Collector, or Prometheus' /api/v1/otlp). Empty: none."
  type        = string
  default     = ""
}

variable "worker_otlp_headers" {
  description = "Headers with the OTLP receiver's credentials (k=v,k2=v2), bound to the Worker as a secret. Empty: none."
  type        = string
  default     = ""
  sensitive   = true
}

variable "name_prefix" {
  description = "Prefix of every resource name (lower case)."
  type        = string
  default     = "mlpipe-prod"
}

variable "package_dir" {
  description = "Output folder of `cargo xtask package`, relative to this folder."
  type        = string
  default     = "../../../target/package"
}

variable "architecture" {
  description = "Lambda architecture and zip: \"arm64\" or \"x86_64\" (package with `cargo xtask package --arch <it>`)."
  type        = string
  default     = "arm64"
}

variable "tags" {
  description = "Extra tags on every AWS resource."
  type        = map(string)
  default     = {}
}

# --- lifetime ---------------------------------------------------------------------------

variable "force_destroy" {
  description = "Let `terraform destroy` empty the versioned buckets and the image repository."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the online feature table from deletion."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps function and training logs."
  type        = number
  default     = 731
}

# --- functions --------------------------------------------------------------------------

variable "lambda_memory_size" {
  description = "Memory in MiB of each function stage (keys: ingest, features, publish, drift, batch-predict)."
  type        = map(number)
  default = {
    ingest   = 4096
    features = 6144
    publish  = 1024
    drift    = 2048

    "batch-predict" = 6144
  }
}

variable "lambda_timeout" {
  description = "Timeout in seconds of each function stage (keys: ingest, features, publish, drift, batch-predict; at most 900)."
  type        = map(number)
  default = {
    ingest   = 900
    features = 900
    publish  = 300
    drift    = 600

    "batch-predict" = 900
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function stage, e.g. { ingest = 5 }; unlisted stages reserve none."
  type        = map(number)
  default     = {}
}

variable "rust_log" {
  description = "RUST_LOG of the functions and the training job."
  type        = string
  default     = "info"
}

variable "otel_exporter_otlp_endpoint" {
  description = "OTLP endpoint for traces and metrics; empty: not exported."
  type        = string
  default     = ""
}

# --- training ---------------------------------------------------------------------------

variable "batch_subnet_ids" {
  description = "Subnets of the GPU instances; empty: the default VPC's default subnets."
  type        = list(string)
  default     = []
}

variable "batch_security_group_ids" {
  description = "Security groups of the GPU instances; empty: one allowing outbound HTTPS only is created."
  type        = list(string)
  default     = []
}

variable "batch_instance_types" {
  description = "GPU instance types of the training compute environment."
  type        = list(string)
  default     = ["g5.xlarge"]
}

variable "batch_compute_type" {
  description = "\"EC2\" (on-demand) or \"SPOT\"."
  type        = string
  default     = "EC2"
}

variable "batch_max_vcpus" {
  description = "Most vCPUs of training instances running at once (0 when idle)."
  type        = number
  default     = 16
}

variable "train_image_tag" {
  description = "Tag of the training image in the ECR repository (tags are immutable). Set it only after pushing that tag: the plan reads it from the repository. Null (the first apply): no job definition yet, and training events wait in the train dead-letter queue."
  type        = string
  default     = null
}

variable "batch_predict_image_tag" {
  description = "Tag of the batch inference image (infra/batch-predict.Dockerfile) in its ECR repository. Set it only after pushing that tag. Null: inputs of 64 MiB or more wait in the batch-predict-job dead-letter queue; smaller ones run in the function."
  type        = string
  default     = null
}

variable "check_gpu_quota" {
  description = "Check at plan time that the EC2 quota of G and VT instance vCPUs in the region fits one training job (needs servicequotas:GetServiceQuota)."
  type        = bool
  default     = true
}

variable "mlflow_tracking_uri" {
  description = "MLflow tracking server the training job also records to; null: none."
  type        = string
  default     = null
}

# --- edge -------------------------------------------------------------------------------

variable "worker_script_name" {
  description = "Name of the Worker script (distinct per environment in one Cloudflare account)."
  type        = string
  default     = "mlpipe-edge"
}

variable "worker_models" {
  description = "The Worker's MODELS: models served, comma-separated."
  type        = string
  default     = "fraud"
}

variable "worker_log_sample" {
  description = "The Worker's LOG_SAMPLE: share (0..1) of predictions logged for the drift stage."
  type        = number
  default     = 0.1
}

variable "r2_location" {
  description = "R2 location hint (e.g. \"weur\"); null: Cloudflare chooses."
  type        = string
  default     = null
}

# --- alarms -----------------------------------------------------------------------------

variable "alarm_email" {
  description = "E-mail address for alarms (confirm the subscription mail); null: none."
  type        = string
  default     = null
}

variable "drift_metric_namespace" {
  description = "CloudWatch namespace of exported OpenTelemetry metrics, if any; null: no drift metric alarms."
  type        = string
  default     = null
}

variable "drift_alarm_models" {
  description = "Models that get a dataset-drift alarm when drift_metric_namespace is set."
  type        = list(string)
  default     = ["fraud"]
}
