# c2c-bench: one command to certify, one to test.
#   make certify [DEVICE=reference] [SMOKE=1]   certify a device against the embedded emulator
#   make test                                   lint + the whole test suite (what CI runs)
#   make report                                 Allure 3 HTML report from reports/allure-results
#   make cloud | make device | make bench | make mutants | make repeat [N=10]
#   make chaos [SCHEDULES=1000 WORKERS=6] | make fuzz [REQUESTS=10000]
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
NODEDIR := .cache/node
DEVICE  ?= reference
SMOKE   ?=
NETWORK ?=
SEED    ?= 1
# make test: whole files per xdist worker, the mutant matrix's file first (tests/conftest.py);
# one worker runs the matrix (itself several certifications at once), three share the rest
# (most tests wait on devices and links: an idle 2-core machine ran the suite at ~1 core)
TEST_PARALLEL ?= -n 4 --dist loadfile --no-loadscope-reorder
export ALLURE_NO_ANALYTICS := true
# Every run starts dozens of Python processes (device, emulator, a pytest per certification):
# with PYTHONDONTWRITEBYTECODE set each one compiles the project and pytest re-rewrites its
# asserts from source: 4x the CPU of a certification. __pycache__ is ignored by git.
unexport PYTHONDONTWRITEBYTECODE

# Python >= 3.12 found on its own: an explicit PYTHON, pyenv's 3.12/3.13, then working python3.1x.
PYTHON ?= $(shell \
  for p in $$(pyenv root 2>/dev/null)/versions/3.12.*/bin/python3 $$(pyenv root 2>/dev/null)/versions/3.13.*/bin/python3 \
           /root/.pyenv/versions/3.12.*/bin/python3 python3.12 python3.13 python3; do \
    if [ -x "$$p" ] || command -v "$$p" >/dev/null 2>&1; then \
      if "$$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then echo "$$p"; break; fi; \
    fi; done)

.PHONY: help venv sysdeps test lint certify report cloud device bench mutants repeat chaos fuzz clean

help:
	@sed -n '2,7p' Makefile | sed 's/^# \{0,1\}//'

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "error: no Python >= 3.12 found (set PYTHON=/path/to/python3.12)"; exit 1; fi
	@echo "bootstrapping $(VENV) with $(PYTHON)"
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install -q --disable-pip-version-check --upgrade pip >$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(VPY) -m pip install -q --disable-pip-version-check -e '.[dev]' >>$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

venv: $(STAMP)

# Debian packages a run needs: chromium (pairing-page browser test), openssh-server (remote rigs'
# test sshd). Installed once, only if missing.
sysdeps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium (headless pairing-page tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	  || echo "warning: chromium could not be installed; browser tests will be reported as errors"; }
	@test -x /usr/sbin/sshd || { \
	  echo "installing Debian openssh-server (remote-rig tests: a throwaway sshd on loopback)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null) \
	  || echo "warning: openssh-server could not be installed; remote-rig tests will be skipped"; }

$(NODEDIR)/node_modules/.bin/allure:
	@mkdir -p $(NODEDIR)
	@cd $(NODEDIR) && { test -f package.json || npm init -y >/dev/null; } && npm install --silent --no-audit --no-fund allure@3 >/dev/null
	@touch $@

lint: $(STAMP)
	@$(VENV)/bin/ruff check harness reference_device tests

test: $(STAMP) sysdeps $(NODEDIR)/node_modules/.bin/allure
	@$(VENV)/bin/ruff check harness reference_device tests
	@$(VENV)/bin/mypy
	@$(VPY) -m pytest tests -q $(TEST_PARALLEL) --durations=25

# the HTML report is written whatever the verdict (a failed certification needs it most,
# not after a usage error); the exit status is the certificate's: 0 CERTIFIED, 1 NOT CERTIFIED,
# 3 INCOMPLETE (partial run, items waiting for a person), 2 usage error
certify: $(STAMP) $(NODEDIR)/node_modules/.bin/allure
	@status=0; $(VENV)/bin/c2c-certify run --device $(DEVICE) $(if $(SMOKE),--smoke) $(if $(NETWORK),--network $(NETWORK)) --seed $(SEED) --reports reports || status=$$?; \
	if [ $$status -ne 2 ]; then $(MAKE) --no-print-directory report || true; fi; exit $$status

report: $(STAMP) $(NODEDIR)/node_modules/.bin/allure
	@$(VENV)/bin/c2c-certify report --reports reports --allure $(NODEDIR)/node_modules/.bin/allure

cloud: $(STAMP)
	@$(VENV)/bin/c2c-cloud serve --data-dir .cache/cloud

device: $(STAMP)
	@$(VENV)/bin/c2c-device run $(if $(CONFIG),--config $(CONFIG))

bench: $(STAMP)
	@mkdir -p reports/bench
	@$(VPY) -m harness.benchmarks all --out reports/bench

# every mutant x every item: MUTANT_WORKERS mutants at a time, and up to MUTANT_MAX_WORKERS while
# the machine's CPU has room (a certification mostly waits on its devices and links: three runs of
# 7 shards left 29 % of two cores idle), each run sharded over MUTANT_SHARDS devices;
# RESUME=1 keeps the ok rows of a reports/mutants.json that judged this same commit
SHARDS ?= 1
MUTANT_WORKERS ?= 3
MUTANT_MAX_WORKERS ?= 5
MUTANT_SHARDS ?= 7
RESUME ?=
mutants: $(STAMP)
	@$(VENV)/bin/c2c-certify mutants --full --workers $(MUTANT_WORKERS) --max-workers $(MUTANT_MAX_WORKERS) --shards $(MUTANT_SHARDS) $(if $(RESUME),--resume) --out reports/mutants.json

# flakes: certify N times, per item how often the verdict differed (reports/repeat, reports/bench/certify.json)
N ?= 10
repeat: $(STAMP)
	@$(VENV)/bin/c2c-certify repeat $(N) --device $(DEVICE) --seed $(SEED) --workers $(SHARDS) --reports reports/repeat

# Jepsen-style campaign: random replayable fault schedules, a checker over the whole history,
# failures shrunk and written out (reports/chaos: summary JSON, HTML, failing schedules)
SCHEDULES ?= 1000
WORKERS ?= 6
DURATION ?= 3
RETRY_INCONCLUSIVE ?= 1
chaos: $(STAMP)
	@$(VPY) -m harness.chaos --device $(DEVICE) --schedules $(SCHEDULES) --seed $(SEED) --workers $(WORKERS) --duration $(DURATION) --retry-inconclusive $(RETRY_INCONCLUSIVE) --out reports/chaos

# the emulator's device API fuzzed from its OpenAPI document (schemathesis): 5xx, contract
# violations, ledger changes by rejected requests
REQUESTS ?= 10000
fuzz: $(STAMP)
	@mkdir -p reports
	@$(VPY) -m harness.cloud.fuzz --requests $(REQUESTS) --seed $(SEED) --out reports/fuzz.json

clean:
	rm -rf reports/allure-results reports/html reports/bench reports/certificate.* .cache/cloud
