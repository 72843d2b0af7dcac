# Convenience targets; the scripts are the source of truth (see README.md).
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup run test lint bench clean

setup:  ## install system and Python packages (idempotent)
	bash scripts/setup.sh test

run:  ## run the app on http://127.0.0.1:$${PORT:-8000}/ with a worker and local Redis
	bash scripts/run.sh

test:  ## private PostgreSQL + Redis, ruff, pytest (extra args: make test ARGS="-k foo")
	bash scripts/test.sh $(ARGS)

lint:  ## ruff lint and format check
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

bench:  ## benchmarks
	bash scripts/bench.sh

clean:  ## remove test/build leftovers (keeps .venv and the development data in .data)
	rm -rf artifacts .pytest_cache .ruff_cache .hypothesis .data/test .data/test-* build staticfiles
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
