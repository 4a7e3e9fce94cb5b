# The two commands of the README, each doing its own set-up on a fresh machine:
#   make run  [ARGS="--config mnist_dir=../shared/data/mnist ..."]   runs the workflow
#   make test [PYTEST_ARGS="-m 'not slow'"]                          runs the test suite
#   make bench                                                       training speed figures

PYTHON3 ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
CORES ?= 4
ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test bench lint clean

$(STAMP): requirements.txt
	$(PYTHON3) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	cp requirements.txt $@

run: $(STAMP)
	$(PYTHON) -m snakemake --cores $(CORES) $(ARGS)

test: $(STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PYTHON) bench/training_speed.py $(BENCH_ARGS)

lint: $(STAMP)
	$(PYTHON) -m snakemake --lint
	$(PYTHON) -m snakefmt --check .
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

clean:
	rm -rf results logs benchmarks .snakemake
