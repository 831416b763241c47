# Task running for ordermill. Every target builds .venv itself when needed.
.PHONY: run test lint bench clean

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

bench:  ## throughput, latency and CPU per order; prints figures and ratios to baselines
	@scripts/bootstrap.sh
	.venv/bin/python bench/run.py

clean:
	rm -rf .venv .ordermill .pytest_cache .mypy_cache .ruff_cache
