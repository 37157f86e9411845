resource "google_artifact_registry_repository" "main" {
  count = var.create_artifact_registry ? 1 : 0

  project       = var.project_id
  location      = var.region
  repository_id = var.name
  description   = "Container images of the ${var.name} service."
  format        = "DOCKER"

  depends_on = [google_project_service.main]
}

resource "google_artifact_registry_repository_iam_member" "deployer_writer" {
  for_each = var.create_artifact_registry ? toset(var.deployer_members) : toset([])

  project    = var.project_id
  location   = google_artifact_registry_repository.main[0].location
  repository = google_artifact_registry_repository.main[0].name
  role       = "roles/artifactregistry.writer"
  member     = each.value
}
