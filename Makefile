# The two commands of the README, each doing its own set-up on a fresh machine:
#   make run  [ARGS="--configfile examples/reduced.yaml ..."]   runs the workflow
#   make test [PYTEST_ARGS="..."]                               runs the whole test suite
# and around them:
#   make test-fast       the fast tier: synthetic data, in-process, no Snakemake (< 1 min)
#   make progress        where a running or finished run stands, and the time left
#   make summary         the HTML summary of the last run (Snakemake's report, with the run's
#                        own config) and a picture of its front page; `make report`: the same
#   make bench           training speed and orchestration figures
#   make lint            snakemake --lint, snakefmt, ruff, shellcheck
#   make guard           result versions: each stage computes what its version says (~7 min)
#   make mutants         mutation testing of ranking, winner, trials, data (~10 min; not in CI)

PYTHON3 ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
# all of this machine's cores, unless CORES=N is given
CORES ?= $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
ARGS ?=
PYTEST_ARGS ?=
PROGRESS_ARGS ?=
BENCH_ARGS ?=
RUN_CONFIG := results/run_config.yaml
FAST := not workflow and not mnist and not slurm

.PHONY: run test test-fast progress summary report bench lint guard mutants clean

# The venv: the pinned requirements, then this project's package (editable, so that
# `import mnist_mlp` works anywhere and follows the code).
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON3) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation --editable .
	cp requirements.txt $@

run: $(STAMP)
	$(PYTHON) -m mnist_mlp.config $(ARGS)
	$(PYTHON) -m snakemake --cores $(CORES) $(ARGS)

test: $(STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PYTHON) -m pytest -m "$(FAST)" $(PYTEST_ARGS)

progress: $(STAMP)
	$(PYTHON) -m mnist_mlp.cli progress --cores $(CORES) $(PROGRESS_ARGS)

# the HTML summary of the results in results/ (Snakemake's --report), made with the config
# they were made with
summary: $(STAMP)
	$(PYTHON) -m snakemake --report results/summary.html \
		$(if $(wildcard $(RUN_CONFIG)),--configfile $(RUN_CONFIG)) $(ARGS)
	$(PYTHON) -m mnist_mlp.report results/summary.html results/summary.png

report: summary

bench: $(STAMP)
	$(PYTHON) bench/training_speed.py $(BENCH_ARGS)
	$(PYTHON) bench/thread_reproducibility.py $(BENCH_ARGS)
	$(PYTHON) bench/orchestration.py $(BENCH_ARGS)

lint: $(STAMP)
	$(PYTHON) -m snakemake --lint
	$(PYTHON) -m snakefmt --check .
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	git ls-files '*.sh' .ci/run | xargs $(VENV)/bin/shellcheck

guard: $(STAMP)
	$(PYTHON) -m mnist_mlp.guard $(ARGS)

# The developer tools (requirements-dev.txt), then mutmut ([tool.mutmut] in pyproject.toml):
# each mutant of ranking, winner, trials and data runs the fast tests that call its function;
# the survivors are listed at the end. From scratch: mutmut notes which tests call which
# function once, and would miss what an edited test now calls. `$(PYTHON) tests/mutants.py
# show NAME` shows one mutant, `... run NAME` tests it again.
mutants: $(STAMP)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -rf mutants
	$(PYTHON) tests/mutants.py run --max-children $(CORES)
	$(PYTHON) tests/mutants.py results

clean:
	rm -rf results logs benchmarks .snakemake
