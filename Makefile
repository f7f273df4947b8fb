# Two commands on a fresh machine: `make run` serves the demo, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
HOST ?= 127.0.0.1:8000
PYTEST_ARGS ?=

.PHONY: install run test lint typecheck format check dist clean distclean browser-vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(PIP) install -r requirements.txt
	@touch $@

install: $(STAMP)

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_seed
	$(BIN)/python manage.py runserver $(HOST)

# Segment's analytics.js for the browser tests, from npm as package-lock.json pins it.
BROWSER_VENDOR := tests/browser/vendor
$(BROWSER_VENDOR)/node_modules/.package-lock.json: $(BROWSER_VENDOR)/package.json $(BROWSER_VENDOR)/package-lock.json
	npm ci --prefix $(BROWSER_VENDOR) --ignore-scripts --no-audit --no-fund

browser-vendor: $(BROWSER_VENDOR)/node_modules/.package-lock.json

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run configcat_segment

typecheck: install
	$(BIN)/mypy configcat_segment

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: lint typecheck test

# The sdist and wheel in dist/, built from a clean tree (a stale build/ or *.egg-info can
# leak removed files into them) with the pinned setuptools, then checked: twine's rendering
# of the README and metadata, and scripts/check_dist.py for what the archives hold.
dist: install
	rm -rf build dist *.egg-info
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/python scripts/check_dist.py dist
	rm -rf *.egg-info

# Build artefacts and tool caches; `distclean` removes the virtualenvs too.
clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis test-output
	find . -path ./.venv -prune -o -path './.venv-*' -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .venv-* $(BROWSER_VENDOR)/node_modules
