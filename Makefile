VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
CONFIG ?= config.toml

.PHONY: venv install run test lint bench clean

venv: $(STAMP)

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -e '.[test]'
	touch $@

run: $(STAMP)
	$(VENV)/bin/callcenter serve --config $(CONFIG)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	@set -e; for script in bench/*.py; do \
		[ -e "$$script" ] || continue; \
		echo "== $$script"; \
		$(VENV)/bin/python "$$script"; \
	done

clean:
	rm -rf $(STAMP) build dist *.egg-info .pytest_cache .ruff_cache
