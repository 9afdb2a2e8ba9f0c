# cdlm developer commands. Each target creates .venv and installs cdlm (with its dev tools)
# the first time, then reuses it; the install is redone when pyproject.toml changes.

PYTHON ?= python3
# A Python 3.12 (Lambda's runtime) to compile the package's bytecode; python3.12 on the PATH if unset.
LAMBDA_PYTHON ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint format schema bench bench-read mutation migrate lambda-package clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cdlm needs Python 3.11 or newer (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,matching,analytics,reports]'
	@touch $(STAMP)

serve: $(STAMP) ## Run the API with an embedded PostgreSQL and GraphiQL (WORKER=1: and the scheduled jobs)
	$(BIN)/cdlm serve $(if $(WORKER),--with-worker)

test: $(STAMP) ## Run the test suite (starts its own PostgreSQL unless DATABASE_URL is set)
	$(BIN)/python -m pytest

lint: $(STAMP) ## Style, lint and type checks
	$(BIN)/ruff check src tests bench infra
	$(BIN)/ruff format --check src tests bench infra
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

schema: $(STAMP) ## Regenerate schema.graphql from the code
	$(BIN)/cdlm export-schema --output schema.graphql

migrate: $(STAMP) ## Apply database migrations
	$(BIN)/cdlm migrate

bench: $(STAMP) ## Run the benchmarks (prints numbers)
	$(BIN)/python -m bench

bench-read: $(STAMP) ## Only the read path of the HTTP server, this tree against the previous release
	$(BIN)/python -m bench read_path

mutation: $(STAMP) ## Mutation testing of the pure rule modules (share of mutants killed)
	$(BIN)/python -m pip install --quiet -e '.[dev,matching,analytics,reports,mutation]'
	$(BIN)/python -m bench.mutation

lambda-package: $(STAMP) ## Build build/lambda.zip and the requirements of the jobs' images (matching, analytics) for `serverless deploy`
	$(BIN)/python infra/build_lambda.py $(if $(LAMBDA_PYTHON),--python $(LAMBDA_PYTHON)) --output build/lambda.zip
	$(BIN)/python infra/build_lambda.py $(if $(LAMBDA_PYTHON),--python $(LAMBDA_PYTHON)) --extra matching --requirements build/matching-requirements.txt
	$(BIN)/python infra/build_lambda.py $(if $(LAMBDA_PYTHON),--python $(LAMBDA_PYTHON)) --extra analytics --requirements build/analytics-requirements.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
