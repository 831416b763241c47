# Task running for ordermill. Every target builds .venv itself when needed.
.PHONY: run test lint bench soak clean

run:  ## the service with its UI and a demo flow, on the embedded SQLite default
	@scripts/bootstrap.sh
	.venv/bin/ordermill serve --demo

test:  ## the whole test suite (lint, types, unit, integration, acceptance, browser)
	@scripts/test.sh

lint:
	@scripts/bootstrap.sh
	.venv/bin/ruff check src tests bench examples
	.venv/bin/ruff format --check src tests bench examples
	.venv/bin/mypy

soak:  ## the chaos soak on PostgreSQL for 15 minutes (ORDERMILL_SOAK_SECONDS, ORDERMILL_SOAK_SEED)
	@scripts/bootstrap.sh
	ORDERMILL_SOAK_SECONDS=$${ORDERMILL_SOAK_SECONDS:-900} CI=true \
		.venv/bin/pytest -m soak -s tests/acceptance/test_soak.py

bench:  ## throughput, latency and CPU per order; prints figures and ratios to baselines (PEERS=1: and to DBOS Transact, procrastinate)
	@scripts/bootstrap.sh
	.venv/bin/python bench/run.py $(if $(filter-out 0,$(PEERS)),--peers)

clean:
	rm -rf .venv .ordermill .pytest_cache .mypy_cache .ruff_cache
