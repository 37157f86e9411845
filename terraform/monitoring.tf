# Monitoring as code. The service logs one JSON line per run with message
# "run summary" and, under "summary", the fields events_written, requests,
# rate_limited and lag_seconds; Sentry authentication and scope failures carry
# error_kind="sentry_auth".

locals {
  # The error kinds the service logs (jsonPayload.error_kind), each with a
  # log-based metric and an alert policy.
  error_kind_alerts = {
    sentry_auth = {
      metric        = "sentry-auth-failures"
      description   = "Sentry authentication or scope failures (401/403: bad, expired or under-scoped token, SSO required)."
      title         = "Sentry authentication failure"
      condition     = "Sentry rejected the token"
      severity      = "CRITICAL"
      documentation = "Sentry answered 401 or 403 to ${var.name}: the token is invalid, expired or revoked, lacks a scope (org:read, project:read, event:read), or the organisation requires SSO. Collection is stopped until the token is fixed; rotate it as described in the README, Operate section."
    }
    project_failing = {
      metric        = "project-failing"
      description   = "Projects whose events have failed to be read in every run for over an hour."
      title         = "a project is not being collected"
      condition     = "a project has failed every run for an hour"
      severity      = "ERROR"
      documentation = "One project's events have failed to be read in every run of ${var.name} for over an hour (the log line \"project has failed every run for over an hour\" names it and the error): a deleted or renamed project, a token without access to it, or an answer from Sentry the service cannot read. The other projects are collected. See the README, Operate section."
    }
    coverage_missing = {
      metric        = "coverage-missing"
      description   = "Final hours of the coverage ledger in which Sentry shows events the bucket does not hold."
      title         = "events missing from the bucket"
      condition     = "a final hour has missing events"
      severity      = "ERROR"
      documentation = "The coverage ledger of ${var.name} found, a day after an hour, events Sentry shows that the bucket does not hold (the log line \"events Sentry shows are missing from the bucket in a final hour\" names the project, the hour and the ids). They are queued and written by the next runs; the alert closes when the hour is complete. If it stays open, run `server coverage -since 48h` and see the README, Completeness and Operate sections."
    }
  }

  service_log_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${var.name}\"",
  ])
  run_summary_filter = "${local.service_log_filter} AND jsonPayload.message=\"run summary\" AND severity<ERROR"

  # Distribution metrics extracted from the run summary.
  run_summary_metrics = {
    events_written = {
      field       = "events_written"
      unit        = "1"
      description = "Events written to the bucket per run."
    }
    requests = {
      field       = "requests"
      unit        = "1"
      description = "Requests made to the Sentry API per run."
    }
    rate_limited = {
      field       = "rate_limited"
      unit        = "1"
      description = "Sentry 429 responses per run."
    }
    lag_seconds = {
      field       = "lag_seconds"
      unit        = "s"
      description = "How far behind now the collected window ends at the end of a run, in seconds."
    }
  }
}

resource "google_logging_metric" "run_summary" {
  for_each = local.run_summary_metrics

  project         = var.project_id
  name            = "${var.name}-${replace(each.key, "_", "-")}"
  description     = each.value.description
  filter          = local.run_summary_filter
  value_extractor = "EXTRACT(jsonPayload.summary.${each.value.field})"

  # One run summary per stream and run: chart or alert per stream.
  label_extractors = {
    stream = "EXTRACT(jsonPayload.summary.stream)"
  }

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = each.value.unit

    labels {
      key         = "stream"
      value_type  = "STRING"
      description = "Stream of the run summary: events, issues or audit."
    }
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = 2
      scale              = 1
    }
  }

  depends_on = [google_project_service.main]
}

# One point per successful run: its absence drives the "no successful run" alert.
resource "google_logging_metric" "successful_runs" {
  project     = var.project_id
  name        = "${var.name}-successful-runs"
  description = "Successful collection runs (run summary lines below ERROR)."
  filter      = local.run_summary_filter

  label_extractors = {
    stream = "EXTRACT(jsonPayload.summary.stream)"
  }

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "stream"
      value_type  = "STRING"
      description = "Stream of the run summary: events, issues or audit."
    }
  }

  depends_on = [google_project_service.main]
}

# One metric and one alert per error_kind the service logs. The service logs
# each such failure exactly once, on one line carrying the kind.
resource "google_logging_metric" "error_kind" {
  for_each = local.error_kind_alerts

  project     = var.project_id
  name        = "${var.name}-${each.value.metric}"
  description = each.value.description
  filter      = "${local.service_log_filter} AND jsonPayload.error_kind=\"${each.key}\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }

  depends_on = [google_project_service.main]
}

moved {
  from = google_logging_metric.sentry_auth_failures
  to   = google_logging_metric.error_kind["sentry_auth"]
}

resource "google_monitoring_alert_policy" "dead_letter" {
  count = var.alerts_enabled ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name}: dead-lettered messages"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "messages waiting in ${google_pubsub_subscription.dead_letter.name}"

    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.dead_letter.name}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A push delivery failed ${var.max_delivery_attempts} times and was dead-lettered to `${google_pubsub_subscription.dead_letter.name}`. Pull it to see the message and its attributes, read the service's error logs around its publish time, fix the cause, then acknowledge it (the next tick collects anything missed). See the README, Operate section."
  }
}

resource "google_monitoring_alert_policy" "no_successful_run" {
  count = var.alerts_enabled ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name}: no successful run"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "no run summary for ${local.no_success_minutes} minutes"

    condition_absent {
      filter   = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.successful_runs.name}\""
      duration = "${local.no_success_minutes * 60}s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "No successful collection run of ${var.name} has been logged for ${local.no_success_minutes} minutes. Check the Scheduler job, the push subscription's delivery metrics, and the service's error logs. See the README, Operate section."
  }
}

resource "google_monitoring_alert_policy" "error_kind" {
  for_each = var.alerts_enabled ? local.error_kind_alerts : {}

  project               = var.project_id
  display_name          = "${var.name}: ${each.value.title}"
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = var.notification_channels

  conditions {
    display_name = each.value.condition

    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.error_kind[each.key].name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = each.value.documentation
  }
}

moved {
  from = google_monitoring_alert_policy.sentry_auth[0]
  to   = google_monitoring_alert_policy.error_kind["sentry_auth"]
}
