# Credentials for the AWS side, one token per purpose:
# - publish_r2: object write on the models bucket (the publish stage's MLPIPE_EDGE_R2);
# - kv_write:   KV write on the account (the publish stage's CLOUDFLARE_API_TOKEN);
# - drift_r2:   object read on the prediction-log bucket (the drift stage's MLPIPE_LOGS_STORE).
# An R2 S3 key pair is derived from an API token: access key ID = the token's ID, secret
# access key = the SHA-256 of the token's value (developers.cloudflare.com/r2/api/tokens/).

data "cloudflare_api_token_permission_groups_list" "all" {}

locals {
  permission_groups = data.cloudflare_api_token_permission_groups_list.all.result

  r2_object_write = one([for g in local.permission_groups : g.id if g.name == "Workers R2 Storage Bucket Item Write"])
  r2_object_read  = one([for g in local.permission_groups : g.id if g.name == "Workers R2 Storage Bucket Item Read"])
  kv_write        = one([for g in local.permission_groups : g.id if g.name == "Workers KV Storage Write"])

  # R2 bucket resources are "<account>_<jurisdiction>_<bucket>"; these buckets have none.
  r2_resource = "com.cloudflare.edge.r2.bucket.${var.account_id}_default_"
}

resource "cloudflare_api_token" "publish_r2" {
  name = "${var.name_prefix}-publish-r2"
  policies = [{
    effect            = "allow"
    permission_groups = [{ id = local.r2_object_write }]
    resources         = jsonencode({ "${local.r2_resource}${cloudflare_r2_bucket.models.name}" = "*" })
  }]
}

resource "cloudflare_api_token" "kv_write" {
  name = "${var.name_prefix}-publish-kv"
  policies = [{
    effect            = "allow"
    permission_groups = [{ id = local.kv_write }]
    resources         = jsonencode({ "com.cloudflare.api.account.${var.account_id}" = "*" })
  }]
}

resource "cloudflare_api_token" "drift_r2" {
  name = "${var.name_prefix}-drift-r2"
  policies = [{
    effect            = "allow"
    permission_groups = [{ id = local.r2_object_read }]
    resources         = jsonencode({ "${local.r2_resource}${cloudflare_r2_bucket.logs.name}" = "*" })
  }]
}

locals {
  publish_r2_key_id = cloudflare_api_token.publish_r2.id
  publish_r2_secret = sha256(cloudflare_api_token.publish_r2.value)
  drift_r2_key_id   = cloudflare_api_token.drift_r2.id
  drift_r2_secret   = sha256(cloudflare_api_token.drift_r2.value)
}
