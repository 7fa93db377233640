# threshold_kms.mpc_party — developer and operator entry points.
#   make sandbox       start the local stand-ins and deploy every party of inventories/sandbox
#   make sandbox-down  stop every stand-in process `make sandbox` started
#   make check         everyday feedback in about three minutes: lint and the fast unit suites
#   make test          everything CI checks (lint, unit tests, Molecule, collection build)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOOKS := $(VENV)/.startup-hooks-installed
COLL_LINK := .collections/ansible_collections/threshold_kms/mpc_party
INVENTORY ?= inventories/sandbox
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv collection-link sandbox sandbox-up sandbox-deploy sandbox-down sandbox-status \
        check test lint unit molecule build ee-image-check ee-image render bench clean

venv: $(STAMP) $(HOOKS) collection-link
$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (ansible-core 2.19 runs on Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

# Two start-up hooks of the development virtualenv (docs/performance.md), each a module in
# site-packages imported by a .pth line at every interpreter start, compiled here once (Python
# writes no bytecode where PYTHONDONTWRITEBYTECODE is set, and would compile them at every start):
# - tools/zipimport_cache.py: every Ansible module task is a new Python process that imports
#   module_utils from a zip payload, which Python never caches; it keeps that bytecode.
# - tools/module_forkserver.py: module tasks also import boto3 and the kubernetes client in every
#   new process; under `make test` and `make check` they run in processes forked from one that
#   imported those once.
# - tools/module_deps_cache.py: every ansible-playbook run parses each module and its module_utils
#   again to find what to put in the module's payload; it keeps what each source imports.
$(HOOKS): tools/zipimport_cache.py tools/module_forkserver.py tools/module_deps_cache.py $(STAMP)
	site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \
	for hook in zipimport_cache:zipimport_cache module_forkserver:forkserver module_deps_cache:module_deps_cache; do \
	  name=_mpc_$${hook#*:} && cp tools/$${hook%%:*}.py $$site/$$name.py && \
	  echo "import $$name" > $$site/$$name.pth && $(BIN)/python -m py_compile $$site/$$name.py || exit 1; \
	done
	touch $(HOOKS)

# The repository root is the collection: expose it under its FQCN for ansible and pytest.
collection-link:
	@mkdir -p $(dir $(COLL_LINK))
	@test -L $(COLL_LINK) || ln -s ../../.. $(COLL_LINK)

SANDBOX_DIR ?= $(CURDIR)/.sandbox
export SANDBOX_DIR
SANDBOX_ENV = set -a && source $(SANDBOX_DIR)/env && set +a

# ---- sandbox: the whole network on local stand-ins --------------------------------------
# As on a real network: every party deploys; the coordinators (`tools/sandbox publish`) publish the
# endpoint service names the parties offer, in $(SANDBOX_DIR)/network-overrides.yml; the parties'
# next run (with -e @ that file) connects to them and initialises PRSS. A re-run with the names
# already published is one deploy.
# Interrupted (Ctrl-C, SIGTERM, SIGHUP) at any step, it stops the step and the stand-ins (docs/sandbox.md);
# finished or failed, the stand-ins stay up for the deploy to be re-run or inspected.
# A Ctrl-C reaches the step too: when it handles it and exits (ansible-playbook: 99) before this
# shell's trap runs, bash runs no trap at all, so a step's interrupted status also stops them.
sandbox: venv
	@set -e; child=; \
	interrupted() { trap "" INT TERM HUP; echo "make sandbox: interrupted; stopping the stand-ins" >&2; \
	      if [ -n "$$child" ]; then kill -TERM $$child 2>/dev/null || true; wait $$child || true; fi; \
	      $(BIN)/python tools/sandbox down; exit 130; }; \
	trap interrupted INT TERM HUP; \
	step() { echo "$$*"; "$$@" & child=$$!; rc=0; wait $$child || rc=$$?; child=; \
	         case $$rc in 0) ;; 99|129|130|131|143) interrupted ;; *) return $$rc ;; esac; }; \
	step $(BIN)/python tools/sandbox up --inventory $(INVENTORY); \
	$(SANDBOX_ENV); \
	overlay=$(SANDBOX_DIR)/network-overrides.yml; names=; \
	if [ -f $$overlay ]; then names="-e @$$overlay"; fi; \
	step $(BIN)/ansible-playbook playbooks/deploy_party.yml -i $(INVENTORY) $$names; \
	before=$$(if [ -f $$overlay ]; then cksum < $$overlay; fi); \
	step $(BIN)/python tools/sandbox publish --inventory $(INVENTORY); \
	if [ "$$before" != "$$(cksum < $$overlay)" ]; then \
	  echo "make sandbox: the coordinators published new service names; the parties connect to them"; \
	  step $(BIN)/ansible-playbook playbooks/deploy_party.yml -i $(INVENTORY) -e @$$overlay; fi; \
	step $(BIN)/ansible-playbook playbooks/check_network.yml -i $(INVENTORY) -e @$$overlay

