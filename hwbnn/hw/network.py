# amaranth: UnusedElaboratable=no
# (The units a NetworkTop builds are elaborated with it; an unused top warns where it was made.)
"""NetworkTop: every layer of a NetworkIR as a streaming pipeline with AXI-Stream-like ends.

Per layer: matvec -> :class:`MatrixVectorThresholdUnit`; conv -> :class:`SlidingWindow`,
width converter, MVTU; maxpool / avgpool -> :class:`MaxPool` / :class:`AvgPool`;
globalavgpool -> :class:`GlobalAvgPool`; threshold -> :class:`ThresholdUnit`; add ->
:class:`AddUnit` (a join of two streams). Stages follow the graph (``NetworkIR.sources()``):
where a layer feeds several, :class:`StreamFork` copies its stream; in front of every stage
input a width converter (when the producer's elements per beat differ from the consumer's)
and a FIFO, deep enough on an add's shortcut input (:meth:`NetworkTop._size_shortcuts`). The
input stream
``s_axis`` carries the frame in channels-last order, the output stream ``m_axis`` the last
layer's scores (``scores``) or one label beat per frame (``label``); packing as in
docs/design.md section 4 (see :meth:`NetworkTop.packing`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from amaranth import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits
from ..ir.network import Add, AvgPool, Conv, GlobalAvgPool, MatVec, MaxPool, NetworkIR, Threshold
from . import MODES, validated
from .add import AddUnit
from .avgpool import AvgPool as AvgPoolUnit
from .fold import Folding
from .fork import StreamFork
from .global_pool import GlobalAvgPool as GlobalAvgPoolUnit
from .label_select import LabelSelect, label_width
from .maxpool import MaxPool as MaxPoolUnit
from .mvtu import MatrixVectorThresholdUnit
from .sliding_window import SlidingWindow
from .stream_utils import StreamFifo, WidthConverter
from .threshold import ThresholdUnit
from .unrolled import UnrolledMatrixVectorUnit, check_adders

OUTPUTS = ("scores", "label")
# Beats added to a shortcut FIFO beyond the buffering difference of the two paths: the
# fork's and the join's registers and one beat of rounding (see _size_shortcuts).
SHORTCUT_SLACK = 2


def bytes_width(bits: int) -> int:
    """``bits`` rounded up to a whole number of bytes (AXI-Stream tdata)."""
    return 8 * -(-bits // 8)


@dataclass
class Stage:
    """One component of the pipeline, the element chunks of its streams and where its
    inputs come from (``sources``: stage names, ``"input"`` for the network input; an add
    has two)."""

    name: str
    component: wiring.Component
    elem_bits_in: int
    chunk_in: int
    elem_bits_out: int
    chunk_out: int
    cycles_per_frame: int
    layer: str
    sources: tuple[str, ...] = ()
    elements_in: int = 0  # input elements per frame (of each input)
    buffer_elements: int = 0  # input elements the unit holds before an output must leave

    @property
    def in_ports(self) -> tuple[str, ...]:
        return ("i0", "i1") if len(self.sources) == 2 else ("i",)

    @property
    def beats_in(self) -> int:
        """Input beats per frame (of each input)."""
        return self.elements_in // self.chunk_in


@dataclass(frozen=True)
class Link:
    """What sits in front of input ``n`` of ``stage``: a width converter named ``converter``
    from the producer's ``chunk`` elements per beat (None where the chunks are equal) and a
    FIFO named ``fifo`` of ``fifo_depth`` beats (None for the network input)."""

    stage: Stage
    n: int
    chunk: int
    converter: str | None
    fifo: str | None
    fifo_depth: int


@dataclass(frozen=True)
class Fork:
    """A :class:`StreamFork` named ``name`` after ``producer`` (a stage or ``"input"``):
    branch 0 goes to ``reader``, branch 1 on to the next fork or the last reader."""

    name: str
    producer: str
    reader: tuple[str, int]
    width: int


class NetworkTop(wiring.Component):
    """The whole network as one streaming component.

    Parameters
    ----------
    net : NetworkIR
        A chain or a graph (format version 2: forks where a layer feeds two, adds as joins).
    folding : Folding | dict, optional
        A :class:`~hwbnn.hw.fold.Folding`, or ``{layer name: {"pe": int, "simd": int}}``;
        missing entries use the layer's own ``pe``/``simd`` or 1.
    output : str
        ``"scores"`` (the last layer's accumulators) or ``"label"`` (argmax).
    mode : str
        ``"folded"`` (:class:`MatrixVectorThresholdUnit`, weights in ROMs) or ``"unrolled"``
        (:class:`UnrolledMatrixVectorUnit`, constant weights, one vector per cycle; the
        folding is then PE = MH, SIMD = MW for every layer; chains of version-1 layers only).
    fifo_depth : int, optional
        Beats of every FIFO between stages. By default a FIFO in front of an MVTU holds one
        input vector plus two beats (SF + 2, at most 512): the MVTU takes its input only
        during its first neuron fold, so the producer can run a whole vector ahead and the
        pipeline reaches the slowest stage's rate; the FIFO on an add's shortcut input holds
        what the other input's path buffers (:meth:`shortcut_depths`); other FIFOs hold 2.
    shortcut_depths : dict, optional
        ``{add layer: (depth of input 0's FIFO, depth of input 1's FIFO)}`` overriding the
        computed depths (tests use it to show what a too-small FIFO does).
    adders : str
        Unrolled mode: how each layer sums its constant products, ``"trees"`` or ``"da4ml"``
        (:class:`UnrolledMatrixVectorUnit`).

    Ports: ``s_axis`` (In stream, :attr:`in_width` bits), ``m_axis`` (Out stream,
    :attr:`out_width` bits); :class:`hwbnn.hw.gen.AxiStreamTop` renames them to
    ``s_axis_tdata``/``tvalid``/``tready`` and ``m_axis_*``.
    """

    @validated
    def __init__(self, net: NetworkIR, folding: Folding | dict | None = None, *,
                 output: str = "scores", mode: str = "folded", fifo_depth: int | None = None,
                 shortcut_depths: dict | None = None, adders: str = "trees"):
        if mode not in MODES:
            raise HwbnnError(f"mode must be 'folded' or 'unrolled', not {mode!r}")
        if mode == "unrolled":
            net.require_chain("the unrolled mode")
            folding = Folding.unfolded(net)
        self._mode = mode
        check_adders(mode, adders)
        self._adders = adders
        if output not in OUTPUTS:
            raise HwbnnError(f"output must be 'scores' or 'label', not {output!r}")
        if fifo_depth is not None and (not isinstance(fifo_depth, int) or fifo_depth < 1):
            raise HwbnnError(f"fifo_depth must be a positive integer, not {fifo_depth!r}")
        self._net = net
        self._folding = Folding.parse(folding, net)
        self._output = output
        self._fifo_depth = fifo_depth
        self._stages = self._build_stages()
        self._by_name = {stage.name: stage for stage in self._stages}
        self._shortcut = self._size_shortcuts(shortcut_depths or {})
        first, last = self._stages[0], self._stages[-1]
        self._in_width = bytes_width(first.chunk_in * first.elem_bits_in)
        self._out_width = bytes_width(last.chunk_out * last.elem_bits_out)
        super().__init__({
            "s_axis": In(stream.Signature(unsigned(self._in_width))),
            "m_axis": Out(stream.Signature(unsigned(self._out_width))),
        })

    # --- structure ------------------------------------------------------------------------
    def _build_stages(self) -> list[Stage]:
        stages: list[Stage] = []
        exits: dict[int, Stage | None] = {-1: None}  # layer index -> the stage computing it
        in_bits = encoding_bits(self._net.input_encoding)
        for index, (layer, sources) in enumerate(zip(self._net.layers, self._net.sources(),
                                                     strict=True)):
            feeds = [exits[source] for source in sources]
            names = tuple("input" if feed is None else feed.name for feed in feeds)
            chunk = feeds[0].chunk_out if feeds[0] is not None else self._input_chunk(layer)
            bits = feeds[0].elem_bits_out if feeds[0] is not None else in_bits
            size = int(np.prod(getattr(layer, "in_shape", None) or (layer.mw,)))
            made = self._layer_stages(layer, names, chunk, bits, size)
            stages += made
            exits[index] = made[-1]
        if self._output == "label":
            last = stages[-1]
            select = LabelSelect(self._net.num_classes, last.chunk_out, last.elem_bits_out)
            stages.append(Stage("label", select, last.elem_bits_out, last.chunk_out,
                                label_width(self._net.num_classes), 1,
                                self._net.num_classes // last.chunk_out, "label",
                                (last.name,), self._net.num_classes, last.chunk_out))
        return stages

    def _input_chunk(self, layer) -> int:
        """Elements per input beat: what the first layer takes (a pixel for windows and pools,
        SIMD for a matvec)."""
        if isinstance(layer, MatVec):
            return self._folding[layer.name].simd
        return int(layer.in_shape[-1])

    def _layer_stages(self, layer, sources, chunk, bits, size) -> list[Stage]:
        """The stages of one IR layer, fed by ``sources`` with ``chunk`` elements per beat."""
        if isinstance(layer, MatVec | Conv):
            return self._weight_stages(layer, sources)
        if isinstance(layer, MaxPool | AvgPool):
            c = layer.in_shape[2]
            if isinstance(layer, MaxPool):
                unit = MaxPoolUnit(tuple(layer.in_shape), layer.kernel, layer.encoding)
            else:
                unit = AvgPoolUnit(tuple(layer.in_shape), layer.kernel, layer.stride,
                                   layer.encoding)
            out_bits = encoding_bits(layer.out_encoding)
            return [Stage(layer.name, unit, bits, c, out_bits, c, unit.cycles_per_frame,
                          layer.name, sources, size, unit.buffer_elements)]
        if isinstance(layer, GlobalAvgPool):
            c = layer.in_shape[2]
            unit = GlobalAvgPoolUnit(tuple(layer.in_shape), layer.encoding)
            return [Stage(layer.name, unit, bits, c, encoding_bits(layer.out_encoding), c,
                          unit.cycles_per_frame, layer.name, sources, size,
                          unit.buffer_elements)]
        if isinstance(layer, Threshold):
            unit = ThresholdUnit(layer.channels, chunk, layer.in_encoding, layer.thresholds,
                                 layer.out_encoding)
            return [Stage(layer.name, unit, bits, chunk, encoding_bits(layer.out_encoding),
                          chunk, size // chunk, layer.name, sources, size, chunk)]
        if isinstance(layer, Add):
            unit = AddUnit(layer.channels, chunk, tuple(layer.in_encodings),
                           tuple(int(s) for s in layer.scales), layer.out_encoding,
                           layer.thresholds)
            return [Stage(layer.name, unit, bits, chunk, encoding_bits(layer.out_encoding),
                          chunk, size // chunk, layer.name, sources, size, chunk)]
        raise HwbnnError(f"layer {layer.name}: unsupported layer type {type(layer).__name__}")

    def _weight_stages(self, layer, sources) -> list[Stage]:
        fold = self._folding[layer.name]
        if self._mode == "unrolled":
            mvtu = UnrolledMatrixVectorUnit(layer, adders=self._adders)
        else:
            mvtu = MatrixVectorThresholdUnit(layer, pe=fold.pe, simd=fold.simd,
                                             ram_style=fold.ram_style)
        bits = mvtu.in_bits
        stages = []
        vector = layer.mw * layer.output_pixels
        if isinstance(layer, Conv):
            c = layer.in_shape[2]
            window = SlidingWindow(tuple(layer.in_shape), layer.kernel, layer.padding, bits,
                                   stride=layer.stride)
            stages.append(Stage(f"{layer.name}_window", window, bits, c, bits, c,
                                window.cycles_per_frame, layer.name, sources,
                                int(np.prod(layer.in_shape)), window.buffer_elements))
            sources = (stages[-1].name,)
        stages.append(Stage(layer.name, mvtu, bits, mvtu.simd, mvtu.out_bits, mvtu.pe,
                            mvtu.cycles_per_vector * layer.output_pixels, layer.name,
                            sources, vector, layer.mw + mvtu.simd))
        return stages

    def layer_outputs(self) -> dict[str, Stage]:
        """Per IR layer, the stage whose output stream carries it (verification taps it)."""
        return {stage.layer: stage for stage in self._stages if stage.layer != "label"}

    def consumers(self) -> dict[str, list[tuple[str, int]]]:
        """Per stage (and ``"input"``), the (stage, input number) pairs reading its output,
        in stage order: two or more make a fork."""
        readers: dict[str, list[tuple[str, int]]] = {"input": []}
        for stage in self._stages:
            readers[stage.name] = []
            for n, source in enumerate(stage.sources):
                readers[source].append((stage.name, n))
        return readers

    # --- FIFO sizing ----------------------------------------------------------------------
    def _path_frames(self, stage: Stage, n: int, depth: int | None = None) -> float:
        """Frames that the path into input ``n`` of ``stage`` buffers, from the network input:
        its source's, plus the width converter and FIFO in front of the input."""
        source = stage.sources[n]
        frames = 0.0 if source == "input" else self._frames[source]
        chunk_before = (self._by_name[source].chunk_out if source != "input"
                        else stage.chunk_in)
        if chunk_before != stage.chunk_in:
            frames += (chunk_before + 2 * stage.chunk_in) / stage.elements_in
        if source == "input":
            return frames
        fifo = self.fifo_depth(stage, n) if depth is None else depth
        return frames + fifo * stage.chunk_in / stage.elements_in

    def _size_shortcuts(self, overrides: dict) -> dict[str, tuple[int, int]]:
        """Depths of the FIFOs in front of each add (join) from the cycle model.

        Model: every stage holds ``buffer_elements`` of its input before an output must leave
        (a sliding window two frames, an MVTU one vector, a pool K rows, the global pool a
        frame, elementwise units a beat); measured in frames, the buffering of a path from the
        network input to a stage adds up. At a join the input whose path buffers less (the
        shortcut) gets a FIFO holding the difference, in its beats, plus
        :data:`SHORTCUT_SLACK`: then the fork upstream never waits for the shortcut while the
        other path still has room, so the join never stalls the pipeline for good and runs
        at the slower path's rate. FINN sizes its FIFOs by RTL simulation of the design with
        deep FIFOs, keeping each one's peak fill ("insert appropriate-depth StreamingFIFOs
        through RTLSim that preserve throughput": ``InsertAndSetFIFODepths`` in FINN's
        ``finn/transformation/fpgadataflow/set_fifo_depths.py``); here the bound comes from
        the model, and tests confirm it by simulation with random backpressure
        (tests/test_hw_network_graph.py, tests/test_verify_graph.py).
        """
        adds = {stage.layer for stage in self._stages if len(stage.sources) == 2}
        for layer, pair in overrides.items():
            if layer not in adds:
                raise HwbnnError(f"shortcut_depths names {layer!r}, which is no add layer")
            if (not isinstance(pair, tuple | list) or len(pair) != 2
                    or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                               for d in pair)):
                raise HwbnnError(f"shortcut depths of {layer} must be two positive integers, "
                                 f"not {pair!r}")
        self._frames: dict[str, float] = {}
        depths: dict[str, tuple[int, int]] = {}
        self._shortcut = depths  # filled in stage order: fifo_depth reads earlier joins
        for stage in self._stages:
            if len(stage.sources) == 2:
                if stage.layer in overrides:
                    depths[stage.name] = tuple(int(d) for d in overrides[stage.layer])
                else:
                    base = [self._path_frames(stage, n, 0) for n in range(2)]
                    lead = max(base)
                    depths[stage.name] = tuple(
                        max(2, math.ceil((lead - frames) * stage.beats_in) + SHORTCUT_SLACK)
                        for frames in base)
            paths = [self._path_frames(stage, n) for n in range(len(stage.sources))]
            own = stage.buffer_elements / max(stage.elements_in, 1)
            self._frames[stage.name] = max(paths) + own
        return depths

    @property
    def shortcut_depths(self) -> dict[str, tuple[int, int]]:
        """``{add layer: (FIFO depth of input 0, of input 1)}``, in beats of the add's lanes."""
        return {self._by_name[name].layer: depths for name, depths in self._shortcut.items()}

    @property
    def stages(self) -> list[Stage]:
        return list(self._stages)

    @property
    def net(self) -> NetworkIR:
        return self._net

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

    def fifo_depth(self, stage: Stage, n: int | None = None) -> int:
        """Depth of the FIFO in front of input ``n`` of ``stage`` (None: the deepest)."""
        if n is None:
            return max(self.fifo_depth(stage, k) for k in range(len(stage.sources) or 1))
        if stage.name in self._shortcut:
            return self._shortcut[stage.name][n]
        if self._fifo_depth is not None:
            return self._fifo_depth
        if isinstance(stage.component, MatrixVectorThresholdUnit):
            return stage.component.plan.input_fifo_depth
        return 2

    def lane_layer(self, stage: Stage) -> str | None:
        """The weight layer whose PE sets the elements per beat of ``stage``'s input: threshold
        and add units take the lanes their first input's producer gives, back to an MVTU; None
        where a pixel (a window, a pool, the network input) sets them."""
        source = stage.sources[0] if stage.sources else "input"
        while source != "input":
            producer = self._by_name[source]
            if isinstance(producer.component, MatrixVectorThresholdUnit
                          | UnrolledMatrixVectorUnit):
                return producer.layer
            if not isinstance(producer.component, ThresholdUnit | AddUnit):
                return None
            source = producer.sources[0]
        return None

    # --- structure of the streams between stages ------------------------------------------
    def links(self) -> list[Link]:
        """Per stage input, in stage order: its width converter and FIFO (instance names as
        :meth:`elaborate` gives them)."""
        links = []
        for stage in self._stages:
            for n, source in enumerate(stage.sources):
                chunk = (self._stages[0].chunk_in if source == "input"
                         else self._by_name[source].chunk_out)
                suffix = "" if n == 0 else f"{n}"
                links.append(Link(
                    stage, n, chunk,
                    f"{stage.name}_width{suffix}" if chunk != stage.chunk_in else None,
                    f"{stage.name}_fifo{suffix}" if source != "input" else None,
                    self.fifo_depth(stage, n) if source != "input" else 0))
        return links

    def forks(self) -> list[Fork]:
        """The forks after every producer with several readers, in producer order."""
        first = self._stages[0]
        forks = []
        for name, readers in self.consumers().items():
            if name == "input":
                bits = first.chunk_in * first.elem_bits_in
            else:
                stage = self._by_name[name]
                bits = stage.chunk_out * stage.elem_bits_out
            forks += [Fork(f"{name}_fork{k or ''}", name, reader, bits)
                      for k, reader in enumerate(readers[:-1])]
        return forks

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        branches = self._branches(m)
        added = set()
        for link in self.links():
            stage = link.stage
            if stage.name not in added:
                m.submodules[stage.name] = stage.component
                added.add(stage.name)
            upstream = branches[(stage.name, link.n)]
            sinks = []
            if link.converter is not None:
                conv = WidthConverter(stage.elem_bits_in, link.chunk, stage.chunk_in)
                m.submodules[link.converter] = conv
                sinks.append(conv)
            if link.fifo is not None:
                fifo = StreamFifo(stage.chunk_in * stage.elem_bits_in, link.fifo_depth)
                m.submodules[link.fifo] = fifo
                sinks.append(fifo)
            for sink in sinks:
                self._connect(m, upstream, sink.i)
                upstream = sink.o
            self._connect(m, upstream, getattr(stage.component, stage.in_ports[link.n]))
        last = self._stages[-1]
        self._link(m, last.component.o, self.m_axis)
        return m

    def _branches(self, m) -> dict[tuple[str, int], object]:
        """The stream each stage input reads: a producer's output, or one branch of the
        forks after a producer with several readers."""
        streams = {"input": self.s_axis}
        streams.update({stage.name: stage.component.o for stage in self._stages})
        branches = {}
        for fork in self.forks():
            unit = StreamFork(fork.width)
            m.submodules[fork.name] = unit
            self._connect(m, streams[fork.producer], unit.i)
            branches[fork.reader] = unit.o0
            streams[fork.producer] = unit.o1
        for name, readers in self.consumers().items():
            if readers:
                branches[readers[-1]] = streams[name]
        return branches

    def _connect(self, m, source, sink):
        if source is self.s_axis:
            self._link(m, source, sink)
        else:
            wiring.connect(m, source, sink)

    @staticmethod
    def _link(m, source, sink):
        """Connect two streams whose payload widths may differ by byte padding."""
        width = min(len(source.payload), len(sink.payload))
        m.d.comb += [
            sink.payload.eq(source.payload[:width]),
            sink.valid.eq(source.valid),
            source.ready.eq(sink.ready),
        ]
