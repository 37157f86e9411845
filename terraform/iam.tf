# One service account per identity, and every grant bound on the resource it
# concerns: nothing here is granted project-wide.

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name}-run"
  display_name = "${var.name} runtime"
  description  = "Identity of the ${var.name} Cloud Run service: reads its Sentry token, writes the bucket, publishes continuations."

  depends_on = [google_project_service.main]
}

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name}-push"
  display_name = "${var.name} push invoker"
  description  = "Identity in the Pub/Sub push OIDC token; may only invoke the ${var.name} service."

  depends_on = [google_project_service.main]
}

# Runtime: objects in this bucket only (create, read, list, delete for leases
# and compare-and-swap on state objects); no bucket administration.
resource "google_storage_bucket_iam_member" "runtime_objects" {
  bucket = google_storage_bucket.main.name
  role   = "roles/storage.objectUser"
  member = google_service_account.runtime.member
}

# Runtime: its own secret only.
resource "google_secret_manager_secret_iam_member" "runtime_token" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.sentry_token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}

# Runtime: the audit-log token's secret, when the audit stream is selected.
resource "google_secret_manager_secret_iam_member" "runtime_audit_token" {
  count = local.audit_enabled ? 1 : 0

  project   = var.project_id
  secret_id = google_secret_manager_secret.sentry_audit_token[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}

# Runtime: publish continuation messages to the trigger topic only.
resource "google_pubsub_topic_iam_member" "runtime_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.trigger.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.runtime.member
}

# Push invoker: this service only.
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.main.location
  name     = google_cloud_run_v2_service.main.name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# The Pub/Sub service agent mints the push OIDC tokens for the push account
# (required for projects created on or before 8 April 2021, harmless after).
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# Operators allowed to call POST /backfill: this service only. The service
# also checks their email against BACKFILL_INVOKERS.
resource "google_cloud_run_v2_service_iam_member" "backfill_invoker" {
  for_each = toset(var.backfill_invokers)

  project  = var.project_id
  location = google_cloud_run_v2_service.main.location
  name     = google_cloud_run_v2_service.main.name
  role     = "roles/run.invoker"
  member   = each.value
}

# Deployers (Cloud Build): new revisions of this service, running as the
# runtime account, from images in this repository.
resource "google_cloud_run_v2_service_iam_member" "deployer" {
  for_each = toset(var.deployer_members)

  project  = var.project_id
  location = google_cloud_run_v2_service.main.location
  name     = google_cloud_run_v2_service.main.name
  role     = "roles/run.developer"
  member   = each.value
}

resource "google_service_account_iam_member" "deployer_act_as" {
  for_each = toset(var.deployer_members)

  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
