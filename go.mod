module github.com/secops-collectors/sentry-gcs

go 1.26.8
