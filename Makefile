# sluice: `make help` lists the targets.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
IMAGE_TAG ?= dev
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE ?= $(shell git remote get-url origin 2>/dev/null || echo unknown)

# Kubernetes tools, pinned (scripts/require-tools.sh prints how to install each one). helm is the
# one scripts/get-helm.sh finds or installs (4.1.4) unless HELM is set.
KIND_VERSION ?= v0.33.0
KUBECTL_VERSION ?= v1.36.4
# The node image kind $(KIND_VERSION) publishes for Kubernetes 1.36 (its release notes); where it
# cannot be pulled, `make kind-up` builds one locally (`make kind-node-image`, scripts/kind/).
KIND_NODE_IMAGE ?= kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed
SKAFFOLD_VERSION ?= v2.16.1
KEDA_VERSION ?= 2.20.2
KUBE_PROMETHEUS_STACK_VERSION ?= 88.5.0
KIND_CLUSTER ?= sluice-e2e
KIND_CONFIG ?= k8s-tests/kind/cluster.yaml
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
NAMESPACE ?= sluice
DEPLOY_ARGS ?=
HELM ?=
export KIND_VERSION KUBECTL_VERSION SKAFFOLD_VERSION KIND_NODE_IMAGE
helm_bin = $(or $(HELM),$$(scripts/get-helm.sh))
#: Prometheus and promtool 3.5.3 from Debian sid (scripts/get-prometheus.sh, run by system-deps).
PROMETHEUS_DIR := $(CURDIR)/.tools/prometheus-3.5.3
# Tools the project installs (scripts/get-helm.sh, scripts/get-kind-tools.sh, scripts/get-prometheus.sh)
# come first, for every target: a test that scrapes a real Prometheus runs the tested one wherever it runs.
export PATH := $(CURDIR)/.tools/bin:$(PROMETHEUS_DIR):$(PATH)
# kind runs docker through scripts/kind/docker, which maps --privileged where the host refuses it.
kind = PATH="$(CURDIR)/scripts/kind:$$PATH" kind

##@ General
.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2} /^##@/ {printf "\n\033[1m%s\033[0m\n", substr($$0, 5)}' $(MAKEFILE_LIST)

