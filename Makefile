# The two commands of the README: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ES ?=
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,demo]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shipper demo $(if $(ES),--es $(ES),)

test: $(STAMP)
	$(BIN)/ruff check shipper outputs tests bench
	$(BIN)/mypy shipper outputs
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

docs: $(STAMP)
	$(BIN)/shipper config-docs -o docs/CONFIG.md
