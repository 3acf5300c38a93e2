terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    cloudflare = {
      source = "cloudflare/cloudflare"
      # Checked against v5.22.0 (terraform/providers/cloudflare-v5.22.0.json); the floor is
      # the first release with worker versions, their ratelimit binding and JSON token scopes.
      version = ">= 5.17.0, < 6.0.0"
    }
  }

  # State is local by default. For a shared environment keep it in S3 (create the bucket
  # first, outside this configuration), then `terraform init -migrate-state`:
  #
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "mlpipe/prod/terraform.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true # S3-native locking, Terraform >= 1.10
  # }
}
