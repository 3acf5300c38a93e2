terraform {
  required_version = ">= 1.6"

  required_providers {
    # Exact versions: no lock file is committed (the providers' published checksums could
    # not be fetched where this was written), so pins are what make every `init` resolve
    # the same providers. Step 1 of the guide records their hashes for your platforms with
    # `terraform providers lock` (terraform/README.md, "Lock the providers").
    aws = {
      source  = "hashicorp/aws"
      version = "6.38.0"
    }
    cloudflare = {
      source = "cloudflare/cloudflare"
      # The release the allow-list was recorded from (terraform/providers/cloudflare-v5.22.0.json).
      version = "5.22.0"
    }
  }

  # State is local by default. For a shared environment keep it in S3 (create the bucket
  # first, outside this configuration), then `terraform init -migrate-state`:
  #
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "mlpipe/dev/terraform.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true # S3-native locking, Terraform >= 1.10
  # }
}
