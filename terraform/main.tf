data "google_project" "main" {
  project_id = var.project_id
}

locals {
  labels = merge(var.labels, {
    app        = "sentry-gcs"
    managed_by = "terraform"
  })

  bucket_name = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-${var.name}"

  # Pub/Sub's maximum ack deadline. For push it is also the request timeout:
  # after it, Pub/Sub redelivers while the first request may still run.
  ack_deadline_seconds = 600

  # Cloud Run's request timeout: the push request ends at the ack deadline
  # anyway, and the run budget stays well below it (run_budget_seconds <= 540).
  request_timeout_seconds = local.ack_deadline_seconds

  # The audience Pub/Sub puts in the push token and the service verifies. The
  # deterministic URL is known before the service exists (no dependency cycle)
  # and is declared as a custom audience so Cloud Run's IAM check accepts it.
  push_audience = var.push_audience != "" ? var.push_audience : "https://${var.name}-${data.google_project.main.number}.${var.region}.run.app"

  # The Pub/Sub service agent, which mints push tokens and dead-letters messages.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.main.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  backfill_invoker_emails = [for m in var.backfill_invokers : split(":", m)[1]]

  # Every environment variable of the service except the token (a secret
  # reference in run.tf). internal/tfcheck holds this against internal/config.
  managed_env = {
    GCS_BUCKET            = google_storage_bucket.main.name
    GCS_PREFIX            = var.data_prefix
    STATE_KEY             = var.state_prefix
    STREAMS               = join(",", var.streams)
    ISSUES_PREFIX         = var.issues_prefix
    AUDIT_PREFIX          = var.audit_prefix
    SENTRY_ORG            = var.sentry_org
    SENTRY_API_BASE       = var.sentry_api_base
    MAX_PROJECTS          = tostring(var.max_projects)
    MAX_PAGES_PER_PROJECT = tostring(var.max_pages_per_project)
    RUN_BUDGET            = "${var.run_budget_seconds}s"
    PUSH_AUDIENCE         = local.push_audience
    PUSH_SERVICE_ACCOUNTS = google_service_account.push.email
    BACKFILL_INVOKERS     = join(",", local.backfill_invoker_emails)
    PUBSUB_TOPIC          = google_pubsub_topic.trigger.id
    LOG_LEVEL             = var.log_level
  }
  service_env = merge(var.extra_env, local.managed_env)

  # The audit-log stream has its own token (org:write) in its own secret,
  # created only when the stream is selected.
  audit_enabled = contains(var.streams, "audit")
  # The secret environment variables beyond SENTRY_AUTH_TOKEN (run.tf).
  audit_token_env = { for k in ["SENTRY_AUDIT_TOKEN"] : k => k if local.audit_enabled }

  # Data prefix of each selected stream (one SecOps feed each, secops.tf).
  stream_prefixes = { for s, p in { events = var.data_prefix, issues = var.issues_prefix, audit = var.audit_prefix } : s => p if contains(var.streams, s) }

  # Schedule period in minutes, for the "no successful run" alert.
  schedule_every_n   = regexall("^\\*/([0-9]+) \\* \\* \\* \\*$", trimspace(var.schedule))
  schedule_period    = length(local.schedule_every_n) > 0 ? tonumber(local.schedule_every_n[0][0]) : 60
  no_success_minutes = var.no_success_alert_minutes > 0 ? var.no_success_alert_minutes : min(3 * local.schedule_period, 1410)

  secops_project_id = var.secops_project_id != "" ? var.secops_project_id : var.project_id

  services = toset(concat([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ], var.secops_feed_enabled && local.secops_project_id == var.project_id ? ["chronicle.googleapis.com"] : []))
}

resource "google_project_service" "main" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
