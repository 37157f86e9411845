# The Sentry token lives in Secret Manager and reaches the service as a secret
# environment variable. Its value is added out of band (gcloud secrets versions
# add) or, optionally, through the write-only attribute below: in both cases it
# never enters the Terraform state or plan.
resource "google_secret_manager_secret" "sentry_token" {
  project   = var.project_id
  secret_id = "${var.name}-sentry-token"

  replication {
    auto {}
  }

  deletion_protection = var.deletion_protection

  depends_on = [google_project_service.main]
}

resource "google_secret_manager_secret_version" "sentry_token" {
  count = var.sentry_auth_token_version > 0 ? 1 : 0

  secret                 = google_secret_manager_secret.sentry_token.id
  secret_data_wo         = var.sentry_auth_token
  secret_data_wo_version = var.sentry_auth_token_version
}

# The audit-log stream's token (org:write, which the main token should not
# have) lives in its own secret, readable only by the runtime account; it
# exists only when streams includes audit.
resource "google_secret_manager_secret" "sentry_audit_token" {
  count = local.audit_enabled ? 1 : 0

  project   = var.project_id
  secret_id = "${var.name}-sentry-audit-token"

  replication {
    auto {}
  }

  deletion_protection = var.deletion_protection

  depends_on = [google_project_service.main]
}

resource "google_secret_manager_secret_version" "sentry_audit_token" {
  count = local.audit_enabled && var.sentry_audit_token_version > 0 ? 1 : 0

  secret                 = google_secret_manager_secret.sentry_audit_token[0].id
  secret_data_wo         = var.sentry_audit_token
  secret_data_wo_version = var.sentry_audit_token_version
}
