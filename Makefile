# Every target sets itself up from nothing: python3 -m venv + pip install.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
ARGS    ?=

.PHONY: all install run test bench loadtest clean

all: test

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/exchange up $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python ops/bench/book.py --json $(ARGS)

loadtest: $(STAMP)
	$(BIN)/exchange loadtest --json $(ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache .hypothesis
