# The two set-up commands of the README:
#   make run    the main job on embedded defaults (simulator as the device, SQLite store)
#   make test   the test suite (installs what it needs, system packages included)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench system-deps clean

run: $(STAMP)
	$(BIN)/kammthaar demo

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

bench: $(STAMP) system-deps
	$(BIN)/python bench/store.py

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# socat makes the serial pty pairs the tests put between collector and simulator;
# sqlite3 is the shell operators use, and the tests use it the same way.
SYSTEM_PACKAGES := socat sqlite3
system-deps:
	@missing=""; for p in socat sqlite3; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	  else echo "missing system packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
