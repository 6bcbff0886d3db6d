# The two commands of the README; both create the virtual environment first when it is missing.
#   make reproduce   the embedded CPU reproduction: snakemake --cores 2 on config/config.yaml
#   make test        the test suite (CPU)
# and `make lint` (ruff, snakefmt), which CI runs before the tests; `make test-fast` (README, "Developing"):
# everything but the DAG runs, the rehearsal and the slow end-to-end training runs.
# and, as root with Debian's SLURM, munge, PostgreSQL and Chromium (.ci/run installs them):
#   make test-cluster  the workflow through a real single-node SLURM cluster and an MLflow tracking
#                      server on PostgreSQL, scancel + resume, the MLflow UI in headless Chromium
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: reproduce test test-fast lint test-cluster cluster-packages venv mlflow-ui clean

# pip, not uv/poetry: torch==2.13.0 resolves to the CPU wheel only through pip here.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

reproduce: $(BIN)/.installed
	PATH=$(CURDIR)/$(BIN):$$PATH HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
		$(BIN)/snakemake --cores $(CORES) --profile profiles/default

test: $(BIN)/.installed
	PATH=$(CURDIR)/$(BIN):$$PATH HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
		$(BIN)/python -m pytest --durations=30

# Everything but the tests that run Snakemake's jobs end to end (markers `dag`, `rehearsal`), the end-to-end
# training runs in subprocesses (`slow`) and the cluster's: the tier to run while editing.
test-fast: $(BIN)/.installed
	PATH=$(CURDIR)/$(BIN):$$PATH HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
		$(BIN)/python -m pytest -m "not dag and not rehearsal and not slow and not cluster"

# ruff (pyproject.toml's [tool.ruff]: pycodestyle, pyflakes, import order, bugbear, blind excepts) and
# snakefmt (the Snakefile and workflow/rules/*.smk as it formats them); CI runs it first.
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile workflow/

# The cluster extra (the SLURM executor plugin, psycopg2) in the same environment.
$(BIN)/.installed-cluster: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,cluster]'
	touch $@

# The `cluster` tests (deselected by `make test`), with nothing skipped; screenshots in build/cluster/.
test-cluster: $(BIN)/.installed-cluster
	PATH=$(CURDIR)/$(BIN):$$PATH HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
		$(BIN)/python -m pytest -m cluster tests/cluster -rs -p no:cacheprovider --durations=10

# Debian packages of the cluster tests (root): SLURM 22.05, munge, PostgreSQL 15, Chromium.
cluster-packages:
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurmctld slurmd slurm-client munge postgresql chromium

# Browse the runs: MLflow UI on the embedded results' SQLite store, bound to 127.0.0.1. Open the link it
# prints: MLflow 3.17 opens an experiment on its GenAI overview unless the link (or the UI's
# "GenAI | Model training" switch, remembered by the browser) asks for Model training.
UI_PORT ?= 5000
mlflow-ui: $(BIN)/.installed
	@echo "MLflow UI: open $$($(BIN)/python -m lens.tracking ui-url --results-dir results --base http://127.0.0.1:$(UI_PORT))"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/results/mlflow.db --host 127.0.0.1 --port $(UI_PORT)

clean:
	rm -rf results/runs results/data results/figures results/tables results/REPORT.md .snakemake