sandbox-up: venv
	$(BIN)/python tools/sandbox up --inventory $(INVENTORY)

sandbox-status: venv
	$(BIN)/python tools/sandbox status

sandbox-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python tools/sandbox down; else echo "no sandbox"; fi

# ---- what CI checks ---------------------------------------------------------------------
# Unit tests, Molecule scenarios (tests/integration/test_molecule.py), the bad-input, fault
# and security suites and the sandbox end to end, two at a time; suites that share stand-ins, and
# the tests of a module that share a module-scoped fixture (tests/conftest.py), carry an xdist group
# and stay on one worker.
# PYTEST_WORKERS: xdist workers. Two on the 2-core CI machine; a third filled its idle share (15 %,
# the suites' waits) there, about 5 % faster, with more load on the tests' timing (docs/performance.md).
PYTEST_ARGS ?= --durations=30
PYTEST_WORKERS ?= 2
test: venv lint build
	$(BIN)/python -m _mpc_forkserver run -- $(BIN)/python -m pytest tests -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: venv
	$(BIN)/ansible-lint --profile production --offline
	$(BIN)/python -m compileall -q plugins tests tools

# galaxy.yml is the one place the version is written: read here, and left out of the tarball's
# name, so that execution-environment.yml and the docs need not repeat it.
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
COLLECTION_TARBALL := build/threshold_kms-mpc_party.tar.gz
build: venv
	@mkdir -p build
	rm -f build/threshold_kms-mpc_party-*.tar.gz
	$(BIN)/ansible-galaxy collection build --force --output-path build .
	mv build/threshold_kms-mpc_party-$(VERSION).tar.gz $(COLLECTION_TARBALL)
	$(BIN)/ansible-builder create -f execution-environment.yml -c build/ee-context --output-filename Containerfile

# The execution environment image (docs/awx.md, "Build and publish the execution environment"),
# on a machine with podman or docker. The base image is pinned by digest here: EE_BASE_IMAGE is
# <the base image of execution-environment.yml>@sha256:<the digest your registry reports>.
EE_RUNTIME ?= podman
EE_BASE_IMAGE ?=
EE_TAG ?=
ee-image-check:
	@[[ "$(EE_BASE_IMAGE)" =~ ^[^@[:space:]]+@sha256:[0-9a-f]{64}$$ ]] || { echo "EE_BASE_IMAGE: the base image pinned by digest, <name>@sha256:<64 hex> (got '$(EE_BASE_IMAGE)')"; exit 2; }
	@[[ "$(EE_TAG)" =~ ^[^[:space:]]+:[^[:space:]/]+$$ ]] || { echo "EE_TAG: <registry>/<name>:<version> to tag the image with (got '$(EE_TAG)')"; exit 2; }

ee-image: ee-image-check build
	$(BIN)/ansible-builder build -f execution-environment.yml -c build/ee-context --output-filename Containerfile \
	    --container-runtime $(EE_RUNTIME) --build-arg EE_BASE_IMAGE=$(EE_BASE_IMAGE) -t $(EE_TAG)

# The unit suites without those marked slow (tests/unit/conftest.py): the everyday loop.
check: venv lint
	$(BIN)/python -m _mpc_forkserver run -- $(BIN)/python -m pytest tests/unit -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow" -q

unit: venv
	$(BIN)/python -m pytest tests/unit

render: venv
	$(BIN)/ansible-playbook playbooks/render_party.yml -i $(INVENTORY) -e render_dir=$(CURDIR)/build/rendered

bench: venv
	$(BIN)/python tools/bench.py
	$(BIN)/python tools/bench_health.py

clean: sandbox-down
	rm -rf build .pytest_cache
