output "bucket_name" {
  description = "The pipeline bucket: upload data under raw/<dataset>/ to start the pipeline."
  value       = module.storage.bucket_name
}

output "access_log_bucket_name" {
  description = "The bucket of the pipeline bucket's S3 access logs."
  value       = module.storage.access_log_bucket_name
}

output "kms_key_arn" {
  description = "The customer-managed key of the pipeline's data."
  value       = module.storage.kms_key_arn
}

output "online_table_name" {
  description = "The DynamoDB table of online features."
  value       = module.online.table_name
}

output "function_names" {
  description = "Lambda function of each function stage."
  value = {
    ingest   = module.ingest.function_name
    features = module.features.function_name
    publish  = module.publish.function_name
    drift    = module.drift.function_name

    "batch-predict" = module.batch-predict.function_name
  }
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URL of each stage (what `aws sqs receive-message` takes)."
  value = {
    ingest   = module.ingest.dlq_url
    features = module.features.dlq_url
    train    = module.train.dlq_url
    publish  = module.publish.dlq_url
    drift    = module.drift.dlq_url

    "batch-predict"     = module.batch-predict.dlq_url
    "batch-predict-job" = module.batch-predict-job.dlq_url
  }
}

output "dead_letter_queues" {
  description = "Dead-letter queue ARN of each stage."
  value = {
    ingest   = module.ingest.dlq_arn
    features = module.features.dlq_arn
    train    = module.train.dlq_arn
    publish  = module.publish.dlq_arn
    drift    = module.drift.dlq_arn

    "batch-predict"     = module.batch-predict.dlq_arn
    "batch-predict-job" = module.batch-predict-job.dlq_arn
  }
}

output "ecr_repository_url" {
  description = "Repository of the training image: push it as <url>:<train_image_tag>."
  value       = module.train.ecr_repository_url
}

output "job_queue_name" {
  description = "Batch job queue of the training jobs (null with training_batch off)."
  value       = module.train.job_queue_name
}

output "job_definition_arn" {
  description = "Batch job definition of the training job (null until train_image_tag is set)."
  value       = module.train.job_definition_arn
}

output "batch_predict_ecr_repository_url" {
  description = "Repository of the batch inference image (infra/batch-predict.Dockerfile): push it as <url>:<batch_predict_image_tag>."
  value       = module.batch-predict-job.ecr_repository_url
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = module.monitoring.topic_arn
}
