# sluice: `make help` lists the targets.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
IMAGE_TAG ?= dev
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE ?= $(shell git remote get-url origin 2>/dev/null || echo unknown)

##@ General
.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2} /^##@/ {printf "\n\033[1m%s\033[0m\n", substr($$0, 5)}' $(MAKEFILE_LIST)

##@ Development
$(VENV)/.installed: requirements-dev.txt services/*/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e services/common -e services/producer -e services/consumer
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv with the services and test tools

.PHONY: system-deps
system-deps: ## Install and start what the tests need: Docker engine, debootstrap, Prometheus
	scripts/install-system-deps.sh
	scripts/start-docker.sh

.PHONY: demo
demo: venv system-deps ## Run a producer, two consumers and a flaky sink against a local RabbitMQ 4.x (Ctrl-C stops)
	PYTHONPATH=testing $(PY) -m sluice_testing.demo

.PHONY: test
test: venv system-deps ## Unit, integration (real RabbitMQ 4.x), image and chart tests
	$(PY) -m pytest -p no:cacheprovider services charts/sluice/tests bench/tests

.PHONY: lint
lint: venv ## ruff and mypy
	$(VENV)/bin/ruff check services testing charts bench
	$(VENV)/bin/mypy services/common/src services/producer/src services/consumer/src bench

.PHONY: bench
bench: venv system-deps ## sluice next to naive pika, tuned pika, FastStream, Celery; writes docs/bench (BENCH_MESSAGES, BENCH_REPEATS)
	PYTHONPATH=testing $(PY) -m bench --readme

.PHONY: profile
profile: venv system-deps ## py-spy profile of sluice's producer and consumer hot paths (needs root or CAP_SYS_PTRACE)
	PYTHONPATH=testing $(PY) -m bench.profile producer
	PYTHONPATH=testing $(PY) -m bench.profile consumer

##@ Chart and images
.PHONY: images
images: system-deps ## Build sluice/producer and sluice/consumer:$(IMAGE_TAG) on the base from scripts/build-base-image.sh
	@base=$$(scripts/build-base-image.sh | tail -n 1); for svc in producer consumer; do \
	  docker build --force-rm --build-arg BASE_IMAGE=$$base --build-arg VERSION=$(IMAGE_TAG) \
	    --build-arg REVISION=$(REVISION) --build-arg SOURCE=$(SOURCE) \
	    -f services/$$svc/Dockerfile -t sluice/$$svc:$(IMAGE_TAG) services || exit 1; done

.PHONY: chart-lint
chart-lint: ## helm lint --strict charts/sluice
	"$$(scripts/get-helm.sh)" lint --strict charts/sluice

.PHONY: chart-docs
chart-docs: venv ## Regenerate the values table in charts/sluice/README.md
	$(PY) charts/sluice/scripts/values_table.py --write
