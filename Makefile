# The README's commands. Each target bootstraps .venv on a fresh machine
# that has only Python 3.11.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: reproduce test lab mutation clean system-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

reproduce: system-deps $(STAMP)
	$(VENV)/bin/redleaf-nb reproduce

test: system-deps $(STAMP)
	$(PY) -m pytest

# deliberate breakages of the heap and the call protocol must turn the suite red
mutation: $(STAMP)
	$(PY) scripts/mutation_check.py

lab: $(STAMP)
	$(VENV)/bin/redleaf-nb lab

clean:
	rm -rf $(VENV) data/results
