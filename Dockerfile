# The image deploy/kubernetes runs: incidentd (the entrypoint) and
# incidentctl, as the distroless "nonroot" user (uid 65532, as the manifests
# expect). Built with cgo, so Pebble's block cache and memtables stay off the
# Go heap (see "Go runtime" in the README); the base image carries the glibc
# the binaries link against.
#
#   docker build -t incidentd:latest --build-arg VERSION=$(git describe --always --dirty) .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN mkdir -p /out/data && go build -trimpath -ldflags "-s -w -X github.com/llm-im/incidentd/app.Version=${VERSION}" -o /out/incidentd ./cmd/incidentd \
 && go build -trimpath -ldflags "-s -w -X github.com/llm-im/incidentd/app.Version=${VERSION}" -o /out/incidentctl ./cmd/incidentctl

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/incidentd /out/incidentctl /usr/local/bin/
# Without a config the defaults keep their data under ./data, writable by
# the nonroot user here; the Pebble StatefulSet mounts its volume at /data
# and sets STATE_PATH=/data/pebble.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
USER 65532:65532
# The HTTP listener; the embedded NATS server (no [nats] url) listens on
# loopback only, so point the worker at your NATS with NATS_URL.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/incidentd"]
