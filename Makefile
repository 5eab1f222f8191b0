# The README and CI call these targets; each sets up the virtual environment when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK ?= dev
PLAN_JSON ?=
LIVE ?=
CONFIG ?=
PREVIEW ?=
BASE ?=
BENCH_BASE ?= HEAD~1
BENCH_SIZES ?= 200,500,1000
BENCH_ROUNDS ?= 1

.PHONY: setup test lint format docs plan diff bench bench-release release release-demo check-workflows clean

# Then the package itself, editable: the program, the tools and the tests import src/ecs_delivery.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# One pytest-xdist worker per core; a file whose tests share one slow module fixture runs in one
# worker (ONE_WORKER_FILES in tests/conftest.py), so only one builds it.
test: $(STAMP) lint check-workflows
	$(BIN)/python -m pytest -n auto --dist loadgroup

# The config reference in README.md, schema/stack-config.schema.json and Pulumi.yaml's config:
# block, from src/ecs_delivery/components/config/ (tests/components/config fails while one is stale).
docs: $(STAMP)
	$(BIN)/python -m tools.config_docs

check-workflows: $(STAMP)
	tools/check_workflows.sh

plan: $(STAMP)
	$(BIN)/ecs-delivery plan --stack $(STACK) $(if $(PLAN_JSON),--json $(PLAN_JSON)) $(if $(LIVE),--live $(LIVE)) $(if $(PREVIEW),--preview) $(foreach c,$(CONFIG),-c $(c))

# Exit status of the tool: 0 no change, 1 changes, 2 error (make itself reports any non-zero as 2).
diff: $(STAMP)
	@test -n "$(BASE)" || { echo "error: give BASE=<plan.json or git ref>, e.g. make diff STACK=dev BASE=origin/main" >&2; exit 2; }
	$(BIN)/ecs-delivery diff --stack $(STACK) --base $(BASE) $(if $(LIVE),--live $(LIVE)) $(foreach c,$(CONFIG),-c $(c))

# Scaling: 200, 500 and 1000 services, BENCH_BASE (default the previous commit) against HEAD,
# alternating; CPU and peak memory per resource and the median ratio (tools/bench_compare.py).
bench: $(STAMP)
	$(BIN)/python -m tools.bench_compare $(BENCH_BASE) HEAD --sizes $(BENCH_SIZES) --rounds $(BENCH_ROUNDS)

bench-release: $(STAMP)
	$(BIN)/python bench/bench_release.py

release: $(STAMP)
	$(BIN)/ecs-delivery release $(ARGS)

# plan, apply (one service fails: whole-release rollback) and status against the simulated AWS.
# The tool exits 1 (failed and rolled back), as apply does; make prints Error 1 and exits 2.
release-demo: $(STAMP)
	$(BIN)/python -m tools.release_demo $(if $(ENGINE),--engine $(ENGINE))

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
