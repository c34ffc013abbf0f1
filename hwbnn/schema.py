"""The JSON schema of every ``--json`` output, as data (docs/design.md, "JSON schema and
progress"; rendered as docs/json-schema.md by ``python -m hwbnn.schema``).

Rules: every printed object carries ``schema_version`` at its top; keys are snake_case; a key
with a unit says it (``_s``, ``_mhz``, ``_per_s``, ``_pj``, ``_ns``, ``_bits``); a leaf key
means one quantity with one unit in every command (:data:`KEYS`); a quantity hwbnn both
models and measures is ``X`` when modelled and ``measured_X`` (or ``sim_X`` for the
simulator's own speed) when measured; ``model`` is a model's name and ``model_path`` where it
was loaded from; per-layer lists name the layer ``layer``. Resource counts (``lut``, ``ff``,
...) at the top of a row are estimates; inside ``counts`` they are Yosys's (measured).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SCHEMA_VERSION = 1
MODELLED, MEASURED, FACT = "modelled", "measured", ""
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


class SchemaError(ValueError):
    """A JSON output that does not follow the schema."""


@dataclass(frozen=True)
class Key:
    """What a leaf key means: its unit and whether hwbnn modelled or measured it."""

    unit: str
    doc: str
    kind: str


def _keys(kind: str, entries: dict[str, str | tuple[str, str]]) -> dict[str, Key]:
    """``name: doc`` or ``name: (unit, doc)``."""
    return {name: Key(*entry, kind) if isinstance(entry, tuple) else Key("", entry, kind)
            for name, entry in entries.items()}


# --- every leaf key of every command, one meaning each ------------------------------------
KEYS: dict[str, Key] = {
    **_keys(FACT, {
        "schema_version": "version of this schema",
        "lce_version": "Larq Compute Engine version of the peer venv",
        "tensorflow_version": "TensorFlow version of the peer venv",
        "setup": "how the peer runs the model",
        "model": "the model's name (the network's own name, not a path)",
        "model_path": "where the model was loaded from: a file path or zoo:NAME",
        "checkpoint_path": "torch checkpoint written",
        "design_path": "design folder (Verilog + manifest.json)",
        "work_path": "folder with builds, runs, logs",
        "log_path": "simulator log",
        "waveform_path": "waveform of the diagnosis run",
        "bitstream_path": "bitstream written",
        "build_path": "folder of the board build (scripts, netlists, reports)",
        "report_path": "JSON report written beside the bitstream",
        "verilog": "Verilog file name(s) in the design folder",
        "layer": "layer name (as in the model file)",
        "component": "generated component (an MVTU, a sliding window, a FIFO, a pool)",
        "stage": "pipeline stage of the generated top",
        "kind": "what sort of layer, component or stream it is",
        "mix": "bitwidth mix: average weight bits, or ternary",
        "config": "calibration config name",
        "network": "network of the cost model's whole-network set (hwbnn/cost/networks.py)",
        "block": "block of the generated network, named as in its hierarchy and the estimate",
        "clock_source": "how clock_mhz was chosen: given (--clock-mhz), predicted (the "
                        "family's clock model) or assumed (100 MHz, no model)",
        "suggested_folding": "folding (PExSIMD pairs) that reaches the requested rate at the "
                             "measured Fmax",
        "note": "why no folding reaches the requested rate",
        "route_note": "the estimate is above the largest design the open place and route has "
                      "finished (synth.flow.ROUTE_MAX_LUTS): no Fmax to expect",
        "met": "the achieved frame rate reaches the requested one",
        "split": "which configs were validated (heldout)",
        "dataset": "dataset name",
        "family": "FPGA family (ice40, ecp5, xc7) or asic",
        "device": "FPGA device",
        "board": "board name",
        "top": "Verilog top module name",
        "sim": "simulator (verilator, icarus, amaranth)",
        "router": "nextpnr router",
        "cpu": "CPU model name",
        "mode": "folded or unrolled",
        "adders": "how an unrolled design sums its constant products: da4ml (one shared adder "
                  "graph; absent: hwbnn's per-plane trees)",
        "output": "what the design streams out: scores or label",
        "ir_sha256": "SHA-256 of the model file the design implements",
        "bottleneck": "stage with the most cycles per frame",
        "encoding": "encoding of a stream's elements (binary, uint5, signed, ...)",
        "input_encoding": "encoding of the model's input",
        "in_encoding": "encoding of a layer's input",
        "out_encoding": "encoding of a layer's output (scores: the last layer)",
        "weights": "weight kind (binary, ternary, w2, residual with average bits)",
        "bit_mix": "share of 1/2/3-bit weights of a residual layer",
        "inputs": "the layers a layer of a graph reads (absent in a chain)",
        "input_shape": ("elements", "input shape (H, W, C) or (N,)"),
        "in_shape": ("elements", "shape of a layer's input"),
        "out_shape": ("elements", "shape of a layer's output"),
        "difference": "first output difference from the golden model (null: none)",
        "diagnosis": "first layer and element that differ, from the tapped re-run",
        "exactness": "integer torch vs golden, in words",
        "notes": "remarks on the result (what was skipped and why)",
        "from": "start cell of the critical path",
        "to": "end cell of the critical path",
        "pe": "processing elements (output rows in parallel)",
        "simd": "input lanes per processing element",
        "ram_style": "where the layer's weight memory goes: block (block RAM) or logic "
                     "(absent: synthesis chooses)",
        "sf": "synapse fold: input vectors per output row (MW / SIMD)",
        "nf": "neuron fold: output row groups (MH / PE)",
        "seed": "random seed",
        "seeds": "nextpnr seeds run",
        "network_weight": "a training network's weight in the cost fit against a component's "
                          "(chosen by leave-one-out on the training sets)",
        "threads": ("threads", "threads of the CPU engines"),
        "batch": ("frames", "batch size (frames per call)"),
        "epochs": ("epochs", "training epochs"),
        "jobs": ("jobs", "training jobs, one per (model, seed)"),
        "workers": ("workers", "worker processes the jobs share"),
        "baud": ("bit/s", "UART baud rate"),
        "node_nm": ("nm", "ASIC technology node"),
        "clock_mhz": ("MHz", "clock frequency of the design"),
        "target_mhz": ("MHz", "clock constraint given to nextpnr"),
        "target_frames_per_s": ("frames/s", "frame rate the folding was chosen for"),
        "requested_frames_per_s": ("frames/s", "frame rate the design was folded for "
                                               "(null: none was requested)"),
        "gap": ("probability", "probability of an idle input cycle"),
        "backpressure": ("probability", "probability that the sink refuses a cycle"),
        "frames": ("frames", "frames run"),
        "selftest_frames": ("frames", "frames in the board's self-test ROM (0: none)"),
        "scores": "the board's network streams scores (not only labels)",
        "trained": "the zoo model has trained weights (else synthetic)",
        "build_cached": "the simulator build was reused from the cache",
        "params": ("weights", "parameters (weights)"),
        "weight_bits": ("bits", "bits of all weights"),
        "threshold_bits": ("bits", "bits of all thresholds"),
        "float32_bits": ("bits", "bits of the weights as float32"),
        "thresholds": ("levels", "threshold levels per output"),
        "acc_width": ("bits", "accumulator width"),
        "bits": ("bits", "bits per element"),
        "memory_bits": ("bits", "bits of the memories the design declares, before mapping"),
        "bram_bits": ("bits", "block RAM bits of the FPGA"),
        "avg_bits": ("bits", "average bits per weight"),
        "input_bits_per_frame": ("bits/frame", "input bits per frame"),
        "elements_per_beat": ("elements", "stream elements per tdata beat"),
        "beats_per_frame": ("beats", "beats per frame"),
        "tdata_width": ("bits", "tdata width"),
        "frames_timed": ("frames", "frames the engine was timed on"),
        "repetitions": ("runs", "timed repetitions"),
        "float32_weight_bytes": ("bytes", "bytes of the weights as float32"),
        "packed_weight_bytes": ("bytes", "bytes of the packed engine's weights (padded words)"),
        "weight_compression_vs_float32": ("ratio", "float32 bits / weight bits"),
        "vco_mhz": ("MHz", "PLL VCO frequency"),
        "model_compression_vs_float32": ("ratio", "float32 bits / (weight + threshold bits)"),
        "configs": ("configs", "configs the statistic is over"),
        "source": "what an exploration starts from: an architecture or zoo:NAME",
        "objectives": "objectives of the search, accuracy first",
        "study": "Optuna study name",
        "storage": "database URL of the study",
        "where": "where the jobs ran (this process, a local or an existing Dask cluster)",
        "trial": "trial number in the study",
        "activations": "activation encoding of each hidden layer",
        "widths": ("units", "width of each hidden dense layer"),
        "speed": ("ratio", "folding speed-up over the required frame rate"),
        "feasible": "meets every constraint (board resources, frame rate)",
        "pareto": "trial numbers of the Pareto front (feasible, not dominated)",
        "why": "why a model does not meet the constraint",
        "fingerprint": "digest of the zoo recipe's model before training (docs/design.md, Zoo)",
    }),
    **_keys(MODELLED, {
        "makespan_s": ("s", "time until the last worker would finish: the recorded "
                            "training times, longest first, each to the first free worker"),
        "cycles_per_frame": ("cycles", "per frame at the bottleneck stage (cycle model)"),
        "latency_cycles": ("cycles", "from a frame's first input to its output (cycle model)"),
        "latency_cycles_max": ("cycles", "upper bound on a frame's latency without stalls"),
        "steps_per_vector": ("cycles", "MVTU steps per input vector (SF x NF)"),
        "pipeline_latency_cycles": ("cycles", "pipeline depth of the stage"),
        "macs_per_frame": ("MACs", "multiply-accumulates per frame"),
        "bit_macs_per_frame": ("MACs", "1-bit x 1-bit MACs per frame"),
        "frames_per_s": ("frames/s", "frames per second at the clock (cycles model)"),
        "uart_frames_per_s": ("frames/s", "frames per second the UART protocol carries"),
        "lut": ("LUTs", "LUTs (LUT4 on ice40/ecp5, LUT6 on xc7; ECP5 carries count 2)"),
        "ff": ("FFs", "flip-flops"),
        "carry": ("cells", "carry cells"),
        "lutram": ("cells", "LUT RAM cells"),
        "bram": ("blocks", "block RAMs (ice40 4 kbit, ecp5 DP16KD, xc7 RAMB36)"),
        "dsp": ("blocks", "DSP blocks"),
        "mux": ("cells", "wide-mux cells (ecp5 PFUMX/L6MUX21, xc7 MUXF7/8)"),
        "other": ("cells", "other logic cells"),
        "area_um2": ("um^2", "ASIC area"),
        "ge": ("GE", "ASIC area in NAND2 gate equivalents"),
        "finn_r_lut": ("LUTs", "FINN-R's analytical LUT estimate"),
        "finn_r_bram18": ("RAMB18s", "FINN-R's RAMB18 estimate"),
        "energy_pj_per_frame": ("pJ", "ASIC energy per frame"),
        "energy_compute_pj": ("pJ", "compute energy per frame"),
        "energy_weight_memory_pj": ("pJ", "weight memory energy per frame"),
        "energy_activation_buffers_pj": ("pJ", "activation buffer energy per frame"),
        "energy_fifos_pj": ("pJ", "FIFO energy per frame"),
        "ops_per_joule": ("ops/J", "operations per joule (2 per MAC)"),
        "estimate": "the cost model's estimate",
        "suggested_cycles_per_frame": ("cycles", "cycles per frame of the suggested folding"),
    }),
    **_keys(MEASURED, {
        "accuracy": ("fraction", "test-split accuracy of the golden integer model"),
        "float_accuracy": ("fraction", "test-split accuracy of the float torch model"),
        "integer_accuracy": ("fraction", "test-split accuracy of the exported integer model"),
        "torch_float_accuracy": ("fraction", "test-split accuracy of the checkpoint in float mode"),
        "float_agreement": ("fraction", "share of frames where float torch and golden agree"),
        "seed_accuracies": ("fraction", "accuracy of each training seed"),
        "mean_accuracy": ("fraction", "mean accuracy over the seeds"),
        "training_seeds": "training seeds in mean_accuracy (zoo models: from the run record)",
        "exact": "integer torch (or packed) equals golden on every layer",
        "passed": "the design's output equals the golden model's (several: every one's)",
        "timing_met": "Fmax reaches the clock",
        "fmax_mhz": ("MHz", "achieved Fmax from nextpnr (synth: median over seeds)"),
        "fmax_mhz_per_seed": ("MHz", "achieved Fmax of each seed"),
        "logic_ns": ("ns", "logic delay of the critical path"),
        "routing_ns": ("ns", "routing delay of the critical path"),
        "total_ns": ("ns", "delay of the critical path"),
        "logic_steps": ("cells", "logic cells on the critical path"),
        "synthesis": "count from Yosys synthesis",
        "error": ("fraction", "(estimate - synthesis) / synthesis"),
        "median_abs_error": ("fraction", "median of the absolute errors"),
        "max_abs_error": ("fraction", "largest absolute error"),
        "mean_error": ("fraction", "mean of the signed errors"),
        "networks": ("networks", "networks the statistics are over"),
        "achieved_frames_per_s": ("frames/s", "frames per second at the measured Fmax"),
        "measured_cycles_per_frame": ("cycles", "cycles per frame in simulation (first cycle "
                                                "after reset to the last output beat)"),
        "measured_lut": ("LUTs", "LUTs from Yosys synthesis"),
        "measured_ff": ("FFs", "flip-flops from Yosys synthesis"),
        "measured_bram": ("blocks", "block RAMs from Yosys synthesis"),
        "measured_frames_per_s": ("frames/s", "frames per second on the CPU (best repetition)"),
        "latency_s": ("s", "wall time of one batch (best repetition)"),
        "median_latency_s": ("s", "wall time of one batch (median repetition)"),
        "packed_over_onnxruntime": ("ratio", "packed / float32 onnxruntime frames per second "
                                             "(best)"),
        "packed_over_onnxruntime_median": ("ratio", "packed / float32 onnxruntime frames per "
                                                    "second (median)"),
        "packed_over_torch": ("ratio", "packed / float32 torch frames per second (best)"),
        "packed_over_torch_median": ("ratio", "packed / float32 torch frames per second "
                                              "(median)"),
        "packed_over_golden": ("ratio", "packed / golden frames per second"),
        "packed_over_lce": ("ratio", "packed / Larq Compute Engine frames per second (best)"),
        "packed_over_lce_median": ("ratio", "packed / Larq Compute Engine frames per second "
                                            "(median)"),
        "packed_macs_per_s": ("MAC/s", "1-bit MACs per second of the packed engine"),
        "ceiling_macs_per_s": ("MAC/s", "1-bit MACs per second of a vector XOR-popcount loop "
                                        "in L1 (eight per accumulator update) on the "
                                        "benchmark's threads"),
        "ceiling_fraction": ("fraction", "packed_macs_per_s / ceiling_macs_per_s"),
        "ceiling_1_thread_macs_per_s": ("MAC/s", "the same loop on one thread (with "
                                                 "--threads N > 1)"),
        "ceiling_threads_speedup": ("ratio", "ceiling_macs_per_s / ceiling_1_thread_macs_per_s: "
                                             "how far the machine itself scales to N threads"),
        "relative_to": ("", "name of the model whose packed engine --relative-to timed in the "
                            "same rounds (null without it)"),
        "time_over_reference": ("ratio", "packed latency / the --relative-to model's packed "
                                         "latency (best), same rounds"),
        "threads_speedup": ("ratio", "packed latency on one thread / on --threads threads "
                                     "(best), same rounds"),
        "cpu_clock_mhz": ("MHz", "CPU clock measured by a dependent chain of 1-cycle "
                                 "operations"),
        "sim_cycles": ("cycles", "clock cycles simulated"),
        "sim_cycles_per_s": ("cycles/s", "simulated cycles per wall-clock second"),
        "sim_frames_per_s": ("frames/s", "simulated frames per wall-clock second"),
        "build_s": ("s", "build time"),
        "sim_s": ("s", "simulation time"),
        "total_s": ("s", "time of the whole command"),
        "train_s": ("s", "training time"),
        "trial_s": ("s", "time of an exploration trial's job (train, score, estimate)"),
        "pnr_s": ("s", "place-and-route time of each seed"),
    }),
}


# --- shapes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Object:
    """A JSON object with named keys (``name?``: optional). A nested spec or None (a leaf in
    :data:`KEYS`) per key; ``rest`` (a :class:`MapOf`) takes any other key, a data key such
    as an estimated target; ``kind`` overrides the kind of the leaves inside (``counts`` are
    measured)."""

    fields: dict
    doc: str = ""
    kind: str | None = None
    rest: MapOf | None = field(default=None)


@dataclass(frozen=True)
class ListOf:
    item: object
    doc: str = ""


@dataclass(frozen=True)
class MapOf:
    """An object whose keys are data (``keys`` says what they are), all values alike."""

    value: object
    keys: str
    doc: str = ""


_COUNT_FIELDS = {f"{key}?": None for key in ("lut", "ff", "carry", "lutram", "bram", "dsp",
                                            "mux", "other")}
COUNTS = Object(_COUNT_FIELDS, "Yosys cell counts of the design", kind=MEASURED)
FOLDING = MapOf(Object({"pe": None, "simd": None, "ram_style?": None}), "layer",
                "PE and SIMD of each layer, and where its weight memory goes")
_COSTS = {f"{key}?": None for key in ("lut", "ff", "carry", "lutram", "bram", "dsp",
                                      "area_um2", "ge")}
def _held_out_networks(doc: str) -> Object:
    return Object({
        "family": None, "split": None,
        "rows": ListOf(Object({"network": None, "folding": MapOf(
            None, "layer", "PExSIMD of each layer"), "cycles_per_frame": None},
                              rest=MapOf(Object({"estimate": None, "synthesis": None,
                                                 "error": None}), "target")),
                       "one row per held-out network: lut, ff, ... and fmax_mhz"),
        "stats": MapOf(Object({"median_abs_error": None, "max_abs_error": None,
                               "mean_error": None, "exact": None, "networks": None}),
                       "target", "error statistics per target")}, doc)


_ENERGY = {f"{key}?": None for key in ("energy_compute_pj", "energy_weight_memory_pj",
                                       "energy_activation_buffers_pj", "energy_fifos_pj")}
_TRAINED = {"model": None, "dataset": None, "seed": None, "epochs": None, "train_s": None,
            "float_accuracy": None, "integer_accuracy?": None, "checkpoint_path?": None,
            "model_path?": None}
_TIMING = Object({"latency_s": None, "median_latency_s": None, "measured_frames_per_s": None,
                  "repetitions": None, "frames_timed": None}, "timing of one engine")
_PACKING = Object({"kind?": None, "encoding": None, "bits": None, "elements_per_beat": None,
                   "beats_per_frame": None, "tdata_width": None})
_OPS = MapOf(None, "operation", "operations per frame by kind")
_VERIFY = Object({
    "top": None, "model": None, "design_path": None, "sim": None, "frames": None,
    "passed": None, "difference": None, "layer": None, "waveform_path": None,
    "diagnosis": None, "build_s": None, "build_cached": None, "sim_s": None,
    "total_s": None, "sim_cycles": None, "sim_cycles_per_s": None,
    "sim_frames_per_s": None, "measured_cycles_per_frame": None, "cycles_per_frame": None,
    "backpressure": None, "gap": None, "seed": None, "work_path": None, "log_path": None,
})

COMMANDS: dict[str, Object] = {
    "summary": Object({
        "model": None, "input_shape": None, "input_encoding": None,
        "input_bits_per_frame": None,
        "layers": ListOf(Object({
            "layer": None, "kind": None, "in_shape": None, "out_shape": None,
            "in_encoding": None, "out_encoding": None, "weights": None, "bit_mix": None,
            "params": None, "weight_bits": None, "ops": _OPS, "acc_width": None,
            "thresholds": None, "threshold_bits": None, "inputs?": None}),
            "one entry per layer"),
        "totals": Object({
            "params": None, "weight_bits": None, "threshold_bits": None, "float32_bits": None,
            "weight_compression_vs_float32": None, "model_compression_vs_float32": None,
            "ops": _OPS}, "the whole network"),
    }),
    "run": Object({
        "model": None, "model_path": None, "dataset": None, "frames": None, "accuracy": None,
        "exact?": None, "exactness?": None, "torch_float_accuracy?": None,
        "float_agreement?": None,
    }),
    "train": Object(_TRAINED),
    "zoo list": Object({"models": ListOf(Object({
        "model": None, "model_path": None, "trained": None, "dataset?": None, "epochs?": None,
        "seed?": None, "float_accuracy?": None, "integer_accuracy?": None,
        "fingerprint?": None}), "one entry per zoo model")}),
    "zoo build": Object({"models": ListOf(Object({
        **_TRAINED, "seed_accuracies?": None, "mean_accuracy?": None}),
        "one entry per model trained")}),
    "zoo table": Object({"models": ListOf(Object({
        **_TRAINED, "seed_accuracies?": None, "mean_accuracy?": None}),
        "one entry per model, from the run record"),
        "rebuild?": Object({"jobs": None, "workers": None, "train_s": None,
                            "makespan_s": None})}),
    "bench cpu": Object({
        "model": None, "model_path": None, "threads": None, "cpu": None,
        "cpu_clock_mhz": None, "bit_macs_per_frame": None, "ceiling_macs_per_s": None,
        "float32_weight_bytes": None, "packed_weight_bytes": None, "relative_to": None,
        "ceiling_1_thread_macs_per_s?": None, "ceiling_threads_speedup?": None,
        "batches": ListOf(Object({
            "batch": None, "onnxruntime": _TIMING, "torch": _TIMING, "packed": _TIMING,
            "golden": _TIMING, "packed_over_onnxruntime": None,
            "packed_over_onnxruntime_median": None, "packed_over_torch": None,
            "packed_over_torch_median": None, "packed_over_golden": None,
            "packed_macs_per_s": None, "ceiling_fraction": None, "exact": None,
            "lce?": _TIMING, "packed_over_lce?": None, "packed_over_lce_median?": None,
            "reference?": _TIMING, "time_over_reference?": None, "packed_1_thread?": _TIMING,
            "threads_speedup?": None}),
            "one entry per batch size"),
        "lce?": Object({"lce_version": None, "tensorflow_version": None, "setup": None},
                       "the Larq Compute Engine peer (--lce)"),
    }),
    "gen": Object({
        "design_path": None, "top": None, "model": None, "ir_sha256": None, "mode": None,
        "adders?": None, "output": None,
        "ports": MapOf(None, "port", "width of each port"),
        "packing": Object({"input": _PACKING, "output": _PACKING},
                          "how elements are packed into the input and output streams"),
        "cycles_per_frame": None, "bottleneck": None,
        "stage_cycles_per_frame": MapOf(None, "stage", "cycles per frame of each stage"),
        "latency_cycles_max": None, "folding": FOLDING,
        "folded_for": Object({"target_frames_per_s": None, "clock_mhz": None,
                              "clock_source?": None, "route_note?": None},
                             "what --fold auto folded for (null: not auto)"),
        "layers": ListOf(Object({
            "stage": None, "layer": None, "kind": None, "cycles_per_frame": None, "pe?": None,
            "simd?": None, "sf?": None, "nf?": None, "steps_per_vector?": None,
            "weight_bits?": None, "acc_width?": None, "pipeline_latency_cycles?": None}),
            "one entry per pipeline stage"),
        "versions": MapOf(None, "package", "versions of hwbnn and the generator's tools"),
        "verilog": None,
    }),
    "verify": _VERIFY,
    # ``hwbnn verify`` of several targets: each one's report, as ``verify`` prints one.
    "verify (several targets)": Object({
        "designs": ListOf(_VERIFY, "one report per target, in the order given"),
        "passed": None}),
    "synth": Object({
        "top": None, "family": None, "device": None, "counts": COUNTS,
        "cells": MapOf(None, "cell type", "Yosys cells of the design by type"),
        "wrapper_counts": Object(_COUNT_FIELDS, "cell counts of the pin-limited wrapper",
                                 kind=MEASURED),
        "memory_bits": None, "fmax_mhz": None, "fmax_mhz_per_seed": None, "seeds": None,
        "target_mhz": None, "router": None, "pnr_s": None,
        "critical_path": Object({"from": None, "to": None, "logic_ns": None,
                                 "routing_ns": None, "total_ns": None, "logic_steps": None},
                                "the median seed's critical register-to-register path"),
        "notes": None, "work_path": None,
        "blocks": MapOf(Object(_COUNT_FIELDS, "Yosys cell counts of the block", kind=MEASURED),
                        "block", "counts of each block from a pass that keeps the blocks "
                        "apart (--blocks; '(top)': the cells outside every block)"),
        "block_comparison?": ListOf(Object(
            {"block": None, "layer": None, "kind": None},
            rest=MapOf(Object({"estimate": None, "synthesis": None}), "resource")),
            "each block's estimate beside its synthesized count (--blocks)"),
        "throughput?": Object({
            "fmax_mhz": None, "cycles_per_frame": None, "achieved_frames_per_s": None,
            "requested_frames_per_s": None, "met": None, "suggested_folding": None,
            "suggested_cycles_per_frame": None, "note": None},
            "frames/s at the measured Fmax against the rate the design was folded for"),
    }),
    "build": Object({
        "model": None, "model_path": None, "board": None, "clock_mhz": None,
        "pll": Object({"parameters": MapOf(None, "PLL primitive parameter",
                                           "divider settings, as the primitive names them"),
                       "vco_mhz": None}, "PLL setting (null: the oscillator clocks it)"),
        "baud": None, "folding": FOLDING, "cycles_per_frame": None, "frames_per_s": None,
        "uart_frames_per_s": None, "counts": COUNTS,
        "available": Object({"lut": None, "ff": None, "bram": None, "bram_bits": None,
                             "dsp": None}, "what the FPGA has", kind=FACT),
        "fmax_mhz": None, "timing_met": None, "bitstream_path": None, "selftest_frames": None,
        "scores": None, "build_path": None, "report_path": None, "notes": None,
        "build_s": None,
    }),
    "cost": Object({
        "model": None, "family": None,
        "layers": ListOf(Object({
            "layer": None, **_COSTS, "pe?": None, "simd?": None, "cycles_per_frame?": None,
            "finn_r_lut?": None, "finn_r_bram18?": None, **_ENERGY}), "one row per layer"),
        "totals": Object({
            **_COSTS, "cycles_per_frame": None, "latency_cycles": None, "clock_mhz": None,
            "clock_source": None, "frames_per_s": None, "macs_per_frame": None,
            "finn_r_lut?": None,
            "finn_r_bram18?": None, **_ENERGY, "energy_pj_per_frame?": None,
            "ops_per_joule?": None, "node_nm?": None}, "the whole network"),
        "components": ListOf(Object({"component": None, "layer": None, "kind": None,
                                     **_COSTS}), "one row per generated component"),
        "route_note?": None,
    }),
    "cost calibrate": Object({
        "family": None, "split": None,
        "rows": ListOf(Object({"config": None}, rest=MapOf(Object(
            {"estimate": None, "synthesis": None, "error": None}), "target")),
            "one row per validated config, its figures per estimated target (lut, ff, ...)"),
        "stats": MapOf(Object({"median_abs_error": None, "max_abs_error": None,
                               "configs": None}), "target", "error statistics per target"),
        "networks?": _held_out_networks("held-out whole networks (hwbnn/cost/networks.py)"),
        "unrolled?": _held_out_networks("held-out unrolled networks (every weight layer an "
                                        "unrolled unit; networks.UNROLLED_NETWORKS)"),
        "network_weight": None,
    }),
    "sweep": Object({"mixes": ListOf(Object({
        "mix": None, "avg_bits": None, "accuracy": None, "lut": None, "ff": None, "bram": None,
        "finn_r_lut": None, "cycles_per_frame": None, "frames_per_s": None,
        "energy_pj_per_frame": None, "energy_compute_pj": None, "energy_weight_memory_pj": None,
        "energy_activation_buffers_pj": None, "energy_fifos_pj": None, "area_um2": None,
        "ops_per_joule": None, "weight_bits": None, "folding": FOLDING}),
        "one row per mix")}),
    "explore": Object({
        "source": None, "dataset": None, "family": None, "board": None,
        "target_frames_per_s": None, "clock_mhz": None, "objectives": None, "study": None,
        "storage": None, "where": None, "total_s": None, "pareto": None,
        "trials": ListOf(Object({
            "trial": None, "weights": None, "activations": None, "widths?": None,
            "speed?": None, "accuracy": None, "lut": None, "ff": None, "bram": None,
            "energy_pj_per_frame": None, "cycles_per_frame": None, "frames_per_s": None,
            "weight_bits": None, "feasible": None,
            "violations": MapOf(None, "constraint", "how far each constraint is broken, "
                                "relative to its limit (> 0: broken)", ),
            "folding": FOLDING, "model_path": None, "trial_s": None,
            "measured_lut?": None, "measured_ff?": None, "measured_bram?": None}),
            "every finished trial of the study"),
        "references": ListOf(Object({
            "model": None, "model_path": None, "accuracy": None, "lut?": None, "ff?": None,
            "bram?": None, "energy_pj_per_frame?": None, "cycles_per_frame?": None,
            "frames_per_s?": None, "weight_bits?": None, "feasible": None, "why?": None}),
            "the zoo models under the same constraint")}),
    "compare": Object({"models": ListOf(Object({
        "model": None, "model_path": None, "mode": None, "adders?": None, "accuracy": None,
        "mean_accuracy?": None,
        "training_seeds?": None, "weight_bits": None, "lut": None,
        "ff": None, "bram": None, "cycles_per_frame": None, "frames_per_s": None,
        "energy_pj_per_frame": None, "measured_lut?": None, "measured_ff?": None,
        "measured_bram?": None}), "one row per model")}),
}


def versioned(data: dict) -> dict:
    """``data`` with ``schema_version`` first: what every ``--json`` prints."""
    if not isinstance(data, dict):
        raise TypeError(f"a JSON output is an object, not {type(data).__name__}")
    return {"schema_version": SCHEMA_VERSION, **data}


def validate(command: str, data) -> None:
    """Raise :class:`SchemaError` naming the first key of ``data`` (the ``--json`` output of
    ``command``) that the schema does not know, misses or shapes otherwise."""
    if command not in COMMANDS:
        raise SchemaError(f"no schema for command {command!r}")
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise SchemaError(f"{command}: schema_version must be {SCHEMA_VERSION}")
    body = {key: value for key, value in data.items() if key != "schema_version"}
    _check(COMMANDS[command], body, command)


def _check(spec, value, path: str) -> None:
    if value is None:
        return
    if spec is None:
        if isinstance(value, dict) or (isinstance(value, list)
                                       and any(isinstance(v, dict) for v in value)):
            raise SchemaError(f"{path}: a plain value was expected, not an object")
        return
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            raise SchemaError(f"{path}: a list was expected")
        for index, item in enumerate(value):
            _check(spec.item, item, f"{path}[{index}]")
        return
    if not isinstance(value, dict):
        raise SchemaError(f"{path}: an object was expected")
    if isinstance(spec, MapOf):
        for key, item in value.items():
            _check(spec.value, item, f"{path}.{key}")
        return
    known = {name.rstrip("?"): sub for name, sub in spec.fields.items()}
    for key, item in value.items():
        if key in known:
            _check(known[key], item, f"{path}.{key}")
        elif spec.rest is not None:
            _check(spec.rest.value, item, f"{path}.{key}")
        else:
            raise SchemaError(f"{path}: unknown key {key!r}")
    missing = [name for name in spec.fields if not name.endswith("?") and name not in value]
    if missing:
        raise SchemaError(f"{path}: missing key {missing[0]!r}")


def rows(spec, path: str = "", kind: str | None = None) -> list[tuple]:
    """(leaf key or None, path, unit, kind, meaning) of every key below ``spec``."""
    out: list[tuple] = []
    if isinstance(spec, ListOf):
        return rows(spec.item, path + "[]", kind)
    if isinstance(spec, MapOf):
        return rows(spec.value, f"{path}.<{spec.keys}>", kind)
    if not isinstance(spec, Object):
        return out
    inner = spec.kind if spec.kind is not None else kind
    for name, sub in spec.fields.items():
        key = name.rstrip("?")
        where = f"{path}.{key}" if path else key
        optional = " (optional)" if name.endswith("?") else ""
        if sub is None:
            entry = KEYS[key]
            out.append((key, where, entry.unit, entry.kind if inner is None else inner,
                        entry.doc + optional))
        else:
            doc = sub.doc or (f"one entry per {sub.keys}" if isinstance(sub, MapOf) else "")
            out.append((None, where, "", "", doc + optional))
            out += rows(sub, where, inner)
    if spec.rest is not None:
        out += rows(spec.rest, path, inner)
    return out


def render() -> str:
    """docs/json-schema.md."""
    lines = [
        "# JSON output schema",
        "",
        f"Schema version {SCHEMA_VERSION}. Generated from `hwbnn/schema.py` by "
        "`python -m hwbnn.schema > docs/json-schema.md`; a test holds every command's "
        "`--json` output to it (see docs/design.md, \"JSON schema and progress\").",
        "",
        "- Every printed object has `schema_version` first; a new or renamed key raises it.",
        "- Keys are snake_case; units are in the name: `_s` seconds, `_mhz` MHz, `_per_s` per "
        "second, `_pj` picojoules, `_ns` nanoseconds, `_um2` square micrometres, `_bits`, "
        "`_bytes`; counts of cells and cycles say what they count.",
        "- A leaf key means one quantity in every command. **modelled**: computed by hwbnn's "
        "cycle or cost model; **measured**: from running something (a dataset, a simulator, "
        "Yosys, nextpnr, a CPU timer). A quantity that is both is `X` when modelled and "
        "`measured_X` when measured (`sim_X`: the simulator's own speed); resource counts at "
        "the top of a row are estimates, inside `counts` they are Yosys's.",
        "- `model` is the model's name, `model_path` where it was loaded from (a path or "
        "`zoo:NAME`); paths end in `_path` (a file name inside a design folder, the manifest's "
        "`verilog`, does not); per-layer lists name the layer `layer`.",
        "- Kind left blank: neither (a name, a setting, a structural figure of the model).",
        "- Any value may be `null` where it does not apply; `<layer>`-style keys are data.",
        "- Progress goes to stderr, never to stdout: `--json` output is pure JSON.",
    ]
    for command, spec in COMMANDS.items():
        lines += ["", f"## `hwbnn {command} --json`", "",
                  "| key | unit | kind | meaning |", "|---|---|---|---|",
                  "| `schema_version` |  |  | version of this schema |"]
        for _, where, unit, kind, doc in rows(spec):
            lines.append(f"| `{where}` | {unit} | {kind} | {doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
