# ---------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that hosts the collector (bucket, Cloud Run service, Pub/Sub, Scheduler, secret)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "The project_id must be a Google Cloud project ID: 6-30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the Cloud Run service, the Artifact Registry repository, the Scheduler job and (unless bucket_location is set) the bucket."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "The region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "name" {
  description = "Base name of every resource (kebab-case). Service accounts are named <name>-run and <name>-push, so keep it at most 25 characters."
  type        = string
  default     = "sentry-gcs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,23}[a-z0-9]$", var.name))
    error_message = "The name must be 4-25 characters of lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  description = "Extra labels applied to every resource that supports labels (snake_case keys)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.labels) : can(regex("^[a-z][a-z0-9_-]{0,62}$", k))])
    error_message = "Label keys must start with a lowercase letter and contain only lowercase letters, digits, underscores and hyphens."
  }
}

# ---------------------------------------------------------------------------
# Cloud Run service
# ---------------------------------------------------------------------------

variable "image" {
  description = "Container image of the first revision. Cloud Build deploys later revisions (Terraform ignores image changes), so a placeholder that listens on $PORT is fine for the first apply."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"

  validation {
    condition     = length(var.image) > 0 && !can(regex("\\s", var.image))
    error_message = "The image must be a container image reference without spaces."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the Cloud Run service and the Sentry token secret (set to false before terraform destroy)."
  type        = bool
  default     = true
}

variable "max_instances" {
  description = "Maximum number of Cloud Run instances. Runs on the same organisation are serialised by a lease in the bucket, so a few instances are plenty."
  type        = number
  default     = 3

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100 && floor(var.max_instances) == var.max_instances
    error_message = "The max_instances must be an integer between 1 and 100."
  }
}

variable "max_request_concurrency" {
  description = "Maximum concurrent requests per Cloud Run instance (push deliveries, backfill calls, health checks)."
  type        = number
  default     = 8

  validation {
    condition     = var.max_request_concurrency >= 1 && var.max_request_concurrency <= 1000 && floor(var.max_request_concurrency) == var.max_request_concurrency
    error_message = "The max_request_concurrency must be an integer between 1 and 1000."
  }
}

variable "cpu" {
  description = "CPU limit of the container (Cloud Run syntax, e.g. \"1\")."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit of the container (Cloud Run syntax, e.g. \"512Mi\"). The collector streams pages and never buffers a whole run."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "The memory must be a quantity such as 512Mi or 1Gi."
  }
}

variable "ingress" {
  description = "Cloud Run ingress. INGRESS_TRAFFIC_ALL lets Pub/Sub push and operators' backfill calls reach the service; every request still needs an authorised identity (no allUsers invoker)."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "The ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the service: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be debug, info, warn or error."
  }
}

variable "extra_env" {
  description = "Additional environment variables for the service, e.g. {COLLECT_OVERLAP = \"1h\", INITIAL_LOOKBACK = \"168h\"}. Variables managed by this module, the token and Cloud Run's reserved names cannot be set here."
  type        = map(string)
  default     = {}

  validation {
    condition = length(setintersection(keys(var.extra_env), [
      "GCS_BUCKET", "GCS_PREFIX", "STATE_KEY", "SENTRY_ORG", "SENTRY_AUTH_TOKEN", "SENTRY_API_BASE", "MAX_PROJECTS",
      "MAX_PAGES_PER_PROJECT", "RUN_BUDGET", "PUSH_AUDIENCE", "PUSH_SERVICE_ACCOUNTS", "BACKFILL_INVOKERS",
      "PUBSUB_TOPIC", "LOG_LEVEL", "PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "PUSH_AUTH_DISABLED",
      "ALLOW_INSECURE_ON_CLOUD_RUN",
    ])) == 0
    error_message = "The extra_env map must not set variables managed by this module, the token, PORT, K_* or the push-authentication switches."
  }
}

# ---------------------------------------------------------------------------
# Sentry and collection
# ---------------------------------------------------------------------------

variable "sentry_org" {
  description = "Sentry organisation slug (SENTRY_ORG)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]*$", var.sentry_org))
    error_message = "The sentry_org must be a Sentry organisation slug (letters, digits, '-', '_', '.')."
  }
}

variable "sentry_api_base" {
  description = "Sentry root URL without /api/0 (SENTRY_API_BASE): https://sentry.io, a region host such as https://de.sentry.io, or a self-hosted root."
  type        = string
  default     = "https://sentry.io"

  validation {
    condition     = can(regex("^https?://[^/?#\\s]+(/[^?#\\s]*)?$", var.sentry_api_base)) && !can(regex("/api(/0)?/?$", var.sentry_api_base))
    error_message = "The sentry_api_base must be an absolute http(s) URL without /api/0, a query or a fragment."
  }
}

