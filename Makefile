# elastic-jupyter: run `make help` for the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Tools are built from their Go modules into a cache outside the clone (hack/tools.sh).
export ELASTIC_JUPYTER_CACHE ?= $(HOME)/.cache/elastic-jupyter
TOOLS_BIN := $(ELASTIC_JUPYTER_CACHE)/bin
export PATH := $(TOOLS_BIN):$(PATH)
export CGO_ENABLED ?= 0
export GOFLAGS ?= -buildvcs=false

VERSION ?= dev
LDFLAGS := -s -w -X github.com/elastic-jupyter/elastic-jupyter/internal/version.Version=$(VERSION)
GO_TEST_FLAGS ?= -timeout 40m
# Iterations per benchmark in `make bench` (the burst benchmark starts that many kernels at
# once, the start benchmark starts one kernel that many times); `make test` runs each
# benchmark a few times only, so that none rots.
BENCHTIME ?= 200x
# Idle kernels in `make bench`'s gateway memory table (the issue's goal is set at 1000).
# `make bench` runs one package at a time (-p 1): benchmarks of two packages at once would
# time each other.
IDLE_KERNELS ?= 1000

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/elastic-jupyter, bin/kernel-launcher, bin/fake-kernel and bin/devnode (static; the fake kernel and devnode are for development).
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/elastic-jupyter ./cmd/elastic-jupyter
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/kernel-launcher ./cmd/kernel-launcher
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/fake-kernel ./cmd/fake-kernel
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/devnode ./cmd/devnode

# `make up` settings: the state directory, the ports on 127.0.0.1, the fake GPUs, and each
# node's cpu (cores) and pod capacity (0: the host's CPU count; 110 pods).
DEV_DIR ?= .dev
API_PORT ?= 6443
ETCD_PORT ?= 2379
WEBHOOK_PORT ?= 9443
METRICS_PORT ?= 8080
HEALTH_PORT ?= 8081
GPUS ?= 2
CPUS ?= 0
PODS ?= 0
UP_FLAGS = -dir=$(DEV_DIR) -tools-bin=$(TOOLS_BIN) -root=. -bin=bin -api-port=$(API_PORT) \
	-etcd-port=$(ETCD_PORT) -webhook-port=$(WEBHOOK_PORT) -metrics-port=$(METRICS_PORT) \
	-health-port=$(HEALTH_PORT) -gpus=$(GPUS) -cpus=$(CPUS) -pods=$(PODS)

.PHONY: up
up: deps tools build rootfs ## Run the whole system here (GPUS=2, node capacity CPUS=64 PODS=250, ports API_PORT=6443 ...); see .dev/env.
	go run ./hack/devcluster up $(UP_FLAGS)

.PHONY: down
down: ## Stop everything `make up` started (and nothing else).
	go run ./hack/devcluster down -dir=$(DEV_DIR)

.PHONY: tools
tools: ## Build the test tools (etcd, kube-*, kubectl, helm, controller-gen) into the cache.
	hack/tools.sh

.PHONY: rootfs
rootfs: deps ## Build the JupyterLab 4 root filesystem (Debian trixie) devnode runs the stock Jupyter image from, once, into the cache.
	hack/rootfs.sh

.PHONY: deps
deps: ## Install the Debian packages the tests need (ipykernel, Jupyter Server, notebook).
	hack/deps.sh

.PHONY: manifests
manifests: tools-controller-gen ## Generate deepcopy code, the CRDs in crds/ (and the chart's copies) and the controller's RBAC.
	hack/generate.sh

.PHONY: verify
verify: tools-controller-gen ## Fail when a generated file is out of date or edited by hand.
	hack/verify.sh

.PHONY: tools-controller-gen
tools-controller-gen:
	@hack/tools.sh controller-gen

.PHONY: fmt-check
fmt-check: ## Fail when a Go file is not gofmt-formatted.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: test
test: deps tools rootfs ## Install and build what the tests need, then vet, gofmt, verify and go test ./... .
	$(MAKE) --no-print-directory vet fmt-check verify
	go test $(GO_TEST_FLAGS) ./...
	go test -run XXX -bench . -benchtime 3x ./...

.PHONY: bench
bench: deps tools rootfs ## Run the benchmarks and print their tables (execute round trips, admission latency, kernel start and bursts, gateway memory per idle kernel).
	go test $(GO_TEST_FLAGS) -p 1 -run XXX -bench . -skip BenchmarkIdleKernels -benchtime $(BENCHTIME) ./...
	go test $(GO_TEST_FLAGS) -run XXX -bench BenchmarkIdleKernels -benchtime $(IDLE_KERNELS)x ./tests/bench/memory

.PHONY: clean
clean: ## Remove bin/.
	rm -rf bin
