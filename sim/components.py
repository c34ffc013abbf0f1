"""The component table: every hardware unit in a range of shapes, foldings and encodings.

Each case is a component, the beats to send it and the beats it must return, computed
from :mod:`hwbnn.ref.golden` (MVTU, sliding window, max pooling) or an obvious model
(argmax, FIFO, re-chunking). All cases are instantiated side by side in one Verilog top
(:class:`ComponentFarm`, ports ``CASE_s_axis_*`` / ``CASE_m_axis_*``), so a single
Verilator build (~15 s) serves the whole table instead of one build per case.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth import Elaboratable, Module, Signal
from amaranth.back import verilog

from hwbnn.hw.label_select import LabelSelect, label_width
from hwbnn.hw.maxpool import MaxPool
from hwbnn.hw.mvtu import MatrixVectorThresholdUnit
from hwbnn.hw.network import bytes_width
from hwbnn.hw.packing import pack, pack_values
from hwbnn.hw.sliding_window import SlidingWindow
from hwbnn.hw.stream_utils import StreamFifo, WidthConverter
from hwbnn.hw.unrolled import UnrolledMatrixVectorUnit
from hwbnn.ref import golden

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.hw_layers import random_layer, random_values  # noqa: E402

VECTORS = 5  # input vectors per MVTU case
FRAMES = 2   # frames per sliding-window / max-pool case


@dataclass
class Case:
    """One component bench: the unit, its input beats and the output beats golden expects."""

    name: str
    component: object
    beats: list[int]
    expected: list[int]


def _mvtu_beats(layer, x, pe, simd):
    """Input and expected output beats of a matrix-vector unit on vectors ``x``."""
    out = golden.run_layer(layer, x).out
    beats = [b for row in x for b in pack_values(row, layer.in_encoding, simd)]
    if layer.produces_scores:
        expected = [b for row in out for b in pack(row, layer.acc_width, pe)]
    else:
        expected = [b for row in out for b in pack_values(row, layer.out_encoding, pe)]
    return beats, expected


# (weight kind, input encoding, output encoding or None = scores, MH, MW, PE, SIMD); pe=None
# marks the unrolled constant-weight unit (PE = MH, SIMD = MW). "grouped" is residual with
# one bitwidth per pair of inputs (the SIMD-group training option).
MVTU_TABLE = [
    ("binary", "binary", "binary", 8, 16, 1, 1),
    ("binary", "binary", "binary", 8, 16, 2, 4),
    ("binary", "binary", None, 6, 12, 3, 12),
    ("ternary", "ternary", "ternary", 6, 12, 1, 3),
    ("ternary", "ternary", None, 6, 12, 6, 4),
    ("binary", "uint8", "binary", 4, 12, 2, 4),      # first layer: 8-bit pixels
    ("residual", "uint5", "uint2", 6, 12, 2, 6),     # first layer: digits pixels
    ("binary", "uint2", "uint3", 6, 8, 2, 2),        # n-bit activations
    ("ternary", "uint3", "binary", 4, 12, 1, 12),
    ("residual", "binary", "binary", 6, 12, 3, 4),   # heterogeneous, folded bit-plane
    ("grouped", "binary", None, 6, 12, 2, 2),
    ("residual", "ternary", "uint2", 4, 8, 4, 8),
    ("residual", "uint2", "binary", 6, 8, None, None),  # heterogeneous, unrolled
    ("residual", "binary", None, 6, 12, None, None),
    ("ternary", "binary", "ternary", 4, 8, None, None),
]


def mvtu_cases() -> list[Case]:
    cases = []
    for n, (kind, in_enc, out_enc, mh, mw, pe, simd) in enumerate(MVTU_TABLE):
        rng = np.random.default_rng(1000 + n)
        layer = random_layer(rng, kind, in_enc, out_enc, mh=mh, mw=mw)
        x = random_values(rng, in_enc, (VECTORS, mw))
        mode = "unrolled" if pe is None else f"pe{pe}_simd{simd}"
        name = f"mvtu_{kind}_{in_enc}_{out_enc or 'scores'}_{mode}"
        if pe is None:
            unit = UnrolledMatrixVectorUnit(layer)
            beats, expected = _mvtu_beats(layer, x, mh, mw)
        else:
            unit = MatrixVectorThresholdUnit(layer, pe=pe, simd=simd)
            beats, expected = _mvtu_beats(layer, x, pe, simd)
        cases.append(Case(name, unit, beats, expected))
    return cases


# (H, W, C, kernel, padding, element bits)
WINDOW_TABLE = [(4, 4, 2, 3, 1, 1), (5, 3, 1, 2, 0, 5), (3, 3, 3, 3, 0, 2), (4, 5, 2, 3, 2, 1)]


def window_cases() -> list[Case]:
    cases = []
    for n, (h, w, c, k, pad, bits) in enumerate(WINDOW_TABLE):
        rng = np.random.default_rng(2000 + n)
        codes = rng.integers(0, 1 << bits, size=(FRAMES, h, w, c))
        patches = golden.im2col(codes, k, pad, 0)  # pad code 0 in every encoding
        beats = pack(codes.reshape(-1), bits, c)
        expected = pack(patches.reshape(-1), bits, c)
        cases.append(Case(f"window_{h}x{w}x{c}_k{k}_p{pad}_b{bits}",
                          SlidingWindow((h, w, c), k, pad, bits), beats, expected))
    return cases


# (H, W, C, kernel, encoding)
POOL_TABLE = [(4, 4, 3, 2, "binary"), (6, 6, 2, 3, "uint3"), (5, 4, 2, 2, "ternary"),
              (4, 6, 4, 2, "uint8")]


def pool_cases() -> list[Case]:
    cases = []
    for n, (h, w, c, k, encoding) in enumerate(POOL_TABLE):
        rng = np.random.default_rng(3000 + n)
        x = random_values(rng, encoding, (FRAMES, h, w, c))
        pooled = golden.maxpool(x, k)
        cases.append(Case(f"maxpool_{h}x{w}x{c}_k{k}_{encoding}",
                          MaxPool((h, w, c), k, encoding),
                          pack_values(x.reshape(-1), encoding, c),
                          pack_values(pooled.reshape(-1), encoding, c)))
    return cases


# (classes, scores per beat, bits, score range): small ranges make ties, which go to the
# lowest index.
LABEL_TABLE = [(10, 1, 7, 3), (10, 5, 9, 200), (4, 2, 3, 1), (12, 4, 12, 2000)]


def label_cases() -> list[Case]:
    cases = []
    for n, (classes, per_beat, bits, spread) in enumerate(LABEL_TABLE):
        rng = np.random.default_rng(4000 + n)
        scores = rng.integers(-spread, spread + 1, size=(6, classes))
        labels = np.argmax(scores, axis=1)
        cases.append(Case(f"label_{classes}c_{per_beat}pb_{bits}b",
                          LabelSelect(classes, per_beat, bits),
                          pack(scores.reshape(-1), bits, per_beat),
                          pack(labels, label_width(classes), 1)))
    return cases


# FIFO (width, depth); width converter (element bits, in count, out count)
FIFO_TABLE = [(8, 2), (13, 5), (1, 1)]
CONVERTER_TABLE = [(3, 4, 2), (1, 2, 8), (5, 3, 3), (2, 6, 4), (4, 1, 5)]


def stream_cases() -> list[Case]:
    cases = []
    for n, (width, depth) in enumerate(FIFO_TABLE):
        beats = [int(v) for v in np.random.default_rng(5000 + n).integers(0, 1 << width, 40)]
        cases.append(Case(f"fifo_w{width}_d{depth}", StreamFifo(width, depth), beats, beats))
    for n, (bits, n_in, n_out) in enumerate(CONVERTER_TABLE):
        elements = np.random.default_rng(6000 + n).integers(0, 1 << bits,
                                                            6 * n_in * n_out)
        cases.append(Case(f"width_b{bits}_{n_in}to{n_out}", WidthConverter(bits, n_in, n_out),
                          pack(elements, bits, n_in), pack(elements, bits, n_out)))
    return cases


def all_cases() -> list[Case]:
    return mvtu_cases() + window_cases() + pool_cases() + label_cases() + stream_cases()


class ComponentFarm(Elaboratable):
    """Every case's component with its own AXI-Stream-named ports (byte-padded tdata)."""

    def __init__(self, cases: list[Case]):
        self._cases = cases
        self._ports = {}
        for case in cases:
            unit = case.component
            widths = {"s_axis_tdata": bytes_width(len(unit.i.payload)), "s_axis_tvalid": 1,
                      "s_axis_tready": 1, "m_axis_tdata": bytes_width(len(unit.o.payload)),
                      "m_axis_tvalid": 1, "m_axis_tready": 1}
            self._ports[case.name] = {key: Signal(width, name=f"{case.name}_{key}")
                                      for key, width in widths.items()}

    @property
    def ports(self) -> list[Signal]:
        return [signal for ports in self._ports.values() for signal in ports.values()]

    def elaborate(self, platform):
        m = Module()
        for case in self._cases:
            unit, ports = case.component, self._ports[case.name]
            m.submodules[case.name] = unit
            m.d.comb += [
                unit.i.payload.eq(ports["s_axis_tdata"]),
                unit.i.valid.eq(ports["s_axis_tvalid"]),
                ports["s_axis_tready"].eq(unit.i.ready),
                ports["m_axis_tdata"].eq(unit.o.payload),
                ports["m_axis_tvalid"].eq(unit.o.valid),
                unit.o.ready.eq(ports["m_axis_tready"]),
            ]
        return m


def write_farm(cases: list[Case], path: Path, top: str = "component_farm") -> Path:
    farm = ComponentFarm(cases)
    path.write_text(verilog.convert(farm, name=top, ports=farm.ports, emit_src=False))
    return path


def case_config(case: Case, *, gap: float, backpressure: float, seed: int) -> dict:
    """Bench config of one case (all beats as one frame; see hwbnn.verify.bench)."""
    return {
        "name": case.name,
        "prefix": f"{case.name}_",
        "frames": [[format(b, "x") for b in case.beats]],
        "out_beats": len(case.expected),
        "expected": [[format(b, "x") for b in case.expected]],
        "gap": gap,
        "backpressure": backpressure,
        "seed": seed,
        "window": None,
        "max_wait_cycles": 2000,
    }
