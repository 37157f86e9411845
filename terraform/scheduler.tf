# The tick. Cloud Scheduler publishes with its own service agent; its "success"
# is the publish, so retries of the work itself come from the push
# subscription's retry policy, and this retry config only covers the publish.
resource "google_cloud_scheduler_job" "tick" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name}-tick"
  description = "Triggers a Sentry collection run through ${google_pubsub_topic.trigger.name}."
  schedule    = var.schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.trigger.id
    data       = base64encode("{}")
    attributes = {
      origin = "cloud-scheduler"
    }
  }

  retry_config {
    retry_count          = 3
    min_backoff_duration = "10s"
    max_backoff_duration = "60s"
    max_doublings        = 2
    max_retry_duration   = "300s"
  }

  depends_on = [google_project_service.main]
}
