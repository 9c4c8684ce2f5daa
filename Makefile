# Two commands for a fresh machine with Python 3.11 and pip (see README.md):
#   make start   set everything up, then open the course in JupyterLab
#   make test    set everything up, then run every test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: start test benchmark clean

# The virtual environment is rebuilt whenever the dependency list changes.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $@

start: $(VENV)/.installed
	$(PY) -m chainrule.demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider
	CHAINRULE_CPU_NAMESPACE=array_api_strict $(PY) -m pytest -q -p no:cacheprovider -m "not browser" tests/chainrule

benchmark: $(VENV)/.installed
	$(PY) benchmarks/benchmark.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
