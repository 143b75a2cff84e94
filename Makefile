# The two commands a user needs (see README):
#   make verify   the main job: verify the shipped checkpoint in NumPy against PyTorch
#   make test     the whole test suite
# Each creates and fills the virtual environment .venv when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Until a trained checkpoint ships, the main job verifies seeded random weights.
CHECKPOINT ?= build/random_model.safetensors

.PHONY: verify test venv clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt "setuptools>=64"
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-build-isolation -e ".[torch,dev]"
	touch $(STAMP)

venv: $(STAMP)

build/random_model.safetensors: $(STAMP)
	mkdir -p build
	$(BIN)/numpy-ref init-random -o $@ --seed 0 --force

verify: $(STAMP) $(CHECKPOINT)
	$(BIN)/numpy-ref verify $(CHECKPOINT) --dtype float32 --dtype float64

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