variable "sentry_auth_token" {
  description = "Optional: the Sentry auth token, written to Secret Manager through a write-only attribute, so it is kept out of the state and the plan. Leave null to add the secret version out of band (recommended, see the README). Used only when sentry_auth_token_version > 0."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "sentry_auth_token_version" {
  description = "Set to 1 (and increase it to rotate) to write sentry_auth_token as a new secret version; 0 means the token is managed out of band."
  type        = number
  default     = 0

  validation {
    condition     = var.sentry_auth_token_version >= 0 && floor(var.sentry_auth_token_version) == var.sentry_auth_token_version
    error_message = "The sentry_auth_token_version must be a non-negative integer."
  }
}

variable "sentry_audit_token" {
  description = "Optional: the audit-log token (org:write), written to its own Secret Manager secret through a write-only attribute, kept out of the state and the plan. Leave null to add the version out of band (recommended). Used only when streams includes audit and sentry_audit_token_version > 0."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "sentry_audit_token_version" {
  description = "Set to 1 (and increase it to rotate) to write sentry_audit_token as a new secret version; 0 means the audit token is managed out of band."
  type        = number
  default     = 0

  validation {
    condition     = var.sentry_audit_token_version >= 0 && floor(var.sentry_audit_token_version) == var.sentry_audit_token_version
    error_message = "The sentry_audit_token_version must be a non-negative integer."
  }
}

variable "max_projects" {
  description = "Maximum number of Sentry projects collected (MAX_PROJECTS)."
  type        = number
  default     = 100

  validation {
    condition     = var.max_projects >= 1 && floor(var.max_projects) == var.max_projects
    error_message = "The max_projects must be a positive integer."
  }
}

variable "max_pages_per_project" {
  description = "Maximum pages (100 events each) per project per run (MAX_PAGES_PER_PROJECT); a capped project resumes on the next run."
  type        = number
  default     = 5

  validation {
    condition     = var.max_pages_per_project >= 1 && var.max_pages_per_project <= 1000 && floor(var.max_pages_per_project) == var.max_pages_per_project
    error_message = "The max_pages_per_project must be an integer between 1 and 1000."
  }
}

variable "run_budget_seconds" {
  description = "Time budget of one run in seconds (RUN_BUDGET). It must leave at least 60 s before Pub/Sub's 600 s ack deadline, which is also the push request timeout."
  type        = number
  default     = 420

  validation {
    condition     = var.run_budget_seconds >= 30 && var.run_budget_seconds <= 540 && floor(var.run_budget_seconds) == var.run_budget_seconds
    error_message = "The run_budget_seconds must be an integer between 30 and 540 (the ack deadline is 600 s; a run needs time to commit and answer)."
  }
}

variable "backfill_invokers" {
  description = "Service accounts allowed to call POST /backfill, as IAM members (\"serviceAccount:ops@p.iam.gserviceaccount.com\"). They get run.invoker on this service only, and their emails go to BACKFILL_INVOKERS. Operators impersonate one: the service checks the token's audience (PUSH_AUDIENCE), and gcloud mints tokens with a chosen audience only for service accounts."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.backfill_invokers : can(regex("^serviceAccount:[^@\\s]+@[^@\\s]+$", m))])
    error_message = "Each backfill invoker must be \"serviceAccount:EMAIL\": the service checks the ID token's audience, which gcloud lets you choose only for service accounts (users impersonate one; groups cannot be checked against the token's email)."
  }
}

variable "push_audience" {
  description = "Audience of the push OIDC token (PUSH_AUDIENCE). Empty: the service's deterministic URL https://<name>-<project number>.<region>.run.app, also declared as a Cloud Run custom audience."
  type        = string
  default     = ""
}

variable "push_path" {
  description = "Path of the service's Pub/Sub push endpoint."
  type        = string
  default     = "/pubsub/push"

  validation {
    condition     = can(regex("^/[A-Za-z0-9/_.-]*$", var.push_path))
    error_message = "The push_path must be an absolute URL path such as /pubsub/push."
  }
}

# ---------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the bucket for events and state. Empty: <project_id>-<name>."
  type        = string
  default     = ""

  validation {
    condition     = var.bucket_name == "" || can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be a valid bucket name: 3-63 lowercase letters, digits, '-', '_' and '.'."
  }
}

variable "bucket_location" {
  description = "Location of the bucket (region, dual-region or multi-region). Empty: the region variable."
  type        = string
  default     = ""
}

variable "bucket_force_destroy" {
  description = "Allow terraform destroy to delete the bucket with its objects (events and state)."
  type        = bool
  default     = false
}

