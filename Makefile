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

# JupyterLab on this machine only, showing the student release with the students' settings.
start: $(VENV)/.installed
	JUPYTER_CONFIG_PATH="$(CURDIR)/course/.jupyter" $(VENV)/bin/jupyter lab \
		--ServerApp.ip=127.0.0.1 --ServerApp.root_dir=course $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# Every test; the library's suites run a second time with the CPU on array_api_strict.
# CHAINRULE_INSTALL_BROWSER lets the browser tests install Debian's chromium when missing (as root).
test: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CHAINRULE_INSTALL_BROWSER=1 $(PY) -m pytest -q -p no:cacheprovider
	CHAINRULE_CPU_NAMESPACE=array_api_strict $(PY) -m pytest -q -p no:cacheprovider tests/chainrule tests/func tests/device

benchmark: $(VENV)/.installed
	$(PY) benchmarks/benchmark.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
