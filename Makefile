# Two set-up commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_output

.PHONY: demo test lint venv ui clean-demo

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt bayesn==0.4.0  # SN Ia SED data only (Hsiao template, BayeSN W22); its jax/numpyro are not needed
	$(PY) -m pip install --quiet --no-deps -c constraints.txt snsedextend==0.3.7  # SN Ic template data only (SNANA's NON1A SEDs); its pymc3/theano are not needed
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/scone demo --out $(DEMO_DIR)

test: $(STAMP)
	bash scripts/system_deps.sh
	$(PY) -m pytest

ui: $(STAMP)
	@test -f $(DEMO_DIR)/ui.env || { echo "run 'make demo' first: the UI shows the instance the demo made"; exit 1; }
	set -a && . $(abspath $(DEMO_DIR))/ui.env && set +a && $(VENV)/bin/dg dev -h 127.0.0.1 -p $${PORT:-3000}

lint: $(STAMP)
	$(VENV)/bin/ruff check scone_assets tests benchmarks

clean-demo:
	rm -rf $(DEMO_DIR)
