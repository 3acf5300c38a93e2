variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"mlpipe-dev\"; resources are \"<name_prefix>-<stage>...\"."
  type        = string
}

variable "stage" {
  description = "The pipeline stage this job runs (the routing table's batch stage)."
  type        = string
  default     = "train"
}

variable "name_suffix" {
  description = "Added to \"<name_prefix>-<stage>\" in every resource name, for a stage that also runs as a function of that name (batch-predict's job is \"-job\")."
  type        = string
  default     = ""
}

variable "bucket_name" {
  description = "Name of the pipeline bucket: the event rules match on it, and the job reads it as MLPIPE_STORE=s3://<bucket_name> from its environment (the job's only argument is --key)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the pipeline bucket; the job role's S3 statements are built from it and the prefixes."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed key: it encrypts the bucket's objects, the image repository, the DLQ and the log group."
  type        = string
}

variable "read_prefixes" {
  description = "Key prefixes the job reads (s3:GetObject). From the routing table. s3:ListBucket is granted bucket-wide by design: S3 answers a read of a missing key with 404 only to a caller that may list the bucket (iam.tf)."
  type        = list(string)
}

variable "write_prefixes" {
  description = "Key prefixes the job writes (s3:PutObject). From the routing table."
  type        = list(string)
}

variable "object_triggers" {
  description = "Object-created triggers: each a key prefix and suffix (\"\" = any key under the prefix), and at most one size bound in bytes (min_size: objects at least this large; max_size: objects smaller than this), so one stage can run as a function for small objects and a batch job for large ones. One EventBridge rule each, submitting one job per object."
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

variable "alarm_topic_arn" {
  description = "SNS topic that failed jobs and dead-lettered submissions notify."
  type        = string
}

variable "log_retention_days" {
  description = "Days the job logs are kept."
  type        = number
  default     = 365
}

variable "subnet_ids" {
  description = "Subnets the GPU instances start in. They need a route to S3, ECR and CloudWatch (a public subnet, or NAT / VPC endpoints)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the GPU instances (outbound HTTPS is all the job needs)."
  type        = list(string)
}

variable "instance_types" {
  description = "EC2 instance types of the compute environment; each must have an NVIDIA GPU."
  type        = list(string)
  default     = ["g5.xlarge"]
}

variable "compute_type" {
  description = "\"EC2\" (on-demand) or \"SPOT\". Spot interruptions are retried (see the job's retry strategy)."
  type        = string
  default     = "EC2"

  validation {
    condition     = contains(["EC2", "SPOT"], var.compute_type)
    error_message = "compute_type must be \"EC2\" or \"SPOT\"."
  }
}

variable "image_type" {
  description = "Batch AMI image type of the instances; the NVIDIA variants carry the GPU driver."
  type        = string
  default     = "ECS_AL2023_NVIDIA"
}

variable "max_vcpus" {
  description = "Upper bound of vCPUs running at once in the compute environment (g5.xlarge has 4). It scales to 0 when idle."
  type        = number
  default     = 8
}

variable "image_tag" {
  description = "Tag of the training image in the ECR repository that the job definition runs (tags are immutable: push a new tag per build). It must be pushed before it is set: the plan reads it from the repository. Null (the first apply, which creates the repository): no job definition, and triggering events wait in the dead-letter queue."
  type        = string
  default     = null
}

variable "batch" {
  description = "Create the Batch compute environment, job queue and job definition. Off: the image repository, roles, rules and dead-letter queue only, and every triggering event is parked in the dead-letter queue (for emulators without Batch, e.g. the apply test against moto)."
  type        = bool
  default     = true
}

variable "watch_package_zip" {
  description = "The multi-call Lambda zip, which also runs the queue's watcher (MLPIPE_STAGE=batch-watch)."
  type        = string
}

variable "watch_architecture" {
  description = "Lambda architecture of watch_package_zip: \"arm64\" or \"x86_64\"."
  type        = string
  default     = "arm64"
}

variable "runnable_alarm_minutes" {
  description = "Minutes a training job may wait in RUNNABLE (for an instance) before the runnable-too-long alarm counts it. Starting a GPU instance takes a few minutes."
  type        = number
  default     = 30
}

variable "metric_namespace" {
  description = "CloudWatch namespace of the watcher's metrics (TrainingJobsRunnableTooLong, OldestRunnableSeconds)."
  type        = string
  default     = "mlpipe"
}

variable "check_gpu_quota" {
  description = "Check at plan time that the account's EC2 quota of G and VT instance vCPUs fits one job (needs servicequotas:GetServiceQuota)."
  type        = bool
  default     = true
}

variable "job_vcpus" {
  description = "vCPUs of one training job."
  type        = number
  default     = 4
}

variable "job_memory_mib" {
  description = "Memory of one training job in MiB (a g5.xlarge offers about 15 GiB to containers)."
  type        = number
  default     = 14336
}

variable "job_gpus" {
  description = "GPUs of one job; 0 for a CPU job (batch inference), which then asks Batch for no GPU."
  type        = number
  default     = 1
}

variable "job_attempts" {
  description = "Attempts of one job: exit code 75 (temporary failure) and a lost host are retried up to this count; any other exit ends the job."
  type        = number
  default     = 3
}

variable "job_timeout_seconds" {
  description = "Seconds one attempt may run before Batch stops it."
  type        = number
  default     = 14400
}

variable "extra_policy_json" {
  description = "An extra IAM policy document (JSON) for the job's role, e.g. reads of the online store for batch inference. Null: none."
  type        = string
  default     = null
}

variable "environment" {
  description = "Extra environment variables of the job container (e.g. RUST_LOG, MLFLOW_TRACKING_URI, OTEL_EXPORTER_OTLP_ENDPOINT)."
  type        = map(string)
  default     = {}
}

variable "force_delete" {
  description = "Let `terraform destroy` delete the ECR repository with its images."
  type        = bool
  default     = false
}

variable "keep_images" {
  description = "Number of most recent images the repository keeps; older ones expire."
  type        = number
  default     = 20
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
