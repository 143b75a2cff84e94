# The two commands a user needs (see README):
#   make verify   the main job: verify the shipped checkpoint in NumPy against PyTorch
#   make test     the whole test suite
# Each creates and fills the virtual environment .venv when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The main job verifies the shipped trained checkpoint; CHECKPOINT=... verifies another.
CHECKPOINT ?= data/rpg_model.safetensors

.PHONY: verify test venv clean fixture corpus model

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

# How the shipped data was made (each byte-identical or, for the model, reproducible from its seed):
corpus: $(STAMP)
	$(BIN)/numpy-ref make-corpus --force
model: $(STAMP)
	$(BIN)/numpy-ref train -o data/rpg_model.safetensors --force --epochs 10 --threads 1 --log-every 1000

# The original program's checkpoint format, written by libtorch itself: tools/write_original
# is compiled against the libtorch inside the torch wheel of .venv and writes the
# tests/fixtures/original_*.pt files (tiny seeded weights; see the .cpp); the big-endian
# copies are made from them by byte-swapping (libtorch here only writes little-endian), and
# state_dict_f32.pt is torch.save of the same values under canonical names.
TORCH_DIR = $(shell $(BIN)/python -c "import os, torch; print(os.path.dirname(torch.__file__))")
TORCH_ABI = $(shell $(BIN)/python -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")
FIXTURES  := tests/fixtures

build/write_original: tools/write_original/write_original.cpp $(STAMP)
	mkdir -p build
	$(CXX) -std=c++20 -O1 -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_ABI) \
		-I$(TORCH_DIR)/include -I$(TORCH_DIR)/include/torch/csrc/api/include \
		$< -o $@ -L$(TORCH_DIR)/lib -Wl,-rpath,$(TORCH_DIR)/lib -ltorch -ltorch_cpu -lc10

fixture: build/write_original
	mkdir -p $(FIXTURES)
	build/write_original $(FIXTURES)
	for v in views f64 f16; do \
		$(BIN)/python tests/archive_tools.py big-endian $(FIXTURES)/original_$$v.pt $(FIXTURES)/original_$${v}_big.pt || exit 1; \
	done
	$(BIN)/python tests/archive_tools.py state-dict $(FIXTURES)/original_f32.pt $(FIXTURES)/state_dict_f32.pt

clean:
	rm -rf $(VENV) build *.egg-info
