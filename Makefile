# edgefm: `make run` sets up and runs the main job on the built-in synthetic cohort;
# `make test` sets up and runs the test suite. Both work on a fresh machine with Python 3.11.

PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgefm-installed
RUN ?= runs/default

.PHONY: setup run quick real test demo-setup browser-deps bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# The demo app's npm packages (onnxruntime-web, playwright-core), from the npm registry.
demo-setup:
	@if [ -f demo/package.json ] && command -v npm >/dev/null 2>&1; then \
	  cd demo && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "demo: npm or demo/package.json not found; the demo and its browser test are skipped"; fi

# Debian's Chromium for the end-to-end browser test (needs root; skipped otherwise).
browser-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium openssl >/dev/null) \
	  || echo "browser-deps: could not install chromium; the browser test will be skipped"; \
	else echo "browser-deps: chromium not found and not root; the browser test will be skipped"; fi

setup: $(STAMP) demo-setup

BUDGET ?= edgefm/pipeline/budgets/wristband.toml

# data -> teacher -> distil -> prune -> quantize -> export -> gate -> simulate -> profile
# (against BUDGET; exit 1 if it fails) -> report, then the phone demo built from the run.
run: setup
	$(BIN)/edgefm pipeline run --out $(RUN) --budget $(BUDGET)
	@if [ -d demo/node_modules ]; then $(BIN)/edgefm demo build $(RUN) --out $(RUN)/demo --overwrite; fi
	@echo "report: $(RUN)/report/report.html   demo: $(BIN)/edgefm demo serve $(RUN)/demo --https"

quick: setup
	$(BIN)/edgefm pipeline run --quick --out runs/quick

# The whole path on a real imported set (../shared/data/troika: wrist PPG + ACC, ECG heart rate),
# its held-out subjects scored: runs/troika/report/report.html
SHARED ?= ../shared/data
real: setup
	$(BIN)/edgefm data import troika $(SHARED)/troika --out runs/troika-data --overwrite
	$(BIN)/edgefm pipeline run --data runs/troika-data --out runs/troika

test: setup browser-deps
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
