terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Valid for 5.100 (what the apply test runs) and 6.x (what the environments pin).
      version = ">= 5.100.0, < 7.0.0"
    }
  }
}
