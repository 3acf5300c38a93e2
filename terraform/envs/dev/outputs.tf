output "bucket_name" {
  description = "The pipeline bucket: upload data under raw/<dataset>/ to start the pipeline."
  value       = module.pipeline.bucket_name
}

output "inference_endpoint_url" {
  description = "The live edge inference endpoint: custom_domain when set, else workers.dev (when workers_dev is on and workers_dev_subdomain is set), else null."
  value       = module.edge.endpoint_url
}

output "function_names" {
  description = "Lambda function of each function stage."
  value       = module.pipeline.function_names
}

output "ecr_repository_url" {
  description = "Repository of the training image: push it as <url>:<train_image_tag>."
  value       = module.pipeline.ecr_repository_url
}

output "batch_predict_ecr_repository_url" {
  description = "Repository of the batch inference image: push it as <url>:<batch_predict_image_tag>."
  value       = module.pipeline.batch_predict_ecr_repository_url
}

output "job_queue_name" {
  description = "Batch job queue of the training jobs."
  value       = module.pipeline.job_queue_name
}

output "job_definition_arn" {
  description = "Batch job definition of the training job (null until train_image_tag is set)."
  value       = module.pipeline.job_definition_arn
}

output "online_table_name" {
  description = "DynamoDB table of online features."
  value       = module.pipeline.online_table_name
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue URL of each stage (docs/deploy.md, \"Dead letters\")."
  value       = module.pipeline.dead_letter_queue_urls
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = module.pipeline.alarm_topic_arn
}

output "r2_models_bucket" {
  description = "R2 bucket the publish stage copies champion models to."
  value       = module.edge.models_bucket_name
}

output "r2_logs_bucket" {
  description = "R2 bucket of the Worker's prediction logs."
  value       = module.edge.logs_bucket_name
}

output "kv_namespace_id" {
  description = "KV namespace of online features at the edge."
  value       = module.edge.kv_namespace_id
}