variable "data_prefix" {
  description = "Object prefix of the NDJSON event objects (GCS_PREFIX), and the prefix the SecOps feed reads. Ends with a slash, no leading slash."
  type        = string
  default     = "sentry/events/"

  validation {
    condition     = can(regex("^[^/\\s][^\\s]*/$", var.data_prefix))
    error_message = "The data_prefix must be non-empty, end with '/' and not start with '/'."
  }
}

variable "state_prefix" {
  description = "Object prefix of the state objects: watermarks, leases, backfill jobs (STATE_KEY). Must be outside data_prefix, or the SecOps feed would ingest the state as logs (or delete it)."
  type        = string
  default     = "sentry/state/"

  validation {
    condition     = can(regex("^[^/\\s][^\\s]*/$", var.state_prefix))
    error_message = "The state_prefix must be non-empty, end with '/' and not start with '/'."
  }

  validation {
    condition     = !startswith(var.state_prefix, var.data_prefix) && !startswith(var.data_prefix, var.state_prefix)
    error_message = "The state_prefix and data_prefix must not contain each other: the SecOps feed reads everything under data_prefix and would ingest (or delete) the state."
  }
}

variable "streams" {
  description = "Streams to collect (STREAMS): events, issues, audit. Each writes under its own prefix (data_prefix, issues_prefix, audit_prefix) so each can feed its own SecOps feed; audit needs the audit token secret (sentry_audit_token)."
  type        = list(string)
  default     = ["events"]

  validation {
    condition     = length(var.streams) > 0 && alltrue([for s in var.streams : contains(["events", "issues", "audit"], s)])
    error_message = "The streams must be a non-empty list of events, issues and audit."
  }
}

variable "issues_prefix" {
  description = "Object prefix of the NDJSON issue objects (ISSUES_PREFIX), used when streams includes issues. Ends with a slash, no leading slash; outside data_prefix, audit_prefix and state_prefix."
  type        = string
  default     = "sentry/issues/"

  validation {
    condition     = can(regex("^[^/\\s][^\\s]*/$", var.issues_prefix))
    error_message = "The issues_prefix must be non-empty, end with '/' and not start with '/'."
  }

  validation {
    condition = alltrue([for p in [var.data_prefix, var.state_prefix, var.audit_prefix] :
    !startswith(var.issues_prefix, p) && !startswith(p, var.issues_prefix)])
    error_message = "The issues_prefix must not overlap data_prefix, audit_prefix or state_prefix: each SecOps feed reads everything under its prefix."
  }
}

variable "audit_prefix" {
  description = "Object prefix of the NDJSON audit-log objects (AUDIT_PREFIX), used when streams includes audit. Ends with a slash, no leading slash; outside data_prefix, issues_prefix and state_prefix."
  type        = string
  default     = "sentry/audit/"

  validation {
    condition     = can(regex("^[^/\\s][^\\s]*/$", var.audit_prefix))
    error_message = "The audit_prefix must be non-empty, end with '/' and not start with '/'."
  }

  validation {
    condition = alltrue([for p in [var.data_prefix, var.state_prefix] :
    !startswith(var.audit_prefix, p) && !startswith(p, var.audit_prefix)])
    error_message = "The audit_prefix must not overlap data_prefix or state_prefix: each SecOps feed reads everything under its prefix."
  }
}

variable "data_retention_days" {
  description = "Delete event objects under data_prefix this many days after creation (a lifecycle rule; state objects are never touched). 0 keeps them forever."
  type        = number
  default     = 0

  validation {
    condition     = var.data_retention_days >= 0 && floor(var.data_retention_days) == var.data_retention_days
    error_message = "The data_retention_days must be a non-negative integer."
  }
}

# ---------------------------------------------------------------------------
# Pub/Sub and Scheduler
# ---------------------------------------------------------------------------

variable "schedule" {
  description = "Cron schedule (UTC) of the collection tick published to the trigger topic."
  type        = string
  default     = "*/10 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.schedule))) == 5
    error_message = "The schedule must be a five-field cron expression such as \"*/10 * * * *\"."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before Pub/Sub moves it to the dead-letter topic (5-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "The max_delivery_attempts must be an integer between 5 and 100."
  }
}

variable "retry_minimum_backoff" {
  description = "Minimum delay before Pub/Sub redelivers a nacked push (e.g. \"10s\")."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.retry_minimum_backoff)) && tonumber(trimsuffix(var.retry_minimum_backoff, "s")) <= 600
    error_message = "The retry_minimum_backoff must be a number of seconds between 0s and 600s, e.g. \"10s\"."
  }
}

variable "retry_maximum_backoff" {
  description = "Maximum delay before Pub/Sub redelivers a nacked push (e.g. \"600s\")."
  type        = string
  default     = "600s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.retry_maximum_backoff)) && tonumber(trimsuffix(var.retry_maximum_backoff, "s")) <= 600
    error_message = "The retry_maximum_backoff must be a number of seconds between 0s and 600s, e.g. \"600s\"."
  }
}

