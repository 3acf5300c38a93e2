variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"mlpipe-dev\"."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed key the alarm topic is encrypted with."
  type        = string
}

variable "bucket_name" {
  description = "Name of the pipeline bucket; a retrain request written under requests/retrain/ notifies the topic."
  type        = string
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (AWS sends a confirmation mail first). Null: no subscription."
  type        = string
  default     = null
}

variable "drift_metric_namespace" {
  description = "CloudWatch namespace the pipeline's OpenTelemetry metrics are exported to (e.g. by an ADOT collector's awsemf exporter). Null: no drift metric alarms, since the binaries export OTLP only."
  type        = string
  default     = null
}

variable "drift_alarm_models" {
  description = "Models (the `model` metric dimension) that get a dataset-drift alarm when drift_metric_namespace is set."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
