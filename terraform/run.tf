resource "google_cloud_run_v2_service" "main" {
  project  = var.project_id
  name     = var.name
  location = var.region

  description         = "Collects Sentry error events into gs://${local.bucket_name}/${var.data_prefix} for Google SecOps."
  ingress             = var.ingress
  deletion_protection = var.deletion_protection

  # Every request needs an identity with run.invoker (no allUsers), and the
  # push token's audience is accepted by Cloud Run as a custom audience.
  invoker_iam_disabled = false
  custom_audiences     = [local.push_audience]

  template {
    service_account = google_service_account.runtime.email

    # A push request ends at the ack deadline (600 s); RUN_BUDGET stays below.
    timeout                          = "${local.request_timeout_seconds}s"
    max_instance_request_concurrency = var.max_request_concurrency

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.service_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "SENTRY_AUTH_TOKEN"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.sentry_token.secret_id
            version = "latest"
          }
        }
      }

      dynamic "env" {
        for_each = local.audit_token_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.sentry_audit_token[0].secret_id
              version = "latest"
            }
          }
        }
      }
    }
  }

  lifecycle {
    # Cloud Build deploys revisions (gcloud run deploy): Terraform creates the
    # service and must not roll the image back, nor fight over the annotations
    # and client fields gcloud sets.
    ignore_changes = [
      template[0].containers[0].image,
      template[0].annotations,
      template[0].labels,
      template[0].revision,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.main,
    google_secret_manager_secret_iam_member.runtime_token,
    google_secret_manager_secret_version.sentry_token,
    google_secret_manager_secret_iam_member.runtime_audit_token,
  ]
}
