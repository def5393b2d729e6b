# Two commands set everything up on a fresh machine:
#   make demo   compile the bundled small transformer and compare it across backends
#   make test   run the test suite
# Both create .venv on first use (torch pinned to the 2.13.0 CPU build by constraints.txt).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODEL  ?= tests/models/gpt2.onnx

.PHONY: demo test setup clean

BACKENDS ?= numpy,torch,llvm,h100,tpu-v6e,wse-3,groq-lpu
DIMS   ?= --dim batch=1 --dim seq=32
HOST   := $(VENV)/host-calibrated.toml

demo: $(STAMP)
	$(BIN)/ridgeline show $(MODEL) $(DIMS) -p default
	$(BIN)/ridgeline calibrate --quick --force -o $(HOST)
	$(BIN)/ridgeline compare $(MODEL) $(DIMS) -p default --backends $(BACKENDS) --target-file $(HOST) --repeat 21

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,torch,llvm,plot]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
