terraform {
  # 1.11: write-only attributes (secret_data_wo) and ephemeral variables, used to
  # hand the Sentry token to Secret Manager without storing it in state. 1.9 is
  # needed anyway for validations that refer to other variables.
  required_version = ">= 1.11, < 2.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.40, < 9.0"
    }
  }
}
