output "service_url" {
  description = "URL of the Cloud Run service."
  value       = google_cloud_run_v2_service.main.uri
}

output "service_name" {
  description = "Name of the Cloud Run service (the _SERVICE substitution of cloudbuild.yaml)."
  value       = google_cloud_run_v2_service.main.name
}

output "push_audience" {
  description = "Audience of the push OIDC token, verified by the service (PUSH_AUDIENCE)."
  value       = local.push_audience
}

output "bucket_name" {
  description = "Bucket holding the event objects and the state."
  value       = google_storage_bucket.main.name
}

output "data_uri" {
  description = "Where the event objects are written (the SecOps feed's source URI)."
  value       = "gs://${google_storage_bucket.main.name}/${var.data_prefix}"
}

output "state_uri" {
  description = "Where the state objects (watermarks, leases, backfill jobs) are written."
  value       = "gs://${google_storage_bucket.main.name}/${var.state_prefix}"
}

output "trigger_topic" {
  description = "Full name of the trigger topic (PUBSUB_TOPIC)."
  value       = google_pubsub_topic.trigger.id
}

output "push_subscription" {
  description = "Full name of the push subscription that delivers ticks to the service."
  value       = google_pubsub_subscription.push.id
}

output "dead_letter_subscription" {
  description = "Full name of the pull subscription holding dead-lettered messages."
  value       = google_pubsub_subscription.dead_letter.id
}

output "scheduler_job" {
  description = "Full name of the Cloud Scheduler job that publishes the ticks."
  value       = google_cloud_scheduler_job.tick.id
}

output "runtime_service_account" {
  description = "Email of the service's runtime service account."
  value       = google_service_account.runtime.email
}

output "push_service_account" {
  description = "Email of the push invoker service account (PUSH_SERVICE_ACCOUNTS)."
  value       = google_service_account.push.email
}

output "sentry_token_secret" {
  description = "Secret Manager secret ID to add the Sentry token version to."
  value       = google_secret_manager_secret.sentry_token.secret_id
}

output "sentry_audit_token_secret" {
  description = "Secret Manager secret ID to add the audit-log token (org:write) version to; empty unless streams includes audit."
  value       = local.audit_enabled ? google_secret_manager_secret.sentry_audit_token[0].secret_id : ""
}

output "image_repository" {
  description = "Artifact Registry path for the service's images (empty when not created)."
  value       = var.create_artifact_registry ? "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.main[0].repository_id}" : ""
}

output "secops_feed" {
  description = "Resource name of the Google SecOps feed (empty when not created)."
  value       = var.secops_feed_enabled ? google_chronicle_feed.main[0].name : ""
}

output "secops_feed_service_account" {
  description = "Service account the SecOps feed reads the bucket with (empty when unknown)."
  value       = local.secops_feed_reader
}
