# The two commands: `make demo` (set up from bare Python, run the main job) and `make test`.
UV := $(shell scripts/bootstrap.sh)

.PHONY: demo up test fuzz lint format bench clean

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

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy --strict libs/kernel/src libs/copybook/src

format:
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

clean:
	rm -rf .cardcore
