"""NetworkTop: every layer of a NetworkIR as a streaming pipeline with AXI-Stream-like ends.

Per layer: matvec -> :class:`MatrixVectorThresholdUnit`; conv -> :class:`SlidingWindow`,
width converter, MVTU; maxpool -> :class:`MaxPool`. Between stages a width converter (when
the producer's elements per beat differ from the consumer's) and a FIFO. The input stream
``s_axis`` carries the frame in channels-last order, the output stream ``m_axis`` the last
layer's scores (``scores``) or one label beat per frame (``label``); packing as in
docs/design.md section 4 (see :meth:`NetworkTop.packing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits
from ..ir.network import Conv, MatVec, MaxPool, NetworkIR
from . import validated
from .fold import Folding
from .label_select import LabelSelect, label_width
from .maxpool import MaxPool as MaxPoolUnit
from .mvtu import MatrixVectorThresholdUnit
from .sliding_window import SlidingWindow
from .stream_utils import StreamFifo, WidthConverter
from .unrolled import UnrolledMatrixVectorUnit

OUTPUTS = ("scores", "label")
MODES = ("folded", "unrolled")


def bytes_width(bits: int) -> int:
    """``bits`` rounded up to a whole number of bytes (AXI-Stream tdata)."""
    return 8 * -(-bits // 8)


@dataclass
class Stage:
    """One component of the pipeline and the element chunks of its two streams."""

    name: str
    component: wiring.Component
    elem_bits_in: int
    chunk_in: int
    elem_bits_out: int
    chunk_out: int
    cycles_per_frame: int
    layer: str


class NetworkTop(wiring.Component):
    """The whole network as one streaming component.

    Parameters
    ----------
    net : NetworkIR
    folding : Folding | dict, optional
        A :class:`~hwbnn.hw.fold.Folding`, or ``{layer name: {"pe": int, "simd": int}}``;
        missing entries use the layer's own ``pe``/``simd`` or 1.
    output : str
        ``"scores"`` (the last layer's accumulators) or ``"label"`` (argmax).
    mode : str
        ``"folded"`` (:class:`MatrixVectorThresholdUnit`, weights in ROMs) or ``"unrolled"``
        (:class:`UnrolledMatrixVectorUnit`, constant weights, one vector per cycle; the
        folding is then PE = MH, SIMD = MW for every layer).
    fifo_depth : int, optional
        Beats of every FIFO between stages. By default a FIFO in front of an MVTU holds one
        input vector plus two beats (SF + 2, at most 512): the MVTU takes its input only
        during its first neuron fold, so the producer can run a whole vector ahead and the
        pipeline reaches the slowest stage's rate; other FIFOs hold 2 beats.

    Ports: ``s_axis`` (In stream, :attr:`in_width` bits), ``m_axis`` (Out stream,
    :attr:`out_width` bits); :class:`hwbnn.hw.gen.AxiStreamTop` renames them to
    ``s_axis_tdata``/``tvalid``/``tready`` and ``m_axis_*``.
    """

    @validated
    def __init__(self, net: NetworkIR, folding: Folding | dict | None = None, *,
                 output: str = "scores", mode: str = "folded", fifo_depth: int | None = None):
        if mode not in MODES:
            raise HwbnnError(f"mode must be 'folded' or 'unrolled', not {mode!r}")
        net.require_chain("hardware generation")
        if mode == "unrolled":
            folding = {layer.name: {"pe": layer.mh, "simd": layer.mw}
                       for layer in net.weight_layers}
        self._mode = mode
        if output not in OUTPUTS:
            raise HwbnnError(f"output must be 'scores' or 'label', not {output!r}")
        if fifo_depth is not None and (not isinstance(fifo_depth, int) or fifo_depth < 1):
            raise HwbnnError(f"fifo_depth must be a positive integer, not {fifo_depth!r}")
        self._net = net
        self._folding = Folding.parse(folding, net)
        self._output = output
        self._fifo_depth = fifo_depth
        self._stages = self._build_stages()
        first, last = self._stages[0], self._stages[-1]
        self._in_width = bytes_width(first.chunk_in * first.elem_bits_in)
        self._out_width = bytes_width(last.chunk_out * last.elem_bits_out)
        super().__init__({
            "s_axis": In(stream.Signature(unsigned(self._in_width))),
            "m_axis": Out(stream.Signature(unsigned(self._out_width))),
        })

    # --- structure ------------------------------------------------------------------------
    def _build_stages(self) -> list[Stage]:
        stages = []
        for layer in self._net.layers:
            if isinstance(layer, MaxPool):
                bits, c = encoding_bits(layer.encoding), layer.in_shape[2]
                unit = MaxPoolUnit(tuple(layer.in_shape), layer.kernel, layer.encoding)
                stages.append(Stage(layer.name, unit, bits, c, bits, c, unit.cycles_per_frame,
                                    layer.name))
                continue
            if not isinstance(layer, MatVec | Conv):
                raise HwbnnError(f"layer {layer.name}: unsupported layer type "
                                 f"{type(layer).__name__}")
            fold = self._folding[layer.name]
            if self._mode == "unrolled":
                mvtu = UnrolledMatrixVectorUnit(layer)
            else:
                mvtu = MatrixVectorThresholdUnit(layer, pe=fold.pe, simd=fold.simd)
            bits = mvtu.in_bits
            if isinstance(layer, Conv):
                c = layer.in_shape[2]
                window = SlidingWindow(tuple(layer.in_shape), layer.kernel, layer.padding, bits)
                stages.append(Stage(f"{layer.name}_window", window, bits, c, bits, c,
                                    window.cycles_per_frame, layer.name))
            stages.append(Stage(layer.name, mvtu, bits, mvtu.simd, mvtu.out_bits, mvtu.pe,
                                mvtu.cycles_per_vector * layer.output_pixels, layer.name))
        if self._output == "label":
            last = stages[-1]
            select = LabelSelect(self._net.num_classes, last.chunk_out, last.elem_bits_out)
            stages.append(Stage("label", select, last.elem_bits_out, last.chunk_out,
                                label_width(self._net.num_classes), 1,
                                self._net.num_classes // last.chunk_out, "label"))
        return stages

    @property
    def stages(self) -> list[Stage]:
        return list(self._stages)

    @property
    def folding(self) -> Folding:
        return self._folding

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def output(self) -> str:
        return self._output

    @property
    def in_width(self) -> int:
        return self._in_width

    @property
    def out_width(self) -> int:
        return self._out_width

    @property
    def input_beats_per_frame(self) -> int:
        first = self._stages[0]
        return int(np.prod(self._net.input_shape)) // first.chunk_in

    @property
    def output_beats_per_frame(self) -> int:
        return 1 if self._output == "label" else self._net.num_classes // self._stages[-1].chunk_out

    def packing(self) -> dict:
        """Input/output packing for testbenches (docs/design.md section 4)."""
        first, last = self._stages[0], self._stages[-1]
        return {
            "input": {"encoding": self._net.input_encoding, "bits": first.elem_bits_in,
                      "elements_per_beat": first.chunk_in,
                      "beats_per_frame": self.input_beats_per_frame,
                      "tdata_width": self._in_width},
            "output": {"kind": self._output,
                       "encoding": "signed" if self._output == "scores" else "unsigned",
                       "bits": last.elem_bits_out, "elements_per_beat": last.chunk_out,
                       "beats_per_frame": self.output_beats_per_frame,
                       "tdata_width": self._out_width},
        }

    def cycle_model(self) -> dict:
        """Steady-state cycles per frame: the slowest stage (II = 1 everywhere)."""
        per_stage = {stage.name: stage.cycles_per_frame for stage in self._stages}
        per_stage["input"] = self.input_beats_per_frame
        slowest = max(per_stage, key=per_stage.get)
        return {"cycles_per_frame": per_stage[slowest], "bottleneck": slowest,
                "stages": per_stage}

    def fifo_depth(self, stage: Stage) -> int:
        """Depth of the FIFO in front of ``stage``."""
        if self._fifo_depth is not None:
            return self._fifo_depth
        if isinstance(stage.component, MatrixVectorThresholdUnit):
            return stage.component.plan.input_fifo_depth
        return 2

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        upstream, upstream_chunk = None, self._stages[0].chunk_in
        for stage in self._stages:
            m.submodules[stage.name] = stage.component
            sinks = []
            if upstream_chunk != stage.chunk_in:
                conv = WidthConverter(stage.elem_bits_in, upstream_chunk, stage.chunk_in)
                m.submodules[f"{stage.name}_width"] = conv
                sinks.append(conv)
            if upstream is not None:
                fifo = StreamFifo(stage.chunk_in * stage.elem_bits_in, self.fifo_depth(stage))
                m.submodules[f"{stage.name}_fifo"] = fifo
                sinks.append(fifo)
            sinks.append(stage.component)
            for sink in sinks:
                if upstream is None:
                    self._link(m, self.s_axis, sink.i)
                else:
                    wiring.connect(m, upstream, sink.i)
                upstream = sink.o
            upstream_chunk = stage.chunk_out
        self._link(m, upstream, self.m_axis)
        return m

    @staticmethod
    def _link(m, source, sink):
        """Connect two streams whose payload widths may differ by byte padding."""
        width = min(len(source.payload), len(sink.payload))
        m.d.comb += [
            sink.payload.eq(source.payload[:width]),
            sink.valid.eq(source.valid),
            source.ready.eq(sink.ready),
        ]
