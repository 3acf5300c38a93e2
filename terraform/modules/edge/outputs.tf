output "script_name" {
  description = "Name of the Worker."
  value       = cloudflare_worker.this.name
}

output "version_id" {
  description = "The Worker version the deployment serves."
  value       = cloudflare_workers_deployment.this.versions[0].version_id
}

output "endpoint_url" {
  description = "The live inference endpoint: the custom domain when set, else workers.dev when workers_dev is on and workers_dev_subdomain is known, else null."
  value = (
    var.custom_domain != null ? "https://${var.custom_domain}" :
    var.workers_dev && var.workers_dev_subdomain != null ? "https://${cloudflare_worker.this.name}.${var.workers_dev_subdomain}.workers.dev" :
    null
  )
}

output "models_bucket_name" {
  description = "R2 bucket of model bundles and aliases (the Worker's REGISTRY binding)."
  value       = cloudflare_r2_bucket.models.name
}

output "logs_bucket_name" {
  description = "R2 bucket of sampled prediction logs (the Worker's LOGS binding)."
  value       = cloudflare_r2_bucket.logs.name
}

output "kv_namespace_id" {
  description = "ID of the KV namespace of online features (the Worker's FEATURES binding)."
  value       = cloudflare_workers_kv_namespace.features.id
}

output "r2_endpoint" {
  description = "The account's R2 S3 endpoint."
  value       = local.r2_endpoint
}

output "publish_r2_access_key_id" {
  description = "R2 S3 access key ID with object write on the models bucket."
  value       = local.publish_r2_key_id
  sensitive   = true
}

output "publish_r2_secret_access_key" {
  description = "R2 S3 secret access key with object write on the models bucket."
  value       = local.publish_r2_secret
  sensitive   = true
}

output "drift_r2_access_key_id" {
  description = "R2 S3 access key ID with object read on the prediction-log bucket."
  value       = local.drift_r2_key_id
  sensitive   = true
}

output "drift_r2_secret_access_key" {
  description = "R2 S3 secret access key with object read on the prediction-log bucket."
  value       = local.drift_r2_secret
  sensitive   = true
}

output "kv_api_token" {
  description = "API token with KV write, for the publish stage's CLOUDFLARE_API_TOKEN. Account-wide: Cloudflare's \"Workers KV Storage Write\" permission has no per-namespace scope, so this is the narrowest KV write token there is."
  value       = cloudflare_api_token.kv_write.value
  sensitive   = true
}

output "models_store_url" {
  description = "The models bucket as a store URL with its credentials (the publish stage's MLPIPE_EDGE_R2)."
  value       = "s3://${cloudflare_r2_bucket.models.name}?endpoint=${local.r2_endpoint}&region=auto&access_key_id=${local.publish_r2_key_id}&secret_access_key=${local.publish_r2_secret}"
  sensitive   = true
}

output "logs_store_url" {
  description = "The prediction-log bucket as a store URL with its credentials (the drift stage's MLPIPE_LOGS_STORE)."
  value       = "s3://${cloudflare_r2_bucket.logs.name}?endpoint=${local.r2_endpoint}&region=auto&access_key_id=${local.drift_r2_key_id}&secret_access_key=${local.drift_r2_secret}"
  sensitive   = true
}
