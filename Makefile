# Everything runs from a local virtualenv that these targets create and keep up to date.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check lint format bench chaos soak mutation clean

install: $(STAMP)

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet -e '.[local,test,dev]'
	@$(MAKE) --no-print-directory kinesalite
	touch $(STAMP)

# kinesalite (npm) gives the Kinesis tests realistic sequence numbers and resharding. Without
# it those tests skip under `make test` (the run ends by naming them) and fail in CI, so a
# failed install is said loudly here; the rest of the install goes on.
KINESALITE_VERSION := 3.3.3
.PHONY: kinesalite
kinesalite:
	@if ! command -v npm >/dev/null; then \
		echo "make install: npm not found, so kinesalite is not installed: the Kinesis tests" \
			"that need it will skip (install Node.js and npm, then run make kinesalite)." >&2; \
	elif ! npm install --silent --prefix $(VENV) --no-audit --no-fund \
			kinesalite@$(KINESALITE_VERSION); then \
		printf '%s\n' "" \
			"******************************************************************************" \
			"make install: npm is here but could not install kinesalite@$(KINESALITE_VERSION)" \
			"(npm's error is above). The Kinesis tests that need it (resharding, the" \
			"streaming checkpoint test) will SKIP under make test and FAIL in CI" \
			"(.ci/run sets DATAPLANE_REQUIRE_SERVICES=1). Fix npm, then: make kinesalite" \
			"******************************************************************************" \
			"" >&2; \
	fi

demo: install
	$(BIN)/python -m runners.demo

# Two workers, each file's tests on one of them (module fixtures and file order kept).
test: install
	$(BIN)/pytest -q -n 2 --dist loadfile

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every ratio of issue 15 (pipelines vs hand loops, decode, 2 workers, start-up) in one table
# with peak RSS, each side in its own process; then bench/results/throughput.json. About 10
# minutes at the default 300,000 records; quicker: make bench BENCH_ARGS="--count 30000".
# The single benchmarks still run alone: python -m bench.bench_sources, bench.bench_streaming...
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# Long fault trials: kill -9 at random moments and inside commits, Kafka and Kinesis; then the
# streaming trials (kills, zombie writers, broker outages; see tests/faults/chaos_streaming.py).
CHAOS_TRIALS ?= 30
CHAOS_RECORDS ?= 20000
CHAOS_STREAMING_TRIALS ?= 20
chaos: install
	$(BIN)/python -m tests.faults.chaos --kind both --trials $(CHAOS_TRIALS) --records $(CHAOS_RECORDS)
	$(BIN)/python -m tests.faults.chaos --streaming --kind both --trials $(CHAOS_STREAMING_TRIALS) \
		--telemetry_kills 6 --json bench/results/chaos_streaming.json

# Not in CI: both pipelines streaming at 70 % of what this machine sustains, compacting as
# they go; about 20 minutes with the calibration and the checks. Table, verdicts, then
# bench/results/soak.json and soak.png; exits 1 if a goal fails.
SOAK_DURATION_S ?= 600
SOAK_COMPACT_EVERY_S ?= 60
soak: install
	$(BIN)/python -m bench.soak --duration_s $(SOAK_DURATION_S) --compact_every_s $(SOAK_COMPACT_EVERY_S)

# Not in CI: mutmut over the core modules, one module at a time, against the fast tests (unit
# tests and doctests, no services); table, then bench/results/mutation.json. Hours on 2 cores.
# One module: make mutation MUTATION_ARGS="--module frontier". See tests/MUTATION.md.
MUTATION_ARGS ?= --max_children 2
mutation: install
	$(BIN)/python -m tests.mutation $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
