resource "google_storage_bucket" "main" {
  project  = var.project_id
  name     = local.bucket_name
  location = var.bucket_location != "" ? var.bucket_location : var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.bucket_force_destroy

  # No object versioning and no bucket retention policy: state objects are
  # rewritten by compare-and-swap, which a retention policy would forbid and
  # versioning would turn into an ever-growing history. Event objects are
  # write-once by design.

  dynamic "lifecycle_rule" {
    for_each = var.data_retention_days > 0 ? [var.data_retention_days] : []
    content {
      action {
        type = "Delete"
      }
      condition {
        age            = lifecycle_rule.value
        matches_prefix = [var.data_prefix]
      }
    }
  }

  depends_on = [google_project_service.main]
}
