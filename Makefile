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

.PHONY: setup test test-rebuilt audit bench clean

setup: $(STAMP)

# pip prints what it installs (a first setup takes minutes; a silent one looks stuck), without progress bars.
PIP := $(PYTHON) -m pip install --progress-bar off --disable-pip-version-check
$(STAMP): pyproject.toml
	@if [ -z "$$VIRTUAL_ENV" ] && [ ! -x .venv/bin/python ]; then echo "setup: creating .venv"; python3 -m venv .venv; fi
	@echo "setup: installing torch==2.13.0 (the CPU wheel) first, then auditlens and its dev extras"
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	@touch $(STAMP)
	@echo "setup: done ($(PYTHON))"

# Two pytest-xdist workers, one per core of the 2-core machines this runs on: the suite takes ~6 minutes
# instead of ~9 (TEST_WORKERS=0 runs it in one process).
TEST_WORKERS ?= 2
test: setup
	$(PYTHON) -m pytest tests -n $(TEST_WORKERS)

# The tests again on organisms rebuilt from their recipes on other kernels than the shipped builds'
# (ATEN_CPU_CAPABILITY=default: torch's portable ones; avx2, avx512 where the CPU has them): a test
# that passes on one build and fails on another was tuned to one build. Trains 18 organisms first.
CAPABILITY ?= default
test-rebuilt: setup
	ATEN_CPU_CAPABILITY=$(CAPABILITY) AUDITLENS_ZOO_SOURCE=rebuild $(PYTHON) -m pytest tests -n $(TEST_WORKERS)

# Exit 1 (some audits failed) is a finding, not a broken run: the cheated twins are meant to fail.
# Any other status fails the command: interrupted (2), usage error (4), report not written (7).
# Two workers as for the tests, each model's audits on one of them (AUDIT_WORKERS=0: one process); a line
# per model says when its audits are done.
AUDIT_WORKERS ?= 2
audit: setup
	@$(PYTHON) -m pytest audits -n $(AUDIT_WORKERS) --audit-report $(REPORT); status=$$?; \
	if [ $$status -le 1 ]; then echo "audit results written to $(REPORT)/"; fi; \
	if [ $$status -eq 1 ]; then echo "some audits failed: see the failures above, $(REPORT)/summary.md and $(REPORT)/report.html"; fi; \
	if [ $$status -gt 1 ]; then echo "the audit run did not complete (exit status $$status): see above"; exit $$status; fi

bench: setup
	$(PYTHON) bench/capture.py

clean:
	rm -rf .venv build *.egg-info .pytest_cache .hypothesis
