# `make audit` and `make test` work on a fresh machine: they create .venv (unless a virtual
# environment is active), install the CPU torch pin first, then auditlens with its dev extras.
SHELL := /bin/bash
ifdef VIRTUAL_ENV
PYTHON := $(VIRTUAL_ENV)/bin/python
else
PYTHON := .venv/bin/python
endif
STAMP := $(dir $(PYTHON)).auditlens-installed
REPORT ?= reports
export HF_HUB_OFFLINE ?= 1

.PHONY: setup test audit bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$$VIRTUAL_ENV" ] && [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PYTHON) -m pytest tests

# Exit 1 (some audits failed) is a finding, not a broken run: the cheated twins are meant to fail.
# Any other status fails the command: interrupted (2), usage error (4), report not written (7).
audit: setup
	@$(PYTHON) -m pytest audits --audit-report $(REPORT); status=$$?; \
	if [ $$status -le 1 ]; then echo "audit results written to $(REPORT)/"; fi; \
	if [ $$status -eq 1 ]; then echo "some audits failed: see the failures above, $(REPORT)/summary.md and $(REPORT)/report.html"; fi; \
	if [ $$status -gt 1 ]; then echo "the audit run did not complete (exit status $$status): see above"; exit $$status; fi

bench: setup
	$(PYTHON) bench/capture.py

clean:
	rm -rf .venv build *.egg-info .pytest_cache .hypothesis
