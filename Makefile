# The two commands of the README; both create the virtual environment first when it is missing.
#   make reproduce   the embedded CPU reproduction: snakemake --cores 2 on config/config.yaml
#   make test        the test suite (CPU)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: reproduce test venv mlflow-ui clean

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
		$(BIN)/python -m pytest

# Browse the runs: MLflow UI on the embedded results' SQLite store, bound to 127.0.0.1.
mlflow-ui: $(BIN)/.installed
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/results/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf results/runs results/data results/figures results/tables results/REPORT.md .snakemake
