# One task runner for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
export PYTHONUNBUFFERED := 1

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: ## create .venv from uv.lock (installs uv first if missing)
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen

demo: install ## the whole job on the embedded profile, ending with the API running (DEMO_ARGS=--no-serve to skip it)
	$(RUN) photo-platform demo $(DEMO_ARGS)

serve: install ## the API (python -m serving) on the current profile's data
	$(RUN) python -m serving

notebooks: install ## execute every notebook top to bottom against the current profile's data
	$(RUN) jupyter execute notebooks/*.ipynb

test: install ## the test suite (services tests need `make services-up`; CI=true makes them mandatory)
	$(RUN) pytest

lint: install ## ruff and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy .

format: install ## apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

ui: install ## the Dagster UI (webserver + daemon) on http://127.0.0.1:3000
	$(RUN) python -m orchestration.ui

services-up: install ## install and start Kafka, MinIO, Redis, PostgreSQL and Cassandra on loopback
	bash scripts/services/all.sh up

services-down: ## stop the services
	bash scripts/services/all.sh down

services-status: ## which services run, and where
	bash scripts/services/all.sh status

services-smoke: ## a real round trip through each running service with its own client
	bash scripts/services/smoke.sh

feeds-consumer: install ## the streaming fan-out (Kafka -> feed store), long-running; needs KAFKA_BOOTSTRAP_SERVERS
	$(RUN) python -m feeds.consumer

bench: install ## benchmarks (figures go to docs/benchmarks.md by hand)
	$(RUN) python -m bench.ingest
	$(RUN) python -m bench.generator
	$(RUN) python -m bench.dbt_build --events 1000000
	$(RUN) python -m bench.media_renditions
	$(RUN) python -m bench.ranker_training
	$(RUN) python -m bench.als
	@echo "services benchmarks (make services-up first): python -m bench.kafka_ingest, python -m bench.online_features, python -m bench.fanout, python -m bench.cassandra_feed"

bench-serving: install ## the API under wrk beside mlflow serve and a trivial endpoint (needs apt-get install wrk)
	$(RUN) python -m bench.serving_load --data-dir .data/bench-serving

import-movielens: install ## MovieLens 100K (../shared/datasets) into the landing zone as platform events
	$(RUN) python -m importers movielens

clean: ## remove the embedded profile's data
	rm -rf .data

.PHONY: help install demo serve notebooks test lint format ui services-up services-down services-status services-smoke feeds-consumer bench bench-serving import-movielens clean