# ---------------------------------------------------------------------------
# Build and deploy
# ---------------------------------------------------------------------------

variable "create_artifact_registry" {
  description = "Create a Docker Artifact Registry repository named <name> in the region for the service's images."
  type        = bool
  default     = true
}

variable "deployer_members" {
  description = "IAM members that deploy revisions (e.g. the Cloud Build service account, \"serviceAccount:…\"): they get run.developer on this service, actAs on the runtime account, and write access to the repository."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.deployer_members : can(regex("^(user|serviceAccount|group):[^@\\s]+@[^@\\s]+$", m))])
    error_message = "Each deployer member must be an IAM member such as \"serviceAccount:EMAIL\"."
  }
}

# ---------------------------------------------------------------------------
# Google SecOps feed (optional)
# ---------------------------------------------------------------------------

variable "secops_feed_enabled" {
  description = "Create the Google SecOps feed (source GOOGLE_CLOUD_STORAGE_V2, log type SENTRY) reading the data prefix."
  type        = bool
  default     = false
}

variable "secops_project_id" {
  description = "Project bound to the Google SecOps instance. Empty: project_id."
  type        = string
  default     = ""
}

variable "secops_location" {
  description = "Location (region) of the Google SecOps instance, e.g. \"us\" or \"europe\"."
  type        = string
  default     = "us"
}

variable "secops_instance_id" {
  description = "Google SecOps instance (customer) ID, a UUID. Required when secops_feed_enabled."
  type        = string
  default     = ""

  validation {
    condition     = var.secops_instance_id == "" || can(regex("^[0-9a-fA-F-]{36}$", var.secops_instance_id))
    error_message = "The secops_instance_id must be the SecOps customer ID (a UUID)."
  }
}

variable "secops_feed_service_account" {
  description = "Email of the SecOps feed's service account (the Storage Transfer Service account of the SecOps tenant), granted read access on the bucket. Empty: the feed's own feed_service_account when secops_feed_enabled."
  type        = string
  default     = ""

  validation {
    condition     = var.secops_feed_service_account == "" || can(regex("^[^@\\s]+@[^@\\s]+$", var.secops_feed_service_account))
    error_message = "The secops_feed_service_account must be an email address."
  }
}

variable "secops_source_deletion_option" {
  description = "What the feed does with transferred objects: NEVER (recommended) or ON_SUCCESS (delete them; the feed then also gets delete rights, limited to data_prefix)."
  type        = string
  default     = "NEVER"

  validation {
    condition     = contains(["NEVER", "ON_SUCCESS"], var.secops_source_deletion_option)
    error_message = "The secops_source_deletion_option must be NEVER or ON_SUCCESS."
  }
}

variable "secops_stream_log_types" {
  description = "SecOps log type of the issues and audit feeds (created with secops_feed_enabled for each selected stream), by stream. Default SENTRY; set a custom log type when you have a parser for that stream's records."
  type        = map(string)
  default     = { issues = "SENTRY", audit = "SENTRY" }

  validation {
    condition     = alltrue([for k, v in var.secops_stream_log_types : contains(["issues", "audit"], k) && can(regex("^[A-Z0-9_]+$", v))])
    error_message = "The secops_stream_log_types keys must be issues or audit, and values SecOps log type names (uppercase letters, digits, '_')."
  }
}

variable "secops_max_lookback_days" {
  description = "Maximum age in days of the objects the feed ingests (by the object's update time)."
  type        = number
  default     = 180

  validation {
    condition     = var.secops_max_lookback_days >= 1 && floor(var.secops_max_lookback_days) == var.secops_max_lookback_days
    error_message = "The secops_max_lookback_days must be a positive integer."
  }
}

# ---------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------

variable "notification_channels" {
  description = "Monitoring notification channel IDs (projects/P/notificationChannels/N) that receive the alerts. Empty: alerts are recorded but nobody is notified."
  type        = list(string)
  default     = []
}

variable "alerts_enabled" {
  description = "Create the alert policies (dead-lettered messages, no successful run, Sentry authentication failures)."
  type        = bool
  default     = true
}

variable "no_success_alert_minutes" {
  description = "Alert when no successful run has been logged for this many minutes. 0: three schedule periods (the period is read from a \"*/N * * * *\" or hourly schedule, else 60 minutes is assumed)."
  type        = number
  default     = 0

  validation {
    condition     = var.no_success_alert_minutes == 0 || (var.no_success_alert_minutes >= 5 && var.no_success_alert_minutes <= 1410)
    error_message = "The no_success_alert_minutes must be 0 or between 5 and 1410 (a metric-absence condition lasts at most 23.5 hours)."
  }
}
