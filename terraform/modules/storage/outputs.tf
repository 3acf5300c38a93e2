output "bucket_name" {
  description = "Name of the pipeline bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the pipeline bucket."
  value       = aws_s3_bucket.this.arn
}

output "store_url" {
  description = "The pipeline store as the binaries name it (MLPIPE_STORE)."
  value       = "s3://${aws_s3_bucket.this.id}"
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key that encrypts the pipeline's data, queues, topics and logs."
  value       = aws_kms_key.this.arn
}

output "access_log_bucket_name" {
  description = "Name of the bucket that receives the pipeline bucket's server access logs."
  value       = aws_s3_bucket.logs.id
}
