"""Fast bit-packed CPU engine: runs any NetworkIR on uint64 words, bit-exact with golden.

Every operation stays in the packed domain (the Riptide recipe: speedups come only when all
of it is binarized and fused): activations are bit planes of 64 channels per word, weights
are packed the same way once (transposed, so the vector loops run over rows), a layer is
XOR/AND-popcount over its windows (a direct convolution on the packed tensor, padding as
stored 0 words; only a first conv on few channels, e.g. RGB, packs whole integer patches), a
threshold pass is an integer compare-and-count that writes the next layer's packed words, max
pooling works on words (OR for binary, a nonzero/sign rule for ternary, a bit-serial max for
unsigned), and the label is the argmax of integer scores. The kernels live in
:mod:`hwbnn.ref.popcount`; nothing here uses a float.

A network beyond a version-1 chain (:meth:`~hwbnn.ir.network.NetworkIR.v2_features`: a graph
with add joins, average pools, strided convs, integer weights, signed or wide activations)
runs layer by layer on integer tensors instead: each weight layer packs its input (intN and
wide sums as offset-binary codes, at most 8 planes per pass), runs the same popcount kernels
and thresholds into words that it unpacks again; integer weights are masked plane pairs with
scales 1, 2, .., -2^(b-1); adds and average pools are numpy sums; threshold layers (and
thresholded adds) run the threshold kernel on the integer tensor.

API mirrors :mod:`hwbnn.ref.golden`: :func:`run` returns the per-layer trace (``acc``,
``out``) for comparisons, :func:`scores` and :func:`predict` take the fast path that never
unpacks. Build a :class:`PackedNetwork` once to reuse its packed weights.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field

import numpy as np

from .. import progress
from ..errors import HwbnnError
from ..ir.encoding import encoding_bits, encoding_offset, encoding_range, pad_value
from ..ir.network import (
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MatVec,
    MaxPool,
    NetworkIR,
    Threshold,
)
from .golden import LayerTrace

# Rows that threads split a layer into come in multiples of one 512-bit vector of int64.
ROW_BLOCK = 8
# Accumulator bytes of one slice of a large batch: half of a 1 MiB L2 cache (Zen 4; 1-2 MiB on
# current x86 server cores), leaving room for the packed activations.
MICRO_BATCH_BYTES = 512 * 1024
# (step class, mode) the kernels have run with in this process: past their first call.
_KERNELS_RUN: set[tuple] = set()


def _kernels():
    try:
        from . import popcount
    except ImportError as error:  # numba is the optional 'fast' dependency
        raise HwbnnError(f"the packed engine needs numba (pip install numba): {error}") from None
    return popcount


def _words(channels: int) -> int:
    return -(-channels // 64)


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """0/1 array ``(..., C)`` -> uint64 words ``(..., ceil(C/64))``, channel c at bit c % 64."""
    padded = np.zeros(bits.shape[:-1] + (64 * _words(bits.shape[-1]),), dtype=np.uint8)
    padded[..., :bits.shape[-1]] = bits
    return np.packbits(padded, axis=-1, bitorder="little").view(np.uint64)


def _unpack(buffer: np.ndarray, pad: int, shape: tuple[int, int, int],
            encoding: str) -> np.ndarray:
    """Packed ``(N, planes, H+2pad, W+2pad, words)`` -> integer activations ``(N, H, W, C)``."""
    h, w, c = shape
    inner = np.ascontiguousarray(buffer[:, :, pad:pad + h, pad:pad + w, :])
    bits = np.unpackbits(inner.view(np.uint8), axis=-1, bitorder="little")[..., :c]
    bits = bits.astype(np.int64)
    if encoding == "binary":
        return 2 * bits[:, 0] - 1
    if encoding == "ternary":
        return bits[:, 0] * (2 * bits[:, 1] - 1)
    return sum(bits[:, p] << p for p in range(bits.shape[1]))


def _stream(words: np.ndarray, scales: np.ndarray, full: int
            ) -> tuple[np.ndarray, np.ndarray, int] | None:
    """A masked step's weighed binary stream (hwbnn.ref.chain, STREAM), where every pair of
    ``words (2 * pairs, kl, rows)`` has one mask for all rows (all ones, or a bitwidth per
    input column). Returns:

    * the stream, ``(kt, rows)`` words then each word's plane scale: the signs under each
      pair's mask packed densely in window order, pair after pair from a whole word, the
      gathered words filled up with zero words to a multiple of 4;
    * the pairs' masks for the kernel's gather, ``(pairs, kl)``;
    * how many leading words the kernel reads in the window itself. Where pair 0's mask is
      all ones (``full`` bit 0) its signs stay as they are, window word for window word, read
      in place: all of them, or, where the last (window words mod 4) would take the gathered
      words one update of four more, whole groups of four, those last words copied whole
      ahead of the gathered ones.

    None where some pair's mask differs between rows (a bitwidth per weight or tile)."""
    pairs, kl, rows = words.shape[0] // 2, words.shape[1], words.shape[2]
    masks = np.ascontiguousarray(words[0::2, :, 0])
    if not (words[0::2] == masks[:, :, None]).all():
        return None
    segments, word_scales = [], []
    first = int(full & 1)
    for p in range(first, pairs):
        keep = np.unpackbits(np.ascontiguousarray(masks[p]).view(np.uint8),
                             bitorder="little").astype(bool)
        signs = np.unpackbits(np.ascontiguousarray(words[2 * p + 1].T).view(np.uint8),
                              axis=1, bitorder="little")[:, keep]
        used = -(-signs.shape[1] // 64)
        dense = np.zeros((rows, used * 64), dtype=np.uint8)
        dense[:, :signs.shape[1]] = signs
        segments.append(np.packbits(dense, axis=1, bitorder="little").view(np.uint64).T)
        word_scales += [int(scales[p])] * used
    raw = 0
    if first:
        gathered, tail = len(word_scales), kl % 4
        raw = kl if -(-(gathered + tail) // 4) > -(-gathered // 4) else kl - tail
        masks[0] = 0
        masks[0, raw:] = ~np.uint64(0)
        segments.insert(0, words[1])
        word_scales[:0] = [int(scales[0])] * kl
    kt = raw + -(-(len(word_scales) - raw) // 4) * 4
    stream = np.zeros((kt, rows), dtype=np.uint64)
    stream[:len(word_scales)] = np.concatenate(segments)
    word_scales += [0] * (kt - len(word_scales))
    packed = np.concatenate([stream.reshape(-1), np.asarray(word_scales, dtype=np.uint64)])
    return packed, masks, raw


def _encoding_code(kernels, encoding: str) -> int:
    if encoding == "binary":
        return kernels.ENC_BINARY
    if encoding == "ternary":
        return kernels.ENC_TERNARY
    return kernels.ENC_UINT


def _planes(encoding: str) -> int:
    """Bit planes of a packed activation: 1 binary, 2 ternary (nonzero, sign), n for uintN."""
    return encoding_bits(encoding)


def _weight_planes(weights) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Weight planes as 0/1 matrices in the kernels' order, and the scales of masked pairs."""
    planes = weights.planes.astype(np.uint8)
    if weights.kind == "binary":
        return [planes[0]], None
    if weights.kind == "ternary":
        nonzero, negative = planes
        return [nonzero, nonzero & (1 - negative)], np.ones(1, dtype=np.int64)
    if weights.kind == "integer":  # two's complement: bit p weighs 2^p, the top bit -2^(b-1)
        bits = planes.shape[0]
        pairs = []
        for p in range(bits):
            pairs += [planes[p], np.full_like(planes[p], p < bits - 1)]
        return pairs, 2 ** np.arange(bits, dtype=np.int64)
    pairs = []
    for p in range(planes.shape[0]):
        pairs += [(weights.bitwidth > p).astype(np.uint8), planes[p]]
    return pairs, np.asarray(weights.scales, dtype=np.int64)


@dataclass
class _Geometry:
    """Where a layer's packed input lies: its buffer and the window that feeds one output."""

    height: int  # buffer rows (padding included)
    width: int  # buffer columns (padding included)
    channels: int  # channels per buffer pixel
    pad: int  # border of the buffer, in pixels
    kh: int
    kw: int

    @property
    def words(self) -> int:
        return _words(self.channels)


@dataclass
class _WeightStep:
    layer: MatVec | Conv
    geometry: _Geometry
    patches: bool  # first conv packed as whole patches (small C): one word holds K*K*C bits
    mode: int
    weights: np.ndarray  # (planes, kh * kw * words, rows) uint64
    scales: np.ndarray
    wbase: np.ndarray
    thresholds: np.ndarray | None  # int64 (rows, levels), sorted
    out_hw: tuple[int, int]


@dataclass
class _Program:
    """A chain as the whole-network kernel's program (:mod:`hwbnn.ref.chain`)."""

    steps: np.ndarray  # (steps, chain.FIELDS) int64
    weights: np.ndarray  # every step's packed weights, concatenated
    dense: np.ndarray  # int16/int32 weights (taps, rows) of a first conv computed directly
    scales: np.ndarray
    wbase: np.ndarray
    thresholds: np.ndarray
    size: int  # scratch words per frame: the packed input and every step's output
    acc_size: int  # accumulators per frame of every weight step (a trace)
    shape: np.ndarray  # (H, W, C) the input is packed as
    limits: np.ndarray  # (lo, hi, binary input, input encoding code)
    patch: int  # kernel of a first conv packed as whole patches (0: pixels)
    outputs: list  # per step: (scratch offset, buffer shape or None for scores, border, acc)

    frame_values: int  # integers of one input frame
    classes: int  # scores per frame (the last layer's outputs)
    scores_shape: tuple  # a frame's scores as golden gives them: (rows,) or (OH, OW, rows)
    tile: int  # frames that go through together (chain.TILE where its buffers stay small)
    # A scratch of one tile per Python thread, made once: a run's buffers are rewritten
    # before they are read, so a batch needs no zeroed allocation (docs/design.md, 3b).
    scratch: threading.local = field(default_factory=threading.local)
    no_trace: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.int64))

    def tile_scratch(self) -> np.ndarray:
        """This thread's tile scratch (zeroed once: the buffers' borders stay zero)."""
        own = getattr(self.scratch, "words", None)
        if own is None:
            own = self.scratch.words = np.zeros(self.size * self.tile, dtype=np.uint64)
        return own


@dataclass
class _PoolStep:
    layer: MaxPool
    geometry: _Geometry


@dataclass
class _TensorStep:
    """A layer of the graph path that works on unpacked integers (add, pools)."""

    layer: Add | AvgPool | GlobalAvgPool | MaxPool | Threshold


class PackedNetwork:
    """A NetworkIR with its weights packed once, ready to run on batches of frames.

    The network is validated first, so a model the engine cannot run (an unknown layer type
    or weight kind, inconsistent fields) raises HwbnnError instead of giving a wrong answer.
    Accumulators are int64: a valid IR cannot overflow them (plane scales <= 255, inputs
    <= 8 bits, so one product stays below 2^18).
    """

    def __init__(self, net: NetworkIR):
        if sys.byteorder != "little":
            raise HwbnnError("the packed engine needs a little-endian CPU")
        self._kernels = _kernels()
        self._net = net.validate()
        # A version-1 chain keeps the all-packed path; anything more runs as a graph.
        self._sources = net.sources() if net.v2_features() else None
        self._steps = self._plan(net) if self._sources is None else self._plan_graph(net)
        self._program = self._build_program(net) if self._sources is None else None
        # (step class, mode) of every step: which kernels a run needs compiled.
        self._kinds = {(type(step).__name__, getattr(step, "mode", None))
                       for step in self._steps}

    @property
    def net(self) -> NetworkIR:
        return self._net

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weights the engine runs on: packed words (padding to whole words and
        masks included), and int16 or int32 words of a first conv computed on the frame's
        integers."""
        if self._program is not None:
            return self._program.weights.nbytes + self._program.dense.nbytes
        return sum(step.weights.nbytes for step in self._steps if isinstance(step, _WeightStep))

    def _plan(self, net: NetworkIR) -> list:
        steps = []
        shape = tuple(net.input_shape)
        for index, layer in enumerate(net.layers):
            if isinstance(layer, MaxPool):
                h, w, c = shape
                steps.append(_PoolStep(layer, _Geometry(h, w, c, 0, layer.kernel, layer.kernel)))
            else:
                steps.append(self._weight_step(layer, shape, first=index == 0))
            shape = tuple(layer.out_shape)
        return steps

    def _build_program(self, net: NetworkIR) -> _Program:
        """Lay the chain out for :func:`hwbnn.ref.chain.run_frames`: step rows, concatenated
        weights and thresholds, and each packed buffer at its offset in a frame's scratch."""
        from . import chain

        k = self._kernels
        rows = np.zeros((len(self._steps), chain.FIELDS), dtype=np.int64)
        weights, dense, scales, wbase, thresholds, outputs = [], [], [], [], [], []
        offset = acc_size = 0
        sizes = {"weights": 0, "dense": 0, "scales": 0, "wbase": 0, "thresholds": 0}

        def buffer(encoding: str, g: _Geometry) -> tuple[int, tuple]:
            nonlocal offset
            shape = (_planes(encoding), g.height, g.width, g.words)
            start, offset = offset, offset + int(np.prod(shape))
            return start, shape

        def append(kind: str, items: list, array: np.ndarray) -> int:
            items.append(array.reshape(-1))
            start = sizes[kind]
            sizes[kind] += array.size
            return start

        encoding = net.input_encoding
        in_start, in_shape = buffer(encoding, self._steps[0].geometry)
        for index, step in enumerate(self._steps):
            row = rows[index]
            g = step.geometry
            row[[chain.IN, chain.IN_PLANES, chain.IN_PLANE, chain.IN_WP, chain.IN_WORDS,
                 chain.KH, chain.KW]] = (in_start, in_shape[0], int(np.prod(in_shape[1:])),
                                         g.width, g.words, g.kh, g.kw)
            layer = step.layer
            out_encoding = layer.out_encoding
            last = index == len(self._steps) - 1
            if isinstance(step, _PoolStep):
                row[chain.KIND] = chain.KIND_POOL
                oh, ow = layer.out_shape[:2]
            else:
                oh, ow = step.out_hw
                row[[chain.KIND, chain.MODE, chain.ROWS, chain.KL, chain.S_LEN,
                     chain.ACC]] = (chain.KIND_WEIGHT, step.mode, layer.mh,
                                    step.weights.shape[1], len(step.scales), acc_size)
                if step.mode == k.MODE_BM:  # pairs whose mask is all ones
                    masks = _weight_planes(layer.weights)[0][0::2]
                    row[chain.FULL] = sum(1 << p for p, mask in enumerate(masks) if mask.all())
                direct = index == 0 and _direct(net, layer)
                stream = (_stream(step.weights, step.scales, row[chain.FULL])
                          if step.mode == k.MODE_BM and not direct else None)
                if direct:
                    row[[chain.KIND, chain.KH, chain.KW]] = (chain.KIND_DIRECT, layer.kernel,
                                                             layer.kernel)
                    row[chain.W_OFF] = append("dense", dense, layer.weights.values().T)
                elif stream is not None:
                    packed, masks, raw = stream
                    kt = packed.size // (layer.mh + 1)
                    row[[chain.STREAM, chain.W_OFF, chain.M_OFF, chain.C_WORDS, chain.RAW,
                         chain.C_IN]] = (1, append("weights", weights, packed),
                                         append("weights", weights, masks), kt, raw, offset)
                    offset += chain.TILE * (kt - raw)
                else:
                    row[chain.W_OFF] = append("weights", weights, step.weights)
                row[chain.S_OFF] = append("scales", scales, step.scales)
                row[chain.B_OFF] = append("wbase", wbase, step.wbase)
                if step.thresholds is not None:
                    row[chain.T_OFF] = append("thresholds", thresholds, step.thresholds)
                    row[chain.LEVELS] = step.thresholds.shape[1]
                acc_start = acc_size
                acc_size += oh * ow * layer.mh
            row[[chain.OH, chain.OW]] = (oh, ow)
            if last:
                outputs.append((0, None, 0, acc_start))
                continue
            following = self._steps[index + 1].geometry
            out_start, out_shape = buffer(out_encoding, following)
            row[[chain.OUT_ENC, chain.OUT, chain.OUT_PLANES, chain.OUT_PLANE, chain.OUT_PAD,
                 chain.OUT_WP, chain.OUT_WORDS]] = (
                _encoding_code(k, out_encoding), out_start, out_shape[0],
                int(np.prod(out_shape[1:])), following.pad, following.width, following.words)
            outputs.append((out_start, out_shape, following.pad,
                            None if isinstance(step, _PoolStep) else acc_start))
            in_start, in_shape = out_start, out_shape
        first = self._steps[0]
        patch = first.layer.kernel if isinstance(first, _WeightStep) and first.patches else 0
        if isinstance(first.layer, MatVec):
            shape = (1, 1, first.layer.mw)
        else:
            shape = tuple(net.input_shape)
        lo, hi = encoding_range(net.input_encoding)
        binary = int(net.input_encoding == "binary")

        def joined(items, dtype):
            return (np.concatenate(items) if items else np.zeros(0)).astype(dtype)

        last = self._steps[-1]  # validation makes it a weight layer producing scores
        tile = chain.TILE if 8 * offset * chain.TILE <= chain.TILE_BYTES else 1
        dense_type = np.int16 if dense and _sum_bound(net, self._steps[0].layer) < 2**15 else (
            np.int32)
        return _Program(rows, joined(weights, np.uint64), joined(dense, dense_type),
                        joined(scales, np.int64),
                        joined(wbase, np.int64), joined(thresholds, np.int64), offset,
                        acc_size, np.asarray(shape, dtype=np.int64),
                        np.asarray([lo, hi, binary, _encoding_code(k, net.input_encoding)],
                                   dtype=np.int64), patch, outputs,
                        int(np.prod(net.input_shape)),
                        last.layer.mh * last.out_hw[0] * last.out_hw[1],
                        _golden_shape(last, 1)[1:], tile)

    def _plan_graph(self, net: NetworkIR) -> list:
        steps = []
        for layer, sources in zip(net.layers, self._sources, strict=True):
            if isinstance(layer, MatVec | Conv):
                in_shape = net.input_shape if sources[0] < 0 else net.layers[
                    sources[0]].out_shape
                steps.append(self._weight_step(layer, tuple(in_shape), first=sources[0] < 0))
            else:
                steps.append(_TensorStep(layer))
        return steps

    def _weight_step(self, layer, in_shape: tuple, first: bool) -> _WeightStep:
        k = self._kernels
        if isinstance(layer, Conv):
            h, w, c = in_shape
            kernel, pad = layer.kernel, layer.padding
            oh, ow = layer.out_shape[:2]
            patch_words = _words(kernel * kernel * c)
            # A strided conv packs its (fewer) windows whole, as a first conv on few channels.
            patches = (first and c <= 64 and patch_words < kernel * kernel * _words(c)
                       ) or layer.stride > 1
            if patches:
                geometry = _Geometry(oh, ow, kernel * kernel * c, 0, 1, 1)
            else:
                geometry = _Geometry(h + 2 * pad, w + 2 * pad, c, pad, kernel, kernel)
        else:
            patches, oh, ow = False, 1, 1
            if len(in_shape) == 3 and not first:
                h, w, c = in_shape
                geometry = _Geometry(h, w, c, 0, h, w)
            else:
                geometry = _Geometry(1, 1, layer.mw, 0, 1, 1)
        g = geometry
        planes, scales = _weight_planes(layer.weights)
        columns = [p.reshape(layer.mh, g.kh, g.kw, g.channels) for p in planes]
        words = np.stack([_pack_bits(p).reshape(layer.mh, -1).T for p in columns])
        x_kind = {"binary": 0, "ternary": 1}.get(layer.in_encoding, 2)
        masked = scales is not None
        mode = (k.MODE_BB, k.MODE_BM, k.MODE_TB, k.MODE_TM, k.MODE_UB, k.MODE_UM)[
            2 * x_kind + masked]
        if mode == k.MODE_BB:
            wbase = np.full(layer.mh, layer.mw, dtype=np.int64)
        elif mode == k.MODE_BM:
            counts = np.stack([p.sum(axis=1, dtype=np.int64) for p in planes[0::2]], axis=1)
            wbase = counts @ scales
        else:
            wbase = np.zeros(layer.mh, dtype=np.int64)
        thresholds = None if layer.thresholds is None else np.ascontiguousarray(
            layer.thresholds, dtype=np.int64)
        return _WeightStep(layer, geometry, patches, mode, np.ascontiguousarray(words),
                           scales if masked else np.zeros(0, dtype=np.int64), wbase,
                           thresholds, (oh, ow))

    def _forward(self, frames: np.ndarray, threads: int, trace: list | None) -> np.ndarray:
        kinds = self._kinds
        run = self._layers if self._sources is None else self._graph_layers
        if kinds <= _KERNELS_RUN:
            return run(frames, threads, trace)
        # numba compiles a kernel on its first call with new types (the chain's whole-network
        # kernel took 136 s on a cold cache, measured on LFC; loaded from its disk cache
        # afterwards).
        with progress.step("packed engine: first run (numba compiles its kernels once)"):
            scores = run(frames, threads, trace)
        _KERNELS_RUN.update(kinds)
        return scores

    def _graph_layers(self, frames: np.ndarray, threads: int, trace: list | None) -> np.ndarray:
        """The graph path: every layer reads integer tensors and writes one (last: scores)."""
        outputs = {-1: frames}
        last_use = {source: index for index, sources in enumerate(self._sources)
                    for source in sources}
        for index, (step, sources) in enumerate(zip(self._steps, self._sources, strict=True)):
            inputs = [outputs[source] for source in sources]
            if isinstance(step, _WeightStep):
                acc, out = self._graph_weight_layer(step, inputs[0], threads)
            else:
                acc, out = self._tensor_layer(step.layer, inputs, threads)
            if trace is not None:
                trace.append(LayerTrace(step.layer.name, acc, out))
            outputs[index] = out
            for source in sources:  # free what no later layer reads
                if last_use[source] == index:
                    del outputs[source]
        return outputs[len(self._steps) - 1]

    def _graph_weight_layer(self, step: _WeightStep, x: np.ndarray,
                            threads: int) -> tuple[np.ndarray, np.ndarray]:
        """Accumulators and output values of a matvec/conv on integer activations ``x``.

        intN inputs are packed as offset-binary codes ``x + 2^(N-1)`` (padding too), so the
        dot product gains ``2^(N-1) * row sum`` that is taken off again; inputs wider than the
        kernels' 8 planes run as 8-bit digits whose dot products are shifted into place.
        """
        layer, g = step.layer, step.geometry
        encoding = layer.in_encoding
        if isinstance(layer, Conv):
            fill = pad_value(encoding)
            if step.patches:
                x = _patches(x, layer.kernel, layer.padding, fill, layer.stride)
            else:
                pad = layer.padding
                x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=fill)
        x = x.reshape(len(x), g.height, g.width, g.channels)
        offset = encoding_offset(encoding)
        code = _encoding_code(self._kernels, encoding)
        if encoding in ("binary", "ternary"):
            digits = [(x, _planes(encoding), 0)]
        else:
            x = x + offset
            bits = encoding_bits(encoding)
            digits = [((x >> shift) & 0xFF, min(8, bits - shift), shift)
                      for shift in range(0, bits, 8)]
        acc = 0
        for values, planes, shift in digits:
            buffer = np.zeros((len(x), planes, g.height, g.width, g.words), dtype=np.uint64)
            self._kernels.pack(np.ascontiguousarray(values), code, buffer, 0)
            acc = acc + (self._accumulate(step, buffer, threads) << shift)
        if offset:
            acc = acc - offset * layer.weights.values().sum(axis=1)
        shape = _golden_shape(step, len(x))
        if layer.produces_scores:
            return acc.reshape(shape), acc.reshape(shape)
        out = self._threshold_values(acc, step.thresholds, layer.out_encoding, step.out_hw)
        return acc.reshape(shape), out.reshape(shape)

    def _threshold_values(self, acc: np.ndarray, thresholds: np.ndarray, encoding: str,
                          out_hw: tuple[int, int]) -> np.ndarray:
        """Threshold ``acc (N, OH*OW, C)`` with the packing kernel, unpacked to values
        ``(N, OH, OW, C)`` (intN: the count is the offset-binary code)."""
        k = self._kernels
        n, _, channels = acc.shape
        oh, ow = out_hw
        out = np.zeros((n, _planes(encoding), oh, ow, _words(channels)), dtype=np.uint64)
        k.threshold(np.ascontiguousarray(acc), np.ascontiguousarray(thresholds, dtype=np.int64),
                    _encoding_code(k, encoding), out, 0, ow, 1)
        return _unpack(out, 0, (oh, ow, channels), encoding) - encoding_offset(encoding)

    def _tensor_layer(self, layer, inputs: list[np.ndarray],
                      threads: int) -> tuple[np.ndarray | None, np.ndarray]:
        """Add, threshold layers, average pools and (in a graph) max pooling on integer
        tensors (thresholds with the word kernel)."""
        (x, *_) = inputs
        if isinstance(layer, Threshold):
            n, channels = len(x), layer.channels
            out = self._threshold_values(x.reshape(n, -1, channels), layer.thresholds,
                                         layer.out_encoding, (x[0].size // channels, 1))
            return None, out.reshape(x.shape)
        if isinstance(layer, Add):
            acc = layer.scales[0] * inputs[0] + layer.scales[1] * inputs[1]
            if layer.thresholds is None:
                lo, hi = encoding_range(layer.out_encoding)
                return acc, np.minimum(np.maximum(acc, lo), hi)
            n, channels = len(acc), layer.channels
            out = self._threshold_values(acc.reshape(n, -1, channels), layer.thresholds,
                                         layer.out_encoding, (acc[0].size // channels, 1))
            return acc, out.reshape(acc.shape)
        if isinstance(layer, GlobalAvgPool):
            return None, x.sum(axis=(1, 2), keepdims=True)
        if isinstance(layer, AvgPool):
            windows = np.lib.stride_tricks.sliding_window_view(x, (layer.kernel,) * 2,
                                                               axis=(1, 2))
            return None, windows[:, ::layer.stride, ::layer.stride].sum(axis=(-2, -1))
        return None, self._graph_maxpool(layer, x)

    def _graph_maxpool(self, layer: MaxPool, x: np.ndarray) -> np.ndarray:
        """Max pooling with the word kernel (intN as offset codes, which keep the order)."""
        k = self._kernels
        encoding = layer.encoding
        if encoding_bits(encoding) > k.MAX_PLANES:  # a wide sum: more planes than the kernel
            n, h, w, c = x.shape
            oh, ow = h // layer.kernel, w // layer.kernel
            x = x[:, :oh * layer.kernel, :ow * layer.kernel]
            return x.reshape(n, oh, layer.kernel, ow, layer.kernel, c).max(axis=(2, 4))
        offset = encoding_offset(encoding)
        n, h, w, c = x.shape
        planes = _planes(encoding)
        buffer = np.zeros((n, planes, h, w, _words(c)), dtype=np.uint64)
        k.pack(np.ascontiguousarray(x + offset), _encoding_code(k, encoding), buffer, 0)
        oh, ow, _ = layer.out_shape
        out = np.zeros((n, planes, oh, ow, _words(c)), dtype=np.uint64)
        from . import chain

        # The chain kernel's pool step, one frame at a time: input and output of frame f in
        # one scratch row, the input first.
        words, in_size = _words(c), planes * h * w * _words(c)
        step = np.zeros((1, chain.FIELDS), dtype=np.int64)
        step[0, [chain.KIND, chain.IN, chain.IN_PLANES, chain.IN_PLANE, chain.IN_WP,
                 chain.IN_WORDS, chain.KH, chain.KW, chain.OH, chain.OW, chain.OUT_ENC,
                 chain.OUT, chain.OUT_PLANES, chain.OUT_PLANE, chain.OUT_WP, chain.OUT_WORDS]] = (
            chain.KIND_POOL, 0, planes, h * w * words, w, words, layer.kernel, layer.kernel, oh,
            ow, _encoding_code(k, encoding), in_size, planes, oh * ow * words, ow, words)
        scratch = np.concatenate([buffer.reshape(n, -1), out.reshape(n, -1)], axis=1)
        chain.pool_frames(step, scratch.reshape(-1), scratch.shape[1], n)
        out = scratch[:, in_size:].reshape(out.shape)
        return _unpack(out, 0, (oh, ow, c), encoding) - offset

    def _layers(self, frames: np.ndarray, threads: int, trace: list | None) -> np.ndarray:
        """The chain path: the whole program per frame in one compiled call per thread."""
        from . import chain

        program = self._program
        n = len(frames)
        scores = np.empty((n, program.classes), dtype=np.int64)
        flat = frames.reshape(n, program.frame_values)
        if trace is None and threads == 1:  # the fast path: no trace, no job split
            found = chain.run_frames(0, n, flat, program.shape, program.limits, program.patch,
                                     program.steps, program.weights, program.dense,
                                     program.scales,
                                     program.wbase, program.thresholds,
                                     program.tile_scratch(), program.size, program.tile, 0,
                                     scores, program.no_trace)
            if found >= 0:
                _raise_bad_values(self._net, frames[found])
            return scores if len(program.scores_shape) == 1 else scores.reshape(
                n, *program.scores_shape)
        keep = trace is not None
        scratch = np.zeros(program.size * n, dtype=np.uint64) if keep else None  # the trace's
        acc_trace = np.empty((n, program.acc_size), dtype=np.int64) if keep else (
            program.no_trace)
        bad = []

        def run(first, last_frame):
            own = scratch if keep else program.tile_scratch()
            found = chain.run_frames(first, last_frame, flat, program.shape, program.limits,
                                     program.patch, program.steps, program.weights,
                                     program.dense, program.scales, program.wbase,
                                     program.thresholds, own, program.size, program.tile,
                                     int(keep), scores, acc_trace)
            if found >= 0:
                bad.append(found)

        if threads == 1:
            run(0, n)
        else:
            self._kernels.run_jobs(run, n, threads)
        if bad:
            _raise_bad_values(self._net, frames[min(bad)])
        last = self._steps[-1]
        if keep:
            self._chain_trace(program, scratch.reshape(n, program.size), acc_trace, scores, trace)
        return scores.reshape(_golden_shape(last, n))

    def _chain_trace(self, program: _Program, scratch: np.ndarray, acc_trace: np.ndarray,
                     scores: np.ndarray, trace: list) -> None:
        """Every layer's accumulators and (unpacked) outputs from the kept buffers."""
        n = len(scratch)
        for step, (start, buffer_shape, pad, acc_offset) in zip(self._steps, program.outputs,
                                                                 strict=True):
            layer = step.layer
            if buffer_shape is None:  # the last layer: scores
                trace.append(LayerTrace(layer.name, scores.reshape(_golden_shape(step, n)),
                                        scores.reshape(_golden_shape(step, n))))
                continue
            size = int(np.prod(buffer_shape))
            buffer = scratch[:, start:start + size].reshape(n, *buffer_shape)
            values = _unpack(buffer, pad, tuple(layer.out_shape) if len(layer.out_shape) == 3
                             else (1, 1, layer.mh), layer.out_encoding)
            if isinstance(step, _PoolStep):
                trace.append(LayerTrace(layer.name, None, values))
                continue
            shape = _golden_shape(step, n)
            acc = acc_trace[:, acc_offset:acc_offset + int(np.prod(shape[1:]))]
            trace.append(LayerTrace(layer.name, acc.reshape(shape), values.reshape(shape)))

    def _accumulate(self, step: _WeightStep, x: np.ndarray, threads: int) -> np.ndarray:
        k = self._kernels
        g = step.geometry
        n = len(x)
        oh, ow = step.out_hw
        flat = x.reshape(n, x.shape[1], g.height * g.width * g.words)
        if step.mode in (k.MODE_TB, k.MODE_UB):
            xstat = np.empty((n, oh * ow), dtype=np.int64)
            k.window_stat(step.mode, flat, g.width, g.words, g.kh, g.kw, ow, xstat)
        else:
            xstat = np.zeros((n, oh * ow), dtype=np.int64)
        acc = np.empty((n, oh * ow, step.layer.mh), dtype=np.int64)
        rows = step.layer.mh
        chunk = rows
        if threads > n:  # too few frames to go round: the threads share the rows
            chunk = max(1, -(-rows // (threads * ROW_BLOCK))) * ROW_BLOCK
        k.layer(step.mode, flat, step.weights, step.scales, step.wbase, xstat, g.width,
                g.words, g.kh, g.kw, oh, ow, 1, chunk, acc, threads)
        return acc

    def run(self, images: np.ndarray, threads: int = 1) -> list[LayerTrace]:
        """Per-layer trace like :func:`hwbnn.ref.golden.run` (outputs unpacked from words)."""
        trace: list[LayerTrace] = []
        self._forward(self._frames(images), _check_threads(threads), trace)
        return trace

    def _frames(self, images) -> np.ndarray:
        """Checked frames; the chain kernel checks the values itself, frame by frame."""
        return _check_frames(self._net, images, values=self._program is None)

    def scores(self, images: np.ndarray, threads: int = 1) -> np.ndarray:
        """Integer class scores, the fast path: nothing is unpacked.

        A chain runs frame by frame in one compiled call per thread. A graph runs layer by
        layer, a large batch in slices of :attr:`micro_batch` frames so that each layer's
        accumulators stay in cache instead of streaming a whole batch through memory.
        """
        frames = self._frames(images)
        threads = _check_threads(threads)
        if self._program is not None:
            return self._forward(frames, threads, None)
        step = self.micro_batch
        if len(frames) <= step:
            return self._forward(frames, threads, None)
        return np.concatenate([self._forward(frames[i:i + step], threads, None)
                               for i in range(0, len(frames), step)])

    @property
    def micro_batch(self) -> int:
        """Frames per slice of :meth:`scores`: the largest layer's accumulators of a slice
        fit in :data:`MICRO_BATCH_BYTES`."""
        per_frame = max(8 * step.layer.mh * step.out_hw[0] * step.out_hw[1]
                        for step in self._steps if isinstance(step, _WeightStep))
        return max(1, MICRO_BATCH_BYTES // per_frame)

    def predict(self, images: np.ndarray, threads: int = 1) -> np.ndarray:
        """Class labels: argmax of the scores, ties to the lowest index."""
        return np.argmax(self.scores(images, threads), axis=1)


def _check_frames(net: NetworkIR, images, values: bool = True) -> np.ndarray:
    """Integer frames of the network's input shape and encoding, as int64 (no copy if already).

    Stricter than golden's check: a binary input must be -1 or +1 (golden would take a 0 as a
    zero; the packed bit would read it as -1) and frames must have an integer dtype. With
    ``values`` False the values are left to the caller (:func:`_raise_bad_values`).
    """
    images = np.asarray(images)
    if images.shape[1:] != tuple(net.input_shape):
        raise HwbnnError(f"input frames have shape {images.shape[1:]}, the network expects "
                         f"{tuple(net.input_shape)}")
    if not np.issubdtype(images.dtype, np.integer):
        raise HwbnnError(f"input frames must hold integers, not {images.dtype}")
    if values:
        _raise_bad_values(net, images)
    return images.astype(np.int64, copy=False)


def _raise_bad_values(net: NetworkIR, images: np.ndarray) -> None:
    """HwbnnError naming the values of ``images`` outside the input encoding, if any."""
    lo, hi = encoding_range(net.input_encoding)
    if images.size and (images.min() < lo or images.max() > hi):
        raise HwbnnError(f"input values must lie in {lo}..{hi} ({net.input_encoding}), found "
                         f"{int(images.min())}..{int(images.max())}")
    if net.input_encoding == "binary" and images.size and not np.abs(images).min():
        raise HwbnnError("binary input values must be -1 or +1, found 0")


def _direct(net: NetworkIR, layer) -> bool:
    """Whether a first layer runs on the frame's integers (:func:`hwbnn.ref.chain.
    _direct_step`): a stride-1 conv on multi-bit pixels padded with 0, whose sums fit int32."""
    if not isinstance(layer, Conv) or layer.stride != 1 or net.input_encoding in (
            "binary", "ternary") or pad_value(net.input_encoding) != 0:
        return False
    return _sum_bound(net, layer) < 2**31


def _sum_bound(net: NetworkIR, layer) -> int:
    """Largest magnitude of a first layer's sums (and of every partial sum) on valid input."""
    lo, hi = encoding_range(net.input_encoding)
    return max(abs(lo), abs(hi)) * int(np.abs(layer.weights.values()).sum(axis=1).max())


def _golden_shape(step: _WeightStep, n: int) -> tuple[int, ...]:
    """Shape of a layer's accumulators in golden's trace: (N, rows) or (N, OH, OW, rows)."""
    if isinstance(step.layer, MatVec):
        return (n, step.layer.mh)
    return (n, *step.out_hw, step.layer.mh)


def _patches(x: np.ndarray, kernel: int, padding: int, fill: int,
             stride: int = 1) -> np.ndarray:
    """Integer patches ``(N, OH, OW, K*K*C)`` in (kernel row, kernel column, channel) order,
    one per window at steps of ``stride``."""
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
                    constant_values=fill)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]
    n, oh, ow, c = windows.shape[:4]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, oh, ow, kernel * kernel * c)


def max_threads() -> int:
    """Most threads the kernels may use: the CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _check_threads(threads: int) -> int:
    if threads == 1 and type(threads) is int:  # always allowed (no affinity query)
        return 1
    limit = max_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= limit:
        raise HwbnnError(f"threads must be an integer in 1..{limit}, not {threads!r}")
    return threads


def _packed(net: NetworkIR | PackedNetwork) -> PackedNetwork:
    return net if isinstance(net, PackedNetwork) else PackedNetwork(net)


def run(net: NetworkIR | PackedNetwork, images: np.ndarray,
        threads: int = 1) -> list[LayerTrace]:
    """Run a batch ``(N, *input_shape)``; return the trace of every layer, last = scores."""
    return _packed(net).run(images, threads)


def scores(net: NetworkIR | PackedNetwork, images: np.ndarray, threads: int = 1) -> np.ndarray:
    """Integer class scores ``(N, classes)``."""
    return _packed(net).scores(images, threads)


def predict(net: NetworkIR | PackedNetwork, images: np.ndarray, threads: int = 1) -> np.ndarray:
    """Class labels: argmax of the scores, ties to the lowest index."""
    return _packed(net).predict(images, threads)
