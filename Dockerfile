# The one image of elastic-jupyter: /usr/local/bin/elastic-jupyter (controller, webhook,
# gateway, simulate) and /usr/local/bin/kernel-launcher, static, run as a non-root user on a
# minimal base. Build it with:
#   docker build --build-arg VERSION=v0.1.0 -t ghcr.io/elastic-jupyter/elastic-jupyter:v0.1.0 .

FROM golang:1.26-bookworm AS build
ARG VERSION=dev
WORKDIR /src
# Modules first, so that a change of code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controller/ controller/
COPY gateway/ gateway/
COPY internal/ internal/
COPY jupyter/ jupyter/
COPY launcher/ launcher/
COPY simulate/ simulate/
COPY webhook/ webhook/
# The same build as `make build`: static (no cgo), trimmed paths, the version stamped in.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN go build -trimpath -ldflags "-s -w -X github.com/elastic-jupyter/elastic-jupyter/internal/version.Version=${VERSION}" \
      -o /out/elastic-jupyter ./cmd/elastic-jupyter \
 && go build -trimpath -ldflags "-s -w -X github.com/elastic-jupyter/elastic-jupyter/internal/version.Version=${VERSION}" \
      -o /out/kernel-launcher ./cmd/kernel-launcher

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/elastic-jupyter /out/kernel-launcher /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/elastic-jupyter"]
