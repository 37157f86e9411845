# Trigger topic: Cloud Scheduler ticks, the service's continuation messages and
# backfill work all arrive here and are pushed to the service.
resource "google_pubsub_topic" "trigger" {
  project = var.project_id
  name    = "${var.name}-trigger"

  # Ticks are worthless after a day; the next tick supersedes them.
  message_retention_duration = "86400s"

  depends_on = [google_project_service.main]
}

resource "google_pubsub_subscription" "push" {
  project = var.project_id
  name    = "${var.name}-push"
  topic   = google_pubsub_topic.trigger.id

  # For push, the ack deadline is also the request timeout: the service answers
  # within RUN_BUDGET (< 600 s), so a running collection is never redelivered.
  ack_deadline_seconds       = local.ack_deadline_seconds
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.main.uri}${var.push_path}"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.push_audience
    }
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expire
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_service_account_iam_member.pubsub_token_creator,
  ]
}

# Dead-letter topic and its pull subscription: without a subscription,
# dead-lettered messages would be dropped. An operator inspects them there.
resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = "${var.name}-dead-letter"

  depends_on = [google_project_service.main]
}

resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = "${var.name}-dead-letter"
  topic   = google_pubsub_topic.dead_letter.id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expire
  }
}

# What the Pub/Sub service agent needs for dead-lettering: publish to the
# dead-letter topic and acknowledge (subscriber) on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "push_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
