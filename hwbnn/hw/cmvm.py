"""Constant matrix-vector products as one shared adder graph, solved by da4ml.

An unrolled layer computes ``S_r = sum_j W[r, j] * v_j`` for every row ``r`` with constant
integer weights ``W``. :mod:`hwbnn.hw.unrolled` builds it from per-plane adder trees that
share nodes over equal lanes and signs. The alternative here hands the whole integer matrix
to da4ml (Sun et al., "da4ml: Distributed Arithmetic for Real-time Neural Networks on FPGAs",
ACM TRETS 2025; ``pip install da4ml``, the constant-matrix solver that hls4ml uses), whose
solver finds common subexpressions of shifted sums across rows and columns (of sparse
planes too) and returns a graph of two-operand shift-and-add / subtract operations. This
module turns that graph into plain integer nodes (:class:`AdderGraph`, no da4ml type
survives the solve) and the nodes into Amaranth logic. Layers wider than
:data:`BLOCK_COLUMNS` are solved in column blocks whose sums each row adds. docs/design.md
section 4, "Unrolled adders".

Exactness does not rest on da4ml's arithmetic: every node's value is an integer times a
power of two, its bounds are recomputed here from the lanes' bounds by interval arithmetic,
and each node is built at exactly the width those bounds need; :func:`AdderGraph.evaluate`
runs the same graph on integers, and the tests check it against ``W @ v``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Const, Shape, Signal

from ..errors import HwbnnError


@dataclass(frozen=True)
class Ref:
    """An operand: node ``node`` times ``2**shift``, negated where ``neg``."""

    node: int
    shift: int = 0
    neg: bool = False


@dataclass(frozen=True)
class Node:
    """A lane (``lane`` set: its value ``v``) or ``a + b`` / ``a - b`` (``sub``). A node holds
    the integer ``N``; its true value is ``(-1 if neg else 1) * N * 2**exp``, bounded by
    ``lo <= N <= hi``."""

    exp: int
    lo: int
    hi: int
    neg: bool = False
    lane: int | None = None
    a: Ref | None = None
    b: Ref | None = None
    sub: bool = False

    @property
    def shape(self) -> Shape:
        return Shape.cast(range(self.lo, self.hi + 1))


@dataclass(frozen=True)
class AdderGraph:
    """Nodes in build order and, per row, the output: ``None`` for a row of zeros, else a
    :class:`Ref` whose true value is the row's sum."""

    nodes: tuple[Node, ...]
    outputs: tuple[Ref | None, ...]

    @property
    def adders(self) -> list[tuple[int, int, int]]:
        """(output width, operand widths a and b) of every adder or subtractor."""
        return [(node.shape.width, self.nodes[node.a.node].shape.width,
                 self.nodes[node.b.node].shape.width)
                for node in self.nodes if node.lane is None]

    @property
    def adder_bits(self) -> int:
        return sum(width for width, _, _ in self.adders)

    def evaluate(self, lanes: np.ndarray) -> np.ndarray:
        """Row sums for lane values ``lanes`` ``(frames, columns)``, run on the graph in
        Python integers (``object`` arrays, no overflow): what the logic computes."""
        lanes = np.asarray(lanes).astype(object)
        values: list = []
        for node in self.nodes:
            if node.lane is not None:
                values.append(lanes[:, node.lane])
                continue
            a, b = _aligned(self.nodes, node, node.a), _aligned(self.nodes, node, node.b)
            values.append(_combine(node, values[node.a.node] * a, values[node.b.node] * b))
        rows = []
        for ref in self.outputs:
            if ref is None:
                rows.append(np.zeros(len(lanes), dtype=object))
                continue
            node = self.nodes[ref.node]
            sign = -1 if node.neg != ref.neg else 1
            rows.append(sign * _scaled(values[ref.node], node.exp + ref.shift))
        return np.stack(rows, axis=1)

    def depths(self) -> list[int]:
        """Adder levels from the lanes to each node (a lane 0)."""
        depths: list[int] = []
        for node in self.nodes:
            depths.append(0 if node.lane is not None
                          else 1 + max(depths[node.a.node], depths[node.b.node]))
        return depths

    def stages(self, levels: int | None) -> int:
        """Register stages a build pipelined every ``levels`` levels puts between the lanes
        and the row sums (0 when ``levels`` is None: combinational)."""
        if levels is None:
            return 0
        depths = self.depths()
        return max((depths[ref.node] // levels for ref in self.outputs if ref is not None),
                   default=0)

    def build(self, m, lanes: list, register=None, levels: int | None = None) -> list:
        """The graph's logic in ``m`` over the lane values ``lanes``; returns each row's sum
        as a signed Amaranth value (``Const(0)`` for a row of zeros), after
        :meth:`stages` ``(levels)`` register stages.

        Combinational without ``levels``. With it, a node ``levels``, ``2 levels``, ... adder
        levels deep is registered (``register(value, key, name)``, which builds each key
        once, :meth:`~hwbnn.hw.popcount.TreeBuilder.register`): a node of depth ``d`` is
        valid from stage ``d // levels`` on, and an operand or a row sum needed at a later
        stage passes delay registers, shared by all who need it there."""
        depths = self.depths() if levels is not None else None
        final = self.stages(levels)
        signals: list = []

        def at(index: int, stage: int):
            value = signals[index]
            for later in range(depths[index] // levels + 1, stage + 1) if levels else ():
                value = register(value, ("cmvm", index, later), f"cmvm{index}_s{later}")
            return value

        for n, node in enumerate(self.nodes):
            if node.lane is not None:
                signals.append(lanes[node.lane])
                continue
            stage = (depths[n] - 1) // levels if levels else 0
            a = at(node.a.node, stage) << _aligned_shift(self.nodes, node, node.a)
            b = at(node.b.node, stage) << _aligned_shift(self.nodes, node, node.b)
            sig = Signal(node.shape, name=f"cmvm{n}")
            m.d.comb += sig.eq(_combine(node, a, b))
            if levels and depths[n] % levels == 0:
                sig = register(sig, ("cmvm", n, depths[n] // levels), f"cmvm{n}_r")
            signals.append(sig)
        rows = []
        for ref in self.outputs:
            if ref is None:
                rows.append(Const(0, 1))
                continue
            node = self.nodes[ref.node]
            end_value = at(ref.node, final)
            exp = node.exp + ref.shift
            value = end_value.as_signed() if node.shape.signed else end_value
            # A row sum is an integer, so below a negative exponent N's low bits are zeros.
            value = value << exp if exp >= 0 else value >> -exp
            rows.append(-value if node.neg != ref.neg else value)
        return rows


def _combine(node: Node, a, b):
    """``N`` of an add node from its operands' aligned ``N`` (see :func:`_plan_add`)."""
    a_neg, b_neg = node.a.neg, node.b.neg != node.sub
    if a_neg == b_neg:
        return a + b  # A + B, or -(A + B) with the node marked negated
    return b - a if a_neg else a - b


def _aligned_shift(nodes, node: Node, ref: Ref) -> int:
    return nodes[ref.node].exp + ref.shift - node.exp


def _aligned(nodes, node: Node, ref: Ref) -> int:
    return 1 << _aligned_shift(nodes, node, ref)


def _scaled(value, exp: int):
    return value * (1 << exp) if exp >= 0 else value // (1 << -exp)


def _plan_add(nodes: list[Node], a: Ref, b: Ref, sub: bool) -> Node:
    """The node for ``A + B`` or ``A - B`` of true values ``A``, ``B``: its exponent, bounds and
    sign. The refs' signs are folded with their nodes' (so ``ref.neg`` says whether the true
    operand is ``-N``); with ``b``'s sign also flipped by a subtraction, the result is one of
    ``a + b``, ``a - b``, ``b - a`` of the aligned ``N`` values, or ``-(a + b)``, built as
    ``a + b`` and marked negated: no negation costs an adder of its own."""
    node_a, node_b = nodes[a.node], nodes[b.node]
    a = Ref(a.node, a.shift, a.neg != node_a.neg)
    b = Ref(b.node, b.shift, b.neg != node_b.neg)
    exp = min(node_a.exp + a.shift, node_b.exp + b.shift)
    sa, sb = node_a.exp + a.shift - exp, node_b.exp + b.shift - exp
    alo, ahi = node_a.lo << sa, node_a.hi << sa
    blo, bhi = node_b.lo << sb, node_b.hi << sb
    a_neg, b_neg = a.neg, b.neg != sub
    if a_neg == b_neg:
        lo, hi = alo + blo, ahi + bhi
    elif a_neg:
        lo, hi = blo - ahi, bhi - alo
    else:
        lo, hi = alo - bhi, ahi - blo
    return Node(exp, lo, hi, a_neg and b_neg, a=a, b=b, sub=sub)


# da4ml's solve time grows about with the square of both dimensions (measured here on random
# 2-bit matrices: 256 x 64 in 16 s, 256 x 128 in 175 s, 256 x 256 more than 15 minutes), so
# wider layers are solved in blocks of this many columns and each row adds its blocks' sums:
# sharing inside a block is kept, across blocks it is lost.
BLOCK_COLUMNS = 64


def solve(weights: np.ndarray, lane_lo: int, lane_hi: int) -> AdderGraph:
    """The adder graph of ``S = weights @ v`` for integer ``weights`` ``(rows, columns)`` and
    lanes ``v`` in ``[lane_lo, lane_hi]``, from da4ml's solver (HwbnnError naming the extra
    when da4ml is not installed): one solve per block of :data:`BLOCK_COLUMNS` columns, the
    blocks' row sums added pairwise."""
    try:
        from da4ml.cmvm import solve as da4ml_solve
    except ImportError:
        raise HwbnnError("the da4ml adder construction needs da4ml: pip install "
                         "'hwbnn[hw]' (or pip install da4ml)") from None
    weights = np.asarray(weights)
    if not np.issubdtype(weights.dtype, np.integer):
        raise HwbnnError("the da4ml adder construction takes integer weights")
    rows, cols = weights.shape
    nodes: list[Node] = [Node(0, int(lane_lo), int(lane_hi), lane=j) for j in range(cols)]
    blocks = [_solve_block(da4ml_solve, weights[:, start:start + BLOCK_COLUMNS], start,
                           lane_lo, lane_hi, nodes)
              for start in range(0, cols, BLOCK_COLUMNS)]
    outputs = []
    for row in range(rows):
        sums = [block[row] for block in blocks if block[row] is not None]
        while len(sums) > 1:  # a balanced tree of the blocks' sums
            pairs = []
            for a, b in zip(sums[0::2], sums[1::2], strict=False):
                nodes.append(_plan_add(nodes, a, b, False))
                pairs.append(Ref(len(nodes) - 1))
            sums = pairs + sums[len(pairs) * 2:]
        outputs.append(sums[0] if sums else None)
    return AdderGraph(tuple(nodes), tuple(outputs))


def _solve_block(da4ml_solve, weights: np.ndarray, first: int, lane_lo: int, lane_hi: int,
                 nodes: list[Node]) -> list[Ref | None]:
    """Solve the columns ``first ...`` of the matrix (``weights``, those columns only) into
    ``nodes`` (whose first nodes are the lanes); per row, the ref of the block's sum."""
    cols = weights.shape[1]
    # da4ml's kernel is (inputs, outputs), C-ordered float32 (its binding reads the buffer
    # as is), and each input's quantization interval (min, max, step).
    kernel = np.ascontiguousarray(weights.T, dtype=np.float32)
    pipeline = da4ml_solve(kernel, qintervals=[(float(lane_lo), float(lane_hi), 1.0)] * cols)
    # The refs a stage's inputs stand for: the lanes, then the previous stage's outputs.
    inputs: list[Ref | None] = [Ref(first + j) for j in range(cols)]
    for stage in pipeline.solutions:
        local: list[Ref | None] = []
        for op in stage.ops:
            if op.opcode == -1:
                ref = inputs[op.id0]
                shift = int(stage.inp_shifts[op.id0])
                local.append(None if ref is None else Ref(ref.node, ref.shift + shift, ref.neg))
            elif op.opcode in (0, 1):
                a, b = local[op.id0], local[op.id1]
                if a is None or b is None:  # a zero operand: the other one, or its negation
                    other = b if a is None else a
                    shift = int(op.data) if a is None else 0
                    flip = a is None and op.opcode == 1
                    local.append(None if other is None else
                                 Ref(other.node, other.shift + shift, other.neg != flip))
                    continue
                b = Ref(b.node, b.shift + int(op.data), b.neg)
                nodes.append(_plan_add(nodes, a, b, op.opcode == 1))
                local.append(Ref(len(nodes) - 1))
            else:
                raise HwbnnError(f"da4ml returned an operation hwbnn does not build "
                                 f"(opcode {op.opcode})")
        inputs = [None if index < 0 or local[index] is None else
                  Ref(local[index].node, local[index].shift + int(shift),
                      local[index].neg != bool(neg))
                  for index, shift, neg in zip(stage.out_idxs, stage.out_shifts,
                                               stage.out_negs, strict=True)]
    assert len(inputs) == weights.shape[0], "one output per row"
    return inputs
