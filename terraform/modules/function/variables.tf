variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"mlpipe-dev\"; the function is \"<name_prefix>-<stage>\"."
  type        = string
}

variable "stage" {
  description = "What this function runs (MLPIPE_STAGE): a function stage (ingest, features, publish, drift or batch-predict), or batch-watch, a batch queue's watcher (modules/training)."
  type        = string

  validation {
    condition     = contains(["ingest", "features", "publish", "drift", "batch-predict", "batch-watch"], var.stage)
    error_message = "stage must be a function stage: ingest, features, publish, drift or batch-predict (train is a Batch job, see modules/training), or batch-watch."
  }
}

variable "package_zip" {
  description = "Path of the multi-call Lambda zip (`bootstrap` at its root), e.g. \"<package_dir>/lambda/mlpipe-lambda-arm64.zip\"."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture of the zip: \"arm64\" or \"x86_64\"."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "memory_size" {
  description = "Memory of the function in MiB (Lambda allots CPU in proportion)."
  type        = number
  default     = 1024
}

variable "timeout" {
  description = "Timeout of one invocation in seconds (at most 900)."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "bucket_name" {
  description = "Name of the pipeline bucket (the one the event rules match on). The function reads the store from MLPIPE_STORE in its environment, not from this."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the pipeline bucket; the S3 statements are built from it and the prefixes."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed key: it encrypts the environment variables, the DLQ and the log group, and the bucket's objects."
  type        = string
}

variable "read_prefixes" {
  description = "Key prefixes the stage reads (s3:GetObject). From the routing table. s3:ListBucket is granted bucket-wide by design: S3 answers a read of a missing key with 404 only to a caller that may list the bucket (iam.tf)."
  type        = list(string)
}

variable "write_prefixes" {
  description = "Key prefixes the stage writes (s3:PutObject). From the routing table."
  type        = list(string)
}

variable "delete_prefixes" {
  description = "Key prefixes the function may delete under (s3:DeleteObject). The pipeline stages delete nothing; the training queue's watcher forgets ended jobs."
  type        = list(string)
  default     = []
}

variable "object_triggers" {
  description = "Object-created triggers: each a key prefix and suffix (\"\" = any key under the prefix), and at most one size bound in bytes (min_size: objects at least this large; max_size: objects smaller than this), so one stage can run as a function for small objects and a batch job for large ones. One EventBridge rule each."
  type = list(object({
    prefix   = string
    suffix   = string
    min_size = optional(number)
    max_size = optional(number)
  }))
  default = []

  validation {
    condition     = alltrue([for t in var.object_triggers : t.min_size == null || t.max_size == null])
    error_message = "A trigger takes min_size or max_size, not both (the routing table splits a stage at one size)."
  }
}

variable "schedules" {
  description = "EventBridge schedule expressions that invoke the function, e.g. \"rate(1 hour)\". One rule each."
  type        = list(string)
  default     = []
}

variable "event_patterns" {
  description = "Other EventBridge event patterns (JSON) that invoke the function, by a short name, e.g. the training queue's Batch state changes for batch-watch. One rule each."
  type        = map(string)
  default     = {}
}

variable "environment" {
  description = "Environment variables of the function; MLPIPE_STAGE = stage is added. They may hold secrets (edge credentials): encrypted at rest with kms_key_arn, hidden in plans."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "extra_policy_json" {
  description = "An extra IAM policy document (JSON) for the function's role, e.g. DynamoDB access for the feature stage. Null: none."
  type        = string
  default     = null
}

variable "alarm_topic_arn" {
  description = "SNS topic the function's alarms (errors, DLQ depth, duration near the timeout) notify."
  type        = string
}

variable "log_retention_days" {
  description = "Days the function's CloudWatch logs are kept."
  type        = number
  default     = 365
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the function. Null: none (new accounts have a concurrency quota of 10, and reserving any from it fails)."
  type        = number
  default     = null
}

variable "event_max_age_seconds" {
  description = "How long EventBridge keeps retrying to hand an event to the function before it goes to the DLQ."
  type        = number
  default     = 3600
}

variable "event_max_retries" {
  description = "How many times EventBridge retries to hand an event to the function before it goes to the DLQ."
  type        = number
  default     = 10
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
