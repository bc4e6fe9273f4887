# The project's commands. `make test` is what CI runs (.ci/run); `make demo` is the front door.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: the venv is rebuilt only when requirements change.
STAMP := $(VENV)/.requirements-installed

TEST_DB ?= gateway_test
PYTEST_ARGS ?=

# The demo runs on embedded defaults (SQLite under var/, in-process state) unless overridden.
DEMO_DATABASE_URL ?= sqlite:///$(CURDIR)/var/demo.sqlite3
DEMO_JWT_SECRET ?= demo-jwt-secret-not-for-production
DEMO_SECRET_KEY ?= demo-django-secret-key-not-for-production
DEMO_PORT ?= 8000
DEMO_USER ?= 42
SIMULATOR_ARGS ?=

.PHONY: help test-deps venv services test lint demo bench bench-floor test-hosts soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv with requirements/dev.txt (re-installs only when requirements change)

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	touch $@

test-deps: ## install the system packages the tests need, when missing (apt-get; sudo when not root)
	scripts/test-deps.sh

services: ## start PostgreSQL and Redis if they are down; create the test database
	scripts/services.sh $(TEST_DB)

test: export DATABASE_URL = postgres://postgres@127.0.0.1:5432/$(TEST_DB)
test: export REDIS_URL = redis://127.0.0.1:6379/0
test: export DJANGO_SECRET_KEY = test-secret
# test-deps first: a fresh machine may lack python3-venv (for venv) and the servers (for services).
test: test-deps venv services ## system packages, ruff, mypy, then the whole suite against the real PostgreSQL and Redis
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	@# pytest's exit code 5 means "no tests collected": a broken suite, never a pass.
	@set +e; $(BIN)/pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing" >&2; exit 1; fi; \
	exit $$rc

lint: venv ## ruff check, ruff format --check, mypy, import-linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

demo: export DATABASE_URL = $(DEMO_DATABASE_URL)
demo: export GATEWAY_JWT_SECRET = $(DEMO_JWT_SECRET)
demo: export DJANGO_SECRET_KEY = $(DEMO_SECRET_KEY)
demo: export ALLOWED_HOSTS = *
demo: export PORT = $(DEMO_PORT)
demo: venv ## the Checkout BFF on :8000 with the simulated services; Ctrl-C stops both
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py gateway import examples/checkout.yaml
	$(BIN)/python scripts/demo.py admin
	$(BIN)/python scripts/demo.py token --user $(DEMO_USER) --config examples/checkout.yaml
	$(BIN)/python scripts/demo.py serve --port $(DEMO_PORT) -- $(SIMULATOR_ARGS)

bench: venv ## the benchmarks (bench/run.py)
	$(BIN)/python bench/run.py

bench-floor: venv ## CPU per request layer by layer: empty gunicorn, Django, the checkout; aiohttp (bench/floor.py)
	$(BIN)/python bench/floor.py

# Need root and `ip netns` (the tests make their own network namespaces): not in `make test`.
test-hosts: export DATABASE_URL = postgres://postgres@127.0.0.1:5432/$(TEST_DB)
test-hosts: export REDIS_URL = redis://127.0.0.1:6379/0
test-hosts: export DJANGO_SECRET_KEY = test-secret
test-hosts: export GATEWAY_TEST_HOSTS = 1
test-hosts: test-deps venv services ## (root) two gateway hosts in network namespaces behind HAProxy share state
	$(BIN)/pytest -q tests/hosts/test_many_hosts.py $(PYTEST_ARGS)

SOAK_S ?= 600
soak: export DATABASE_URL = postgres://postgres@127.0.0.1:5432/$(TEST_DB)
soak: export REDIS_URL = redis://127.0.0.1:6379/0
soak: export DJANGO_SECRET_KEY = test-secret
soak: export GATEWAY_TEST_HOSTS = 1
soak: export GATEWAY_SOAK_S = $(SOAK_S)
soak: test-deps venv services ## (root) $(SOAK_S) s of mixed load on two hosts, a service failing and recovering; report in test-artifacts/
	$(BIN)/pytest -q -s tests/hosts/test_soak.py $(PYTEST_ARGS)
