# Optional Google SecOps wiring: a "Google Cloud Storage V2" feed with log type
# SENTRY that reads the data prefix (never the state prefix), and read access
# on the bucket for the feed's service account.

locals {
  secops_feed_reader = var.secops_feed_service_account != "" ? var.secops_feed_service_account : (
    var.secops_feed_enabled ? google_chronicle_feed.main[0].feed_service_account : ""
  )
  secops_grant_read = var.secops_feed_enabled || var.secops_feed_service_account != ""
}

resource "google_chronicle_feed" "main" {
  count = var.secops_feed_enabled ? 1 : 0

  project      = local.secops_project_id
  location     = var.secops_location
  instance     = var.secops_instance_id
  display_name = "${var.name} Sentry events"
  enabled      = true

  details {
    feed_source_type = "GOOGLE_CLOUD_STORAGE_V2"
    log_type         = "projects/${local.secops_project_id}/locations/${var.secops_location}/instances/${var.secops_instance_id}/logTypes/SENTRY"

    gcs_v2_settings {
      bucket_uri             = "gs://${google_storage_bucket.main.name}/${var.data_prefix}"
      source_deletion_option = var.secops_source_deletion_option
      max_lookback_days      = var.secops_max_lookback_days
    }
  }

  lifecycle {
    precondition {
      condition     = var.secops_instance_id != ""
      error_message = "Set secops_instance_id (the SecOps customer ID) to create the feed."
    }
  }

  depends_on = [google_project_service.main]
}

# One more feed per selected issues/audit stream, each reading its own
# prefix, so that each stream can have its own log type and parser.
resource "google_chronicle_feed" "stream" {
  for_each = var.secops_feed_enabled ? { for s, p in local.stream_prefixes : s => p if s != "events" } : {}

  project      = local.secops_project_id
  location     = var.secops_location
  instance     = var.secops_instance_id
  display_name = "${var.name} Sentry ${each.key}"
  enabled      = true

  details {
    feed_source_type = "GOOGLE_CLOUD_STORAGE_V2"
    log_type         = "projects/${local.secops_project_id}/locations/${var.secops_location}/instances/${var.secops_instance_id}/logTypes/${lookup(var.secops_stream_log_types, each.key, "SENTRY")}"

    gcs_v2_settings {
      bucket_uri             = "gs://${google_storage_bucket.main.name}/${each.value}"
      source_deletion_option = var.secops_source_deletion_option
      max_lookback_days      = var.secops_max_lookback_days
    }
  }

  lifecycle {
    precondition {
      condition     = var.secops_instance_id != ""
      error_message = "Set secops_instance_id (the SecOps customer ID) to create the feeds."
    }
  }

  depends_on = [google_project_service.main]
}

# The feed lists and reads objects.
resource "google_storage_bucket_iam_member" "secops_reader" {
  count = local.secops_grant_read ? 1 : 0

  bucket = google_storage_bucket.main.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${local.secops_feed_reader}"
}

# With ON_SUCCESS the feed deletes what it transferred. Least privilege for
# that: a custom role with only storage.objects.get, list and delete (the
# predefined roles that can delete, such as roles/storage.objectUser, also
# let it create and overwrite objects), bound on the bucket with a condition
# limiting it to the data prefixes, so it can never delete the state. The role
# is defined in the project (custom roles cannot be defined on a bucket); it
# grants nothing by itself: the only grant is the bucket binding below.
resource "google_project_iam_custom_role" "secops_deleter" {
  count = local.secops_grant_read && var.secops_source_deletion_option == "ON_SUCCESS" ? 1 : 0

  project     = var.project_id
  role_id     = "${replace(var.name, "-", "_")}_secops_deleter"
  title       = "${var.name} SecOps feed deleter"
  description = "Read, list and delete objects (the SecOps feed's ON_SUCCESS source deletion); no create or overwrite."
  permissions = ["storage.objects.delete", "storage.objects.get", "storage.objects.list"]

  depends_on = [google_project_service.main]
}

resource "google_storage_bucket_iam_member" "secops_deleter" {
  count = local.secops_grant_read && var.secops_source_deletion_option == "ON_SUCCESS" ? 1 : 0

  bucket = google_storage_bucket.main.name
  role   = google_project_iam_custom_role.secops_deleter[0].name
  member = "serviceAccount:${local.secops_feed_reader}"

  condition {
    title       = "data-prefix-only"
    description = "Objects under the Sentry data prefixes only (never the state prefix)."
    expression  = join(" || ", [for p in distinct(concat([var.data_prefix], values(local.stream_prefixes))) : "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.main.name}/objects/${p}\")"])
  }
}
