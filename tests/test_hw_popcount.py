import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.sim import Simulator

from hwbnn.errors import HwbnnError
from hwbnn.hw.popcount import AdderTree, Popcount, popcount_latency, tree_latency


def rtl_sums(tree, vectors, rng, output=None):
    """Feed one vector per enabled cycle (random disabled cycles between); return the sums
    (``output(tree, ctx)``, default ``o``).

    The sum of the vector fed at the n-th enabled edge shows on ``o`` after edge
    n + latency - 1 (counting from 0)."""
    results = []
    idle = [0] * len(vectors[0])

    async def bench(ctx):
        edges = 0
        while len(results) < len(vectors):
            enable = rng.random() < 0.7
            vector = vectors[edges] if edges < len(vectors) else idle
            for n, value in enumerate(vector):
                ctx.set(tree.i[n], int(value))
            ctx.set(tree.en, enable)
            await ctx.tick()
            if enable:
                edges += 1
                if edges >= tree.latency:
                    results.append(output(tree, ctx) if output else ctx.get(tree.o))

    sim = Simulator(tree)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("width", [1, 2, 3, 7, 16, 33, 64])
@pytest.mark.parametrize("levels_per_stage", [1, 2, 3])
def test_popcount(width, levels_per_stage):
    rng = np.random.default_rng(width * 10 + levels_per_stage)
    tree = Popcount(width, levels_per_stage=levels_per_stage)
    vectors = [list(rng.integers(0, 2, size=width)) for _ in range(12)]
    vectors.append([1] * width)
    assert rtl_sums(tree, vectors, rng) == [sum(v) for v in vectors]
    assert tree.latency == popcount_latency(width, levels_per_stage)
    # The carry-in tree has floor(log2(width)) adder levels: a register every
    # levels_per_stage inner levels, then the output register.
    levels = width.bit_length() - 1
    assert tree.latency == max(levels - 1, 0) // levels_per_stage + 1
    assert tree.latency <= tree_latency(width, levels_per_stage)
    assert len(tree.o) == width.bit_length()


@pytest.mark.parametrize("width", [2, 3, 8, 64])
def test_popcount_carry_lane(width):
    """With ``carry``, ``o`` counts all lanes but the last and ``carry`` is that lane, in step."""
    rng = np.random.default_rng(width)
    tree = Popcount(width, carry=True)
    vectors = [list(rng.integers(0, 2, size=width)) for _ in range(12)]
    vectors += [[1] * width, [0] * (width - 1) + [1]]
    pairs = rtl_sums(tree, vectors, rng, lambda t, ctx: (ctx.get(t.o), ctx.get(t.carry)))
    assert pairs == [(sum(v[:-1]), v[-1]) for v in vectors]
    assert len(tree.o) == (width - 1).bit_length()


@pytest.mark.parametrize("count, shape", [(5, signed(4)), (8, unsigned(3)), (1, signed(6))])
def test_adder_tree(count, shape):
    rng = np.random.default_rng(count)
    tree = AdderTree(count, shape)
    lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else (
        0, 1 << shape.width)
    vectors = [list(rng.integers(lo, hi, size=count)) for _ in range(10)]
    vectors += [[lo] * count, [hi - 1] * count]
    assert rtl_sums(tree, vectors, rng) == [sum(v) for v in vectors]


@pytest.mark.parametrize("make, message", [
    (lambda: Popcount(0), "popcount width must be a positive integer"),
    (lambda: AdderTree(4, unsigned(2), levels_per_stage=0), "levels_per_stage must be"),
    (lambda: Popcount(3, levels_per_stage=0), "levels_per_stage must be"),
    (lambda: Popcount(1, carry=True), "carry lane needs at least 2 lanes")])
def test_errors(make, message):
    with pytest.raises(HwbnnError, match=message):
        make()
