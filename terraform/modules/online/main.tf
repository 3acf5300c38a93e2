# The online feature store on AWS: one item per (view, entity), hash key "pk"
# ("<view>/<entity>"), written by the feature stage with a condition on last_event_us so
# that an older record never overwrites a newer one (shared/online/src/dynamodb.rs).
resource "aws_dynamodb_table" "this" {
  name                        = var.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = var.tags
}
