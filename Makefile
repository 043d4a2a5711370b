# Convenience targets; the README's two commands are the reference (install + run / install + test).
PY ?= python

.PHONY: install quickstart test test-fast bench configs clean

install:            ## install neuroalign with the test extras (editable)
	pip install -e '.[test]'

quickstart: install ## the main job on the built-in offline defaults
	neuroalign fit -c configs/quickstart.yaml && neuroalign fit -c configs/evolution/quickstart.yaml

test: install       ## the whole test suite (what .ci/run runs)
	$(PY) -m pytest

test-fast:          ## everything but the slow end-to-end tests
	$(PY) -m pytest -m "not slow"

configs:            ## check that every config parses
	$(PY) -m pytest tests/test_configs.py

bench:              ## speed benchmarks: project vs reference, ratios printed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:              ## generated runs, data and analyses
	rm -rf runs data analysis wandb lightning_logs
