variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"mlpipe-dev\"."
  type        = string
}

variable "bucket_name" {
  description = "Name of the pipeline bucket. Null: \"<name_prefix>-<account id>\", which is globally unique per account."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the buckets with every object version in them. Leave false where the data matters."
  type        = bool
  default     = false
}

variable "kms_deletion_window_days" {
  description = "Days a scheduled deletion of the customer-managed KMS key waits (7 to 30)."
  type        = number
  default     = 30
}

variable "raw_ia_after_days" {
  description = "Days after which raw/ uploads move to STANDARD_IA (they are read once, by ingest)."
  type        = number
  default     = 30
}

variable "raw_glacier_after_days" {
  description = "Days after which raw/ uploads move to GLACIER_IR (kept for replays and audits)."
  type        = number
  default     = 90
}

variable "quarantine_expiration_days" {
  description = "Days after which quarantined rows and files expire."
  type        = number
  default     = 90
}

variable "run_records_expiration_days" {
  description = "Days after which pipeline-runs/ records and drift/ reports expire."
  type        = number
  default     = 180
}

variable "inference_logs_expiration_days" {
  description = "Days after which prediction logs under inference-logs/ expire (longer than the drift stage's longest lookback)."
  type        = number
  default     = 90
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which a replaced or deleted object version expires."
  type        = number
  default     = 30
}

variable "access_log_expiration_days" {
  description = "Days after which S3 server access logs expire."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
