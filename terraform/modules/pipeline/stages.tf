# One module per row of the routing table (shared/events/src/routing.rs; `mlpipe routes
# --json`), in its order. The first five arguments of each block are the table's values,
# written literally so that a test compares them with the table (and can regenerate them);
# change the table, then this file.

module "ingest" {
  source          = "../function"
  stage           = "ingest"
  object_triggers = [{ prefix = "raw/", suffix = "" }]
  schedules       = []
  read_prefixes   = ["raw/", "definitions/", "curated/", "quarantine/"]
  write_prefixes  = ["curated/", "quarantine/", "snapshots/", "pipeline-runs/"]

  name_prefix          = var.name_prefix
  package_zip          = local.lambda_zip
  architecture         = var.architecture
  memory_size          = var.lambda_memory_size["ingest"]
  timeout              = var.lambda_timeout["ingest"]
  reserved_concurrency = lookup(var.reserved_concurrency, "ingest", null)
  bucket_name          = module.storage.bucket_name
  bucket_arn           = module.storage.bucket_arn
  kms_key_arn          = module.storage.kms_key_arn
  environment          = local.function_env
  alarm_topic_arn      = module.monitoring.topic_arn
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

module "features" {
  source          = "../function"
  stage           = "features"
  object_triggers = [{ prefix = "snapshots/", suffix = ".json" }]
  schedules       = []
  read_prefixes   = ["snapshots/", "definitions/", "curated/", "features/"]
  write_prefixes  = ["features/", "pipeline-runs/"]

  name_prefix          = var.name_prefix
  package_zip          = local.lambda_zip
  architecture         = var.architecture
  memory_size          = var.lambda_memory_size["features"]
  timeout              = var.lambda_timeout["features"]
  reserved_concurrency = lookup(var.reserved_concurrency, "features", null)
  bucket_name          = module.storage.bucket_name
  bucket_arn           = module.storage.bucket_arn
  kms_key_arn          = module.storage.kms_key_arn
  environment          = local.features_env
  extra_policy_json    = data.aws_iam_policy_document.online.json
  alarm_topic_arn      = module.monitoring.topic_arn
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

module "train" {
  source          = "../training"
  stage           = "train"
  object_triggers = [{ prefix = "features/", suffix = "/_manifest.json" }, { prefix = "requests/retrain/", suffix = ".json" }]
  read_prefixes   = ["features/", "definitions/", "models/", "requests/", "runs/"]
  write_prefixes  = ["models/", "runs/", "pipeline-runs/"]

  name_prefix        = var.name_prefix
  bucket_name        = module.storage.bucket_name
  bucket_arn         = module.storage.bucket_arn
  kms_key_arn        = module.storage.kms_key_arn
  alarm_topic_arn    = module.monitoring.topic_arn
  log_retention_days = var.log_retention_days
  subnet_ids         = local.batch_subnet_ids
  security_group_ids = local.batch_security_group_ids
  instance_types     = var.batch_instance_types
  compute_type       = var.batch_compute_type
  max_vcpus          = var.batch_max_vcpus
  image_tag          = var.train_image_tag
  batch              = var.training_batch
  watch_package_zip  = local.lambda_zip
  watch_architecture = var.architecture
  check_gpu_quota    = var.check_gpu_quota
  environment        = local.train_env
  force_delete       = var.force_destroy
  tags               = var.tags
}

module "publish" {
  source          = "../function"
  stage           = "publish"
  object_triggers = [{ prefix = "models/", suffix = "/aliases/champion.json" }, { prefix = "models/", suffix = "/traffic.json" }, { prefix = "features/", suffix = "/_manifest.json" }, { prefix = "keys/", suffix = ".json" }]
  schedules       = []
  read_prefixes   = ["models/", "features/", "published/", "keys/"]
  write_prefixes  = ["published/", "pipeline-runs/"]

