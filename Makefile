# Set-up and everyday commands. `make demo` and `make test` create .venv and install everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo example test lint bench-acasxu bench-mnistfc clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,ray]'
	# auto_LiRPA 0.3 pins torch<1.13 in its metadata: install it without its pins;
	# verify/bounds/lirpa_compat.py makes it work with torch 2.13 and numpy 2.
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps auto-lirpa==0.3
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p .verify-cache
	$(BIN)/verify check examples/tiny/classifier.onnx specs/tiny_robust_class0.vnnlib --certificate .verify-cache/demo-cert.json; test $$? -eq 0
	$(BIN)/verify certcheck examples/tiny/classifier.onnx specs/tiny_robust_class0.vnnlib .verify-cache/demo-cert.json
	$(BIN)/verify check examples/tiny/classifier.onnx specs/tiny_robust_class0_wide.vnnlib; test $$? -eq 1
	$(BIN)/verify check examples/tiny/classifier.onnx specs/tiny_robust_class1.v2.vnnlib --json; test $$? -eq 0
	$(BIN)/verify check examples/tiny/classifier.onnx specs/tiny_output_range.py; test $$? -eq 0
	@echo "demo: all four answers as expected (3 verified, 1 falsified)"

example: $(STAMP)
	$(BIN)/python examples/make_example.py
	$(BIN)/python examples/make_relational.py

test: $(STAMP)
	bash .ci/ensure_chromium.sh
	$(BIN)/python -m pytest -q -x

lint: $(STAMP)
	$(BIN)/ruff check verify tests benchmarks examples

bench-acasxu: $(STAMP)
	$(BIN)/python benchmarks/run_family.py ../shared/benchmarks/acasxu --jobs 2 --no-recheck --certificates certs/acasxu --out benchmarks/results/acasxu.csv

bench-mnistfc: $(STAMP)
	$(BIN)/python benchmarks/run_family.py ../shared/benchmarks/mnistfc --jobs 2 --no-recheck --certificates certs/mnistfc --out benchmarks/results/mnistfc.csv

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
