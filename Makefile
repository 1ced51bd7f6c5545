# The two commands: `make demo` (set up from bare Python, run the main job) and `make test`.
UV := $(shell scripts/bootstrap.sh)

.PHONY: demo up test lint format bench clean

demo:
	$(UV) run cardcore demo

up:
	$(UV) run cardcore up

test:
	$(UV) run pytest -q

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy --strict libs/kernel/src libs/copybook/src

format:
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

clean:
	rm -rf .cardcore