  name_prefix          = var.name_prefix
  package_zip          = local.lambda_zip
  architecture         = var.architecture
  memory_size          = var.lambda_memory_size["publish"]
  timeout              = var.lambda_timeout["publish"]
  reserved_concurrency = lookup(var.reserved_concurrency, "publish", null)
  bucket_name          = module.storage.bucket_name
  bucket_arn           = module.storage.bucket_arn
  kms_key_arn          = module.storage.kms_key_arn
  environment          = local.publish_env
  alarm_topic_arn      = module.monitoring.topic_arn
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

module "drift" {
  source          = "../function"
  stage           = "drift"
  object_triggers = [{ prefix = "labels/", suffix = "" }]
  schedules       = ["rate(1 hour)"]
  read_prefixes   = ["models/", "features/", "definitions/", "inference-logs/", "labels/", "drift/", "requests/retrain/"]
  write_prefixes  = ["drift/", "requests/retrain/", "pipeline-runs/"]

  name_prefix          = var.name_prefix
  package_zip          = local.lambda_zip
  architecture         = var.architecture
  memory_size          = var.lambda_memory_size["drift"]
  timeout              = var.lambda_timeout["drift"]
  reserved_concurrency = lookup(var.reserved_concurrency, "drift", null)
  bucket_name          = module.storage.bucket_name
  bucket_arn           = module.storage.bucket_arn
  kms_key_arn          = module.storage.kms_key_arn
  environment          = local.drift_env
  alarm_topic_arn      = module.monitoring.topic_arn
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

# Batch inference: one stage, two rows of the routing table split at one input size. Small
# inputs run in a function; large ones as a CPU job on its own Batch queue (the training
# module's job, without a GPU).
module "batch-predict" {
  source          = "../function"
  stage           = "batch-predict"
  object_triggers = [{ prefix = "batch-input/", suffix = "", max_size = 67108864 }]
  schedules       = []
  read_prefixes   = ["batch-input/", "models/", "features/", "snapshots/", "curated/"]
  write_prefixes  = ["batch-output/", "pipeline-runs/"]

  name_prefix          = var.name_prefix
  package_zip          = local.lambda_zip
  architecture         = var.architecture
  memory_size          = lookup(var.lambda_memory_size, "batch-predict", 3008)
  timeout              = lookup(var.lambda_timeout, "batch-predict", 900)
  reserved_concurrency = lookup(var.reserved_concurrency, "batch-predict", null)
  bucket_name          = module.storage.bucket_name
  bucket_arn           = module.storage.bucket_arn
  kms_key_arn          = module.storage.kms_key_arn
  environment          = local.features_env
  extra_policy_json    = data.aws_iam_policy_document.online_read.json
  alarm_topic_arn      = module.monitoring.topic_arn
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

module "batch-predict-job" {
  source          = "../training"
  stage           = "batch-predict"
  object_triggers = [{ prefix = "batch-input/", suffix = "", min_size = 67108864 }]
  read_prefixes   = ["batch-input/", "models/", "features/", "snapshots/", "curated/"]
  write_prefixes  = ["batch-output/", "pipeline-runs/"]

  name_prefix        = var.name_prefix
  name_suffix        = "-job"
  bucket_name        = module.storage.bucket_name
  bucket_arn         = module.storage.bucket_arn
  kms_key_arn        = module.storage.kms_key_arn
  alarm_topic_arn    = module.monitoring.topic_arn
  log_retention_days = var.log_retention_days
  subnet_ids         = local.batch_subnet_ids
  security_group_ids = local.batch_security_group_ids
  instance_types     = var.batch_predict_instance_types
  image_type         = "ECS_AL2023"
  compute_type       = var.batch_compute_type
  max_vcpus          = var.batch_max_vcpus
  job_gpus           = 0
  job_vcpus          = 2
  job_memory_mib     = 3584
  image_tag          = var.batch_predict_image_tag
  batch              = var.training_batch
  watch_package_zip  = local.lambda_zip
  watch_architecture = var.architecture
  check_gpu_quota    = false
  environment        = { for k, v in local.features_env : k => v if k != "MLPIPE_STORE" }
  extra_policy_json  = data.aws_iam_policy_document.online_read.json
  force_delete       = var.force_destroy
  tags               = var.tags
}
