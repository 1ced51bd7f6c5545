# The two commands: `make demo` (set up from bare Python, run the main job) and `make test`.
UV := $(shell scripts/bootstrap.sh)

.PHONY: demo up test fuzz chaos lint format bench clean

demo:
	$(UV) run cardcore demo

up:
	$(UV) run cardcore up

test:
	$(UV) run pytest -q

# the long schemathesis run (CI runs 250 examples); FUZZ_EXAMPLES=N FUZZ_SEED=S to vary
FUZZ_EXAMPLES ?= 5000
FUZZ_SEED ?= 20261203
fuzz:
	CARDCORE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CARDCORE_FUZZ_SEED=$(FUZZ_SEED) \
	  $(UV) run pytest -q -rxXs -s tests/test_fuzz_openapi.py

# fault scenarios under load against a private stack (CHAOS_SCENARIOS=a,b CHAOS_DURATION=s)
CHAOS_SCENARIOS ?= ledger-kill,redis,redis-fail-closed,shard-down,control-down
CHAOS_DURATION ?= 20
chaos:
	$(UV) run cardcore chaos --scenarios $(CHAOS_SCENARIOS) --duration $(CHAOS_DURATION)

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy --strict libs/kernel/src libs/copybook/src

format:
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

clean:
	rm -rf .cardcore
