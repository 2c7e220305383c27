# Hearth — `make run` starts everything, `make test` runs the whole suite. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install bench-event-path bench-analytics bench-messaging bench-search bench-notifications events-doc openapi replay-dlq clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Hearth needs Python 3.11+")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m shared.devstack run

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench-event-path: $(STAMP)
	$(PY) bench/event_path.py $(BENCH_ARGS)

bench-analytics: $(STAMP)
	$(PY) bench/analytics.py $(BENCH_ARGS)

bench-messaging: $(STAMP)
	$(PY) bench/messaging.py $(BENCH_ARGS)

bench-search: $(STAMP)
	$(PY) bench/search.py $(BENCH_ARGS)

bench-notifications: $(STAMP)
	$(PY) bench/notifications.py $(BENCH_ARGS)

events-doc: $(STAMP)
	$(PY) -m shared.events.catalog > docs/events.asyncapi.json

openapi: $(STAMP)
	$(PY) deploy/openapi.py > docs/openapi.json.tmp && mv docs/openapi.json.tmp docs/openapi.json

# Publish dead-lettered events again after a fix: make replay-dlq TOPIC=social.v1 [DRY_RUN=1]
replay-dlq: $(STAMP)
	$(PY) -m shared.replay $(TOPIC) $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) .hearth

# Chaos under load (own stack; ~6-8 min): broker/consumer/database/PostgreSQL/relay-holder faults, Ctrl-C.
.PHONY: test-chaos bench-chaos
test-chaos: $(STAMP)
	HEARTH_CHAOS=1 $(PY) -m pytest -q tests/e2e/test_chaos.py $(PYTEST_ARGS)

bench-chaos: $(STAMP)
	$(PY) bench/chaos.py $(BENCH_ARGS)