##@ Development
$(VENV)/.installed: requirements-dev.txt services/*/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e services/common -e services/producer -e services/consumer
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv with the services and test tools

.PHONY: system-deps
system-deps: ## Install and start what the tests need: Docker engine, debootstrap, Prometheus 3.5.3
	scripts/install-system-deps.sh
	scripts/start-docker.sh
	scripts/get-prometheus.sh >/dev/null

.PHONY: demo
demo: venv system-deps ## Run a producer, two consumers and a flaky sink against a local RabbitMQ 4.x (Ctrl-C stops)
	PYTHONPATH=testing $(PY) -m sluice_testing.demo

.PHONY: dlq-example
dlq-example: venv system-deps ## The `sluice dlq` session of docs/dlq.md, against its own RabbitMQ 4.x container
	PYTHONPATH=testing $(PY) -m sluice_testing.dlq_example

.PHONY: test
test: venv system-deps lint ## Lint; unit, integration (real RabbitMQ 4.3.6), image, chart, observability (real Prometheus), poison-corpus and security tests; one chaos round per fault; local end-to-end scenarios; a small bench
	$(PY) -m pytest -p no:cacheprovider services charts/sluice/tests tests k8s-tests bench/tests

#: The suites that talk to the broker itself, rerun on each other tested RabbitMQ version.
BROKER_SUITES = services/common/tests/integration services/producer/tests/integration \
  services/consumer/tests/integration tests/poison tests/chaos charts/sluice/tests/test_rendered_rabbitmq.py \
  k8s-tests/scenarios

.PHONY: test-rabbitmq40
test-rabbitmq40: venv system-deps ## The broker integration, poison, short chaos, rendered-config and local end-to-end tests against RabbitMQ 4.0.5
	SLUICE_RABBITMQ_VERSION=4.0.5 $(PY) -m pytest -p no:cacheprovider $(BROKER_SUITES)

.PHONY: test-rabbitmq3
test-rabbitmq3: venv ## The broker integration and poison tests against Debian's RabbitMQ 3.10 on this host (installs, starts it)
	scripts/get-prometheus.sh >/dev/null
	@env=$$(scripts/rabbitmq3-host.sh) && export $$env && \
	  $(PY) -m pytest -p no:cacheprovider services/common/tests/integration services/producer/tests/integration \
	    services/consumer/tests/integration tests/poison

.PHONY: test-security
test-security: venv system-deps ## Only the hostile-input and security tests: poison corpus, properties, TLS, ingest access, leaks, chart (also in `test`)
	$(PY) -m pytest -p no:cacheprovider tests/poison tests/security services/common/tests/test_decoding_properties.py \
	  services/common/tests/test_config_security.py services/consumer/tests/unit/test_pipeline_properties.py \
	  services/producer/tests/unit charts/sluice/tests/test_security.py

.PHONY: lint
lint: venv ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services/common/src services/producer/src services/consumer/src bench
	MYPYPATH=k8s-tests:testing $(VENV)/bin/mypy -p sluice_e2e

.PHONY: config-docs
config-docs: venv ## Regenerate the configuration table in README.md from sluice_common.config
	$(PY) scripts/config_table.py --write

N ?= 20
.PHONY: soak-broker-kill
soak-broker-kill: venv system-deps ## Every broker-restart and broker-SIGKILL test N (20) runs in a row on RabbitMQ 4.3.6 and 4.0.5; prints the table
	PYTHONPATH=testing $(PY) -m sluice_testing.soak --runs $(N)

CHAOS_ROUNDS ?= 4
.PHONY: chaos
chaos: venv system-deps ## Chaos suite: CHAOS_ROUNDS (4) rounds of each of 6 faults under load; prints the table
	CHAOS_ROUNDS=$(CHAOS_ROUNDS) CHAOS_REPORT=.state/chaos-table.md $(PY) -m pytest -p no:cacheprovider -q tests/chaos/test_chaos.py
	@echo "Table also written to .state/chaos-table.md"

.PHONY: bench
bench: venv system-deps ## sluice next to naive pika, tuned pika, FastStream, Celery; writes docs/bench (BENCH_MESSAGES, BENCH_REPEATS)
	PYTHONPATH=testing $(PY) -m bench --readme

.PHONY: profile
profile: venv system-deps ## py-spy profile of sluice's producer, consumer and HTTP ingest hot paths (needs root or CAP_SYS_PTRACE)
	PYTHONPATH=testing $(PY) -m bench.profile producer
	PYTHONPATH=testing $(PY) -m bench.profile consumer
	PYTHONPATH=testing $(PY) -m bench.profile ingest

##@ Chart and images
.PHONY: images
images: system-deps ## Build sluice/producer and sluice/consumer:$(IMAGE_TAG) on the base from scripts/build-base-image.sh
	@base=$$(scripts/build-base-image.sh | tail -n 1); for svc in producer consumer; do \
	  docker build --force-rm --build-arg BASE_IMAGE=$$base --build-arg VERSION=$(IMAGE_TAG) \
	    --build-arg REVISION=$(REVISION) --build-arg SOURCE=$(SOURCE) \
	    -f services/$$svc/Dockerfile -t sluice/$$svc:$(IMAGE_TAG) services || exit 1; done

.PHONY: chart-lint
chart-lint: ## helm lint --strict charts/sluice
	"$(helm_bin)" lint --strict charts/sluice

.PHONY: chart-docs
chart-docs: venv ## Regenerate the values table in charts/sluice/README.md
	$(PY) charts/sluice/scripts/values_table.py --write

##@ Observability
.PHONY: monitoring-test
monitoring-test: venv system-deps ## promtool checks and unit tests of the alerts, and every dashboard/alert query against a live Prometheus
	$(PY) -m pytest -p no:cacheprovider tests/observability

.PHONY: dashboard-preview
dashboard-preview: venv system-deps ## Render the dashboard's main panels from a local run to docs/img/*.png (PREVIEW_SECONDS=120)
	PYTHONPATH=testing $(PY) -m sluice_testing.dashboard_preview --out docs/img --seconds $${PREVIEW_SECONDS:-120}

##@ Kubernetes: kind, skaffold and the end-to-end suite (docs/e2e.md)
#: Service addresses of the kind cluster (kind's default serviceSubnet). A packet to a ClusterIP that
#: kube-proxy has not programmed yet leaves the node for the host's network; where that network
#: answers every address (an egress proxy answering 404 and keeping the connection alive), a client
#: that keeps the connection, as KEDA's operator does, never reaches the Service. kind-up has the
#: host reject such packets (Docker's DOCKER-USER chain, as root), as an isolated network would.
KIND_SERVICE_SUBNET ?= 10.96.0.0/16
reject_unrouted_services = iptables -w -C DOCKER-USER -d '$(KIND_SERVICE_SUBNET)' -p tcp -j REJECT --reject-with tcp-reset 2>/dev/null || \
  iptables -w -I DOCKER-USER -d '$(KIND_SERVICE_SUBNET)' -p tcp -j REJECT --reject-with tcp-reset 2>/dev/null || \
  echo "kind-up: could not add the host's reject rule for $(KIND_SERVICE_SUBNET) (not root?); see KIND_SERVICE_SUBNET in the Makefile" >&2

.PHONY: kind-up
kind-up: ## Create the kind cluster $(KIND_CLUSTER) from $(KIND_CONFIG) (kept if it exists) on $(KIND_NODE_IMAGE), or on a local node image where that cannot be pulled
	scripts/require-tools.sh docker kind kubectl
	@$(reject_unrouted_services)
	@if $(kind) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then echo "kind cluster $(KIND_CLUSTER) exists"; \
	else image=$$(scripts/kind/node-image.sh | tail -n 1) && \
	  $(kind) create cluster --name '$(KIND_CLUSTER)' --config '$(KIND_CONFIG)' --image "$$image" --wait 300s; fi
	kubectl --context '$(KUBE_CONTEXT)' get nodes

.PHONY: kind-tools
kind-tools: ## Install kind $(KIND_VERSION) and kubectl $(KUBECTL_VERSION) into .tools/bin from Debian's packages (no official download needed)
	scripts/get-kind-tools.sh

.PHONY: kind-node-image
kind-node-image: ## Build a kind node image for $(KIND_NODE_IMAGE)'s Kubernetes from Debian packages and Go modules (no registry; cached by its inputs)
	scripts/kind/build-node-image.sh

.PHONY: kind-load
kind-load: ## Load sluice/{producer,consumer}:$(IMAGE_TAG) (from `make images`) and a :$(IMAGE_TAG)-next copy into kind
	scripts/require-tools.sh docker kind
	@for svc in producer consumer; do \
	  docker image inspect "sluice/$$svc:$(IMAGE_TAG)" >/dev/null 2>&1 || { echo "no image sluice/$$svc:$(IMAGE_TAG); run \`make images\` first" >&2; exit 1; }; \
	  docker tag "sluice/$$svc:$(IMAGE_TAG)" "sluice/$$svc:$(IMAGE_TAG)-next"; \
	  $(kind) load docker-image --name '$(KIND_CLUSTER)' "sluice/$$svc:$(IMAGE_TAG)" "sluice/$$svc:$(IMAGE_TAG)-next"; \
	done

.PHONY: deploy
deploy: ## helm upgrade --install --wait the chart into $(NAMESPACE) on $(KUBE_CONTEXT), images :$(IMAGE_TAG) (DEPLOY_ARGS: more helm flags)
	scripts/require-tools.sh kubectl
	"$(helm_bin)" upgrade --install sluice charts/sluice --kube-context '$(KUBE_CONTEXT)' \
	  --namespace '$(NAMESPACE)' --create-namespace --wait --timeout 10m \
	  --set producer.image.tag='$(IMAGE_TAG)' --set consumer.image.tag='$(IMAGE_TAG)' $(DEPLOY_ARGS)

.PHONY: keda
keda: ## Install KEDA $(KEDA_VERSION) (queue-length autoscaling) into namespace keda
	"$(helm_bin)" upgrade --install keda keda --repo https://kedacore.github.io/charts --version '$(KEDA_VERSION)' \
	  --kube-context '$(KUBE_CONTEXT)' --namespace keda --create-namespace --wait --timeout 10m

.PHONY: kind-keda
kind-keda: ## Build KEDA (scripts/kind-addons/versions.env) from its Go module and install it in $(KIND_CLUSTER), no registry needed; `make keda` installs upstream's chart instead
	scripts/require-tools.sh docker kind kubectl
	KIND_CLUSTER='$(KIND_CLUSTER)' scripts/kind-addons/keda.sh

.PHONY: kind-prometheus
kind-prometheus: ## Build prometheus-operator (scripts/kind-addons/versions.env) from its Go module and run a Prometheus (Debian's package) in $(KIND_CLUSTER) that selects the chart's ServiceMonitors
	scripts/require-tools.sh docker kind kubectl
	KIND_CLUSTER='$(KIND_CLUSTER)' scripts/kind-addons/prometheus-operator.sh

.PHONY: metrics-server
metrics-server: ## Build metrics-server (scripts/kind-addons/versions.env) from its Go module and install it in $(KIND_CLUSTER): the CPU HPA's resource metrics
	scripts/require-tools.sh docker kind kubectl
	KIND_CLUSTER='$(KIND_CLUSTER)' scripts/kind-addons/metrics-server.sh

.PHONY: monitoring
monitoring: keda ## Install kube-prometheus-stack $(KUBE_PROMETHEUS_STACK_VERSION) (Prometheus, Grafana) and KEDA
	"$(helm_bin)" upgrade --install kube-prometheus-stack kube-prometheus-stack \
	  --repo https://prometheus-community.github.io/helm-charts --version '$(KUBE_PROMETHEUS_STACK_VERSION)' \
	  --kube-context '$(KUBE_CONTEXT)' --namespace monitoring --create-namespace --wait --timeout 15m \
	  --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
	  --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
	  --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
	  --set grafana.sidecar.dashboards.searchNamespace=ALL

.PHONY: e2e
e2e: venv ## Run k8s-tests on the kind cluster (after kind-up, images, kind-load; `make keda` for autoscaling)
	scripts/require-tools.sh kubectl
	@kubectl config get-contexts '$(KUBE_CONTEXT)' >/dev/null 2>&1 || { echo "no kube context $(KUBE_CONTEXT): run \`make kind-up\` first" >&2; exit 1; }
	SLUICE_E2E=kind KIND_CLUSTER='$(KIND_CLUSTER)' IMAGE_TAG='$(IMAGE_TAG)' HELM="$(helm_bin)" SLUICE_E2E_BROKER_IMAGE='$(SLUICE_E2E_BROKER_IMAGE)' \
	  SKAFFOLD='$(SKAFFOLD)' SKAFFOLD_HELM="$(skaffold_helm)" SLUICE_BASE_IMAGE="$${SLUICE_BASE_IMAGE:-$$(scripts/build-base-image.sh | tail -n 1)}" \
	  $(PY) -m pytest -p no:cacheprovider -v --durations=0 --durations-min=1 k8s-tests/scenarios

.PHONY: chaos-kind
chaos-kind: venv ## CHAOS_ROUNDS (4) rounds of each of 6 faults on the chart in kind, the faults striking pods (after kind-up, images, kind-load; `make e2e` runs 1 per fault); prints the table
	scripts/require-tools.sh kubectl docker
	@kubectl config get-contexts '$(KUBE_CONTEXT)' >/dev/null 2>&1 || { echo "no kube context $(KUBE_CONTEXT): run \`make kind-up\` first" >&2; exit 1; }
	mkdir -p .state
	SLUICE_E2E=kind KIND_CLUSTER='$(KIND_CLUSTER)' IMAGE_TAG='$(IMAGE_TAG)' HELM="$(helm_bin)" SLUICE_E2E_BROKER_IMAGE='$(SLUICE_E2E_BROKER_IMAGE)' \
	  CHAOS_ROUNDS=$(CHAOS_ROUNDS) CHAOS_REPORT=.state/chaos-kind-table.md $(PY) -m pytest -p no:cacheprovider -v k8s-tests/scenarios/test_e2e_chaos.py
	@echo "Table also written to .state/chaos-kind-table.md"

.PHONY: kind-e2e
kind-e2e: venv system-deps kind-tools images ## All of the above with no registry: kind-up (node image built if needed), kind-load, metrics-server, prometheus-operator (KIND_PROMETHEUS=0 leaves it out), KEDA and skaffold if built (KIND_KEDA=1, KIND_SKAFFOLD=1 build them, 0 leaves them out), the RabbitMQ test image loaded, e2e; then kind-down, also after a failure (KIND_KEEP=1 keeps the cluster). Prints each step's time
	@if [ "$${KIND_KEEP:-0}" != 1 ]; then trap '$(MAKE) --no-print-directory kind-down' EXIT; fi; \
	timed() { local start=$$SECONDS; "$$@"; echo "kind-e2e: $$((SECONDS - start)) s for: $$*" | cut -c1-160; }; \
	timed $(MAKE) --no-print-directory kind-up; \
	timed $(MAKE) --no-print-directory kind-load; \
	timed $(MAKE) --no-print-directory metrics-server; \
	for addon in keda:$${KIND_KEDA:-auto} prometheus-operator:$${KIND_PROMETHEUS:-1}; do \
	  case "$${addon#*:}" in 1) flag=;; auto) flag=--if-built;; *) continue;; esac; \
	  timed env KIND_CLUSTER='$(KIND_CLUSTER)' "scripts/kind-addons/$${addon%%:*}.sh" $$flag; \
	done; \
	case "$${KIND_SKAFFOLD:-auto}" in 1) timed $(MAKE) --no-print-directory skaffold-tool;; esac; \
	case "$${KIND_SKAFFOLD:-auto}" in 0) skaffold=;; *) skaffold=$$(scripts/get-skaffold.sh --if-built | tail -n 1);; esac; \
	broker=$$(scripts/rabbitmq.sh image | tail -n 1); \
	timed env $(kind) load docker-image --name '$(KIND_CLUSTER)' "$$broker"; \
	timed $(MAKE) --no-print-directory e2e SLUICE_E2E_BROKER_IMAGE="$$broker" SKAFFOLD="$$skaffold"

.PHONY: kind-down
kind-down: ## Delete the kind cluster $(KIND_CLUSTER)
	scripts/require-tools.sh kind
	$(kind) delete cluster --name '$(KIND_CLUSTER)'

#: What skaffold runs with: Helm 3 (skaffold $(SKAFFOLD_VERSION) cannot drive Helm 4; 2.17 can) and
#: scripts/kind (its docker wrapper, for `kind load`) first on PATH, and a Python base image that
#: exists here (scripts/build-base-image.sh). SLUICE_BROKER_IMAGE (repository:tag, e.g. the output of
#: `scripts/rabbitmq.sh image`) is loaded into kind and run as the broker (skaffold.yaml's local-broker
#: profile), where the official image cannot be pulled.
SLUICE_BROKER_IMAGE ?=
export SLUICE_BROKER_IMAGE
#: The skaffold the e2e suite runs; empty: none here, and the skaffold scenarios skip, saying so.
SKAFFOLD ?= skaffold
skaffold_helm = $$(HELM_MAJOR=3 scripts/get-helm.sh)
skaffold_env = PATH="$$(dirname "$(skaffold_helm)"):$(CURDIR)/scripts/kind:$$PATH" \
  SLUICE_BASE_IMAGE="$${SLUICE_BASE_IMAGE:-$$(scripts/build-base-image.sh | tail -n 1)}"
load_broker_image = if [ -n "$$SLUICE_BROKER_IMAGE" ]; then $(kind) load docker-image --name '$(KIND_CLUSTER)' "$$SLUICE_BROKER_IMAGE"; fi

.PHONY: skaffold-tool
skaffold-tool: ## Build skaffold $(SKAFFOLD_VERSION) from its Go module into .tools/bin (kept while its version matches)
	scripts/get-skaffold.sh >/dev/null

.PHONY: dev
dev: ## skaffold dev on $(KUBE_CONTEXT): build, deploy, sync edited .py files, port-forward (Ctrl-C removes it; its `kind load` goes through scripts/kind/docker)
	scripts/require-tools.sh docker skaffold kubectl
	$(load_broker_image)
	$(skaffold_env) skaffold dev --kube-context '$(KUBE_CONTEXT)' --port-forward
