# Two entry points (README): `make run` reproduces the default grid, `make test` runs every check.
# Both create .venv on first use; nothing else needs to be installed by hand besides Python 3.11 + pip.
# `make figures` and `make report` need no PyTorch: on a fresh clone they install the base package only
# (.venv/.light); run and test install the train and dev extras (PyTorch included) on top.

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test figures report publish publish-report lint unit pipeline-checks clean-ci

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.light

$(VENV)/.light: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $@

# Full reproduction: every run retrained into results/ (the committed cache is not read: cache=null).
run: $(VENV)/.installed
	snakemake --cores all --config cache=

# Tables and figures under results/ from the committed cache (and any run finished in results/): no training.
figures: $(VENV)/.light
	snakemake figures --cores all

# report.html: every table (HTML) and figure of the default root with its caption, after `make figures`.
report: figures
	snakemake --report report.html

# Maintainers only, after `make run` on a clean checkout: replace the committed cache with results/'s small files
# (refused unless every run finished in results/ itself, from one clean commit). publish-report copies only the
# summary and tables, after `make figures`, when only the report code changed.
publish: $(VENV)/.installed
	$(PY) workflow/scripts/publish_results.py

publish-report: $(VENV)/.installed
	$(PY) workflow/scripts/publish_results.py --report-only

lint: $(VENV)/.installed
	ruff check
	ruff format --check
	snakefmt --check workflow tests/slurm_smoke
	snakemake --lint --configfile config/ci.yaml
	snakemake --lint

pipeline-checks: $(VENV)/.installed
	snakemake -n --quiet rules --configfile config/config.yaml
	snakemake -n --quiet rules --configfile config/paper.yaml

# The SLURM test needs root and apt (it installs slurm-wlm + munge and starts a one-node cluster);
# elsewhere it is skipped with that reason.
test: $(VENV)/.installed lint pipeline-checks
	bash .ci/test.sh
