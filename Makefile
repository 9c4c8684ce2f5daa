# Two commands for a fresh machine with Python 3.11 and pip (see README.md):
#   make start   set everything up, then open the course in JupyterLab
#   make test    set everything up, then run every test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: start test demo system-packages benchmark benchmark-grading clean

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

# Debian packages the tests drive for real: the browser, a PostgreSQL server for the gradebook,
# and bubblewrap, the sandbox every grading kernel runs in.
system-packages:
	@need=""; command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	command -v bwrap >/dev/null 2>&1 || need="$$need bubblewrap"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$$need postgresql"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need; \
	  else echo "make test: as root, or install the Debian packages:$$need"; fi; \
	fi

# Every test; the library's suites run a second time with the CPU on array_api_strict.
test: $(VENV)/.installed system-packages
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q -p no:cacheprovider
	CHAINRULE_CPU_NAMESPACE=array_api_strict $(PY) -m pytest -q -p no:cacheprovider tests/chainrule tests/func tests/device tests/corpus

# The grading pipeline end to end on the bundled sample class; prints the gradebook.
demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m autograder demo

benchmark: $(VENV)/.installed
	$(PY) benchmarks/benchmark.py

benchmark-grading: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benchmarks/bench_autograde.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benchmarks/bench_cluster.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
