# The two set-up commands of the README:
#   make run    the main job on embedded defaults (simulator as the device, SQLite store)
#   make test   the test suite (installs what it needs, system packages included)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test bench bench-replicate bench-api constraints system-deps clean

# The demo starts with HISTORY_DAYS of the simulator's past (charts and statistics at once): make run HISTORY_DAYS=0
HISTORY_DAYS ?= 3

run: $(STAMP)
	$(BIN)/kammthaar demo --history $(HISTORY_DAYS)

test: $(TEST_STAMP) system-deps
	$(BIN)/python -m pytest

bench: $(STAMP) system-deps
	$(BIN)/python bench/store.py

bench-replicate: $(STAMP) system-deps
	$(BIN)/python bench/replicate.py

bench-api: $(STAMP) system-deps
	$(BIN)/python bench/api.py

# The main job needs only the package; the tests add their extras (ansible-lint, schemathesis, ...).
# Every dependency at the version of constraints.txt, the one CI ran and the Pis install (README: Development).
CONSTRAINTS := constraints.txt

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $(TEST_STAMP)

# Refresh constraints.txt: the newest versions setup.cfg allows, from a clean venv (not ours), the
# project itself left out. Run the tests on the result before committing it.
constraints:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp" && "$$tmp/bin/pip" install --quiet --upgrade pip && \
	"$$tmp/bin/pip" install --quiet -e '.[test]' && \
	{ echo "# Every dependency of kammthaar-edge and of its test extra, at the version CI ran: \`make constraints\`"; \
	  echo "# (a clean install of .[test] on $$("$$tmp/bin/python" -V), frozen). Used by make, CI and the Ansible role."; \
	  "$$tmp/bin/pip" freeze --exclude-editable; } >$(CONSTRAINTS).new && \
	mv $(CONSTRAINTS).new $(CONSTRAINTS) && echo "$(CONSTRAINTS): $$(grep -vc '^#' $(CONSTRAINTS)) packages"

# socat makes the serial pty pairs the tests put between collector and simulator;
# sqlite3 is the shell operators use, and the tests use it the same way.
# influxdb (InfluxDB 1.x, `influxd`) and victoria-metrics are the real servers the replicator
# tests write to, on the v1 and v2 paths; each package is checked by its command.
# systemd gives systemd-analyze, which verifies the units the Ansible role renders; python3-venv
# lets Debian's python3 make the venv the role installs into (as on a Pi).
# postgresql: the throwaway cluster the state tests share between two `kammthaar serve` (its
# initdb is not on PATH: checked by its directory); chromium: the fleet page's browser test;
# nginx is the role's reverse proxy, checked (`nginx -t`) and run by tests/test_proxy.py (in
# /usr/sbin: outside a user's PATH). mosquitto is the real MQTT broker the publisher tests talk to
# (in /usr/sbin too); openssl makes the throwaway CA and server certificate of the TLS broker test.
SYSTEM_PACKAGES := socat sqlite3 influxdb victoria-metrics systemd python3-venv postgresql chromium nginx mosquitto openssl
system-deps:
	@missing=""; for pc in socat:socat sqlite3:sqlite3 openssl:openssl influxdb:influxd victoria-metrics:victoria-metrics \
	  systemd:systemd-analyze nginx:nginx chromium:chromium mosquitto:mosquitto; do \
	  PATH="$$PATH:/usr/sbin" command -v $${pc#*:} >/dev/null || missing="$$missing $${pc%%:*}"; done; \
	/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	  else echo "missing system packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
