variable "table_name" {
  description = "Name of the online feature table."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed key the table is encrypted with."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the table (set false before `terraform destroy`)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to the table (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
