output "ecr_repository_url" {
  description = "URL of the training image repository: push the image as <url>:<image_tag>."
  value       = aws_ecr_repository.this.repository_url
}

output "job_queue_name" {
  description = "Name of the Batch job queue (null with batch off)."
  value       = one(aws_batch_job_queue.this[*].name)
}

output "job_queue_arn" {
  description = "ARN of the Batch job queue (null with batch off)."
  value       = one(aws_batch_job_queue.this[*].arn)
}

output "job_definition_arn" {
  description = "ARN (with revision) of the training job definition (null until image_tag is set)."
  value       = one(aws_batch_job_definition.this[*].arn)
}

output "dlq_url" {
  description = "URL of the dead-letter queue: parked, undeliverable and failed training submissions."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue of the job submissions."
  value       = aws_sqs_queue.dlq.arn
}

output "job_role_arn" {
  description = "ARN of the IAM role the training container runs with."
  value       = aws_iam_role.job.arn
}

output "log_group_name" {
  description = "Name of the CloudWatch log group of the training jobs."
  value       = aws_cloudwatch_log_group.this.name
}
