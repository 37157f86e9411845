# syntax=docker/dockerfile:1

# Base images, pinned by version tag. A tag can be moved by its publisher; to
# build from exact bytes, pass each with its digest, as cloudbuild.yaml's
# _GO_IMAGE and _RUNTIME_IMAGE substitutions do when given one:
#   --build-arg GO_IMAGE=golang:1.26.8-bookworm@sha256:<digest>
# (`docker buildx imagetools inspect golang:1.26.8-bookworm` prints it).
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# Build stage: a pinned Go toolchain (the version of go.mod's go directive).
FROM ${GO_IMAGE} AS build

WORKDIR /src

# Modules first, so this layer is cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

ARG VERSION=dev
ARG COMMIT=unknown
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
RUN go build -trimpath \
      -ldflags "-s -w \
        -X github.com/secops-collectors/sentry-gcs/internal/buildinfo.Version=${VERSION} \
        -X github.com/secops-collectors/sentry-gcs/internal/buildinfo.Commit=${COMMIT}" \
      -o /out/server ./server

# Final stage: no shell, no package manager, CA certificates and tzdata
# included, running as an unprivileged user.
FROM ${RUNTIME_IMAGE}

COPY --from=build /out/server /server

USER nonroot:nonroot
EXPOSE 8080

ENTRYPOINT ["/server"]
