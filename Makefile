# One task runner for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
export PYTHONUNBUFFERED := 1
UI_PORT ?= 3000
MLFLOW_UI_PORT ?= 5000
DBT_DOCS_PORT ?= 8080
FEAST_UI_PORT ?= 8888

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: ## create .venv from uv.lock (installs uv first if missing)
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen

demo: install ## the whole job on the embedded profile, ending with the API running (DEMO_ARGS=--no-serve to skip it)
	$(RUN) photo-platform demo $(DEMO_ARGS)

serve: install ## the API on the current profile's data
	$(RUN) photo-platform serve

notebooks: install ## execute every notebook top to bottom against the current profile's data
	$(RUN) jupyter execute notebooks/*.ipynb

test: install services-ensure ## the whole test suite; starts the services it needs first (a no-op when they run)
	REQUIRE_SERVICES=1 $(RUN) pytest $(PYTEST_ARGS)

lint: install ## ruff and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy .

format: install ## apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

ui: install ## the Dagster UI (webserver + daemon) on http://127.0.0.1:3000; Ctrl-C/SIGTERM stops all of it
	$(RUN) photo-platform ui --port $(UI_PORT)

mlflow-ui: install ## the MLflow UI (runs, registered models, champion aliases) on http://127.0.0.1:5000
	$(RUN) photo-platform mlflow-ui --port $(MLFLOW_UI_PORT)

dbt-docs: install ## generate the dbt docs (models, columns, lineage) and serve them on http://127.0.0.1:8080
	$(RUN) photo-platform dbt-docs --port $(DBT_DOCS_PORT)

feast-ui: install ## the Feast UI (feature views, services, entities) on http://127.0.0.1:8888
	$(RUN) photo-platform feast-ui --port $(FEAST_UI_PORT)

services-up: install ## install and start Kafka, MinIO, Redis, PostgreSQL, Cassandra and OpenSearch on loopback
	$(RUN) photo-platform services up

services-ensure: ## start the services unless all of them already run (what `make test` needs)
	@bash scripts/services/all.sh status >/dev/null 2>&1 && echo "services: already running" || $(MAKE) --no-print-directory services-up

services-down: install ## stop the services
	$(RUN) photo-platform services down

services-status: install ## which services run, and where
	$(RUN) photo-platform services status

services-smoke: ## a real round trip through each running service with its own client
	bash scripts/services/smoke.sh

fanout-consumer: install ## the streaming fan-out (Kafka -> feed store), long-running; needs KAFKA_BOOTSTRAP_SERVERS
	$(RUN) python -m fanout.consumer

bench: install ## the embedded benchmarks (figures go to docs/benchmarks.md by hand); `photo-platform bench --help`
	$(RUN) photo-platform bench $(BENCH_ARGS)

bench-serving: install ## the serving API under wrk beside its baselines (BENCH_SERVING_ARGS="--baseline-code DIR --skip ...")
	$(RUN) python -m bench.serving_load --data-dir $(or $(BENCH_SERVING_DIR),/tmp/serving-load) $(BENCH_SERVING_ARGS)

import-movielens: install ## MovieLens 100K into the landing zone (MOVIELENS_ARGS="--from DIR|ZIP" or "--download")
	$(RUN) photo-platform import movielens $(MOVIELENS_ARGS)

clean: ## remove the embedded profile's data
	rm -rf .data

.PHONY: help install demo serve notebooks test lint format ui mlflow-ui dbt-docs feast-ui services-up services-ensure services-down services-status services-smoke fanout-consumer bench bench-serving import-movielens clean
