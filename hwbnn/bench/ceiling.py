"""The CPU's measured ceiling for binary work: its clock and a vector popcount loop.

``hwbnn bench cpu`` reports every packed figure as a fraction of what this machine does in
the best case, measured in the same run rather than taken from a nominal clock:

* the clock, from a dependent chain of 1-cycle integer operations (shift and add: 2 cycles
  an iteration on any current x86 or ARM core; a VM's /proc/cpuinfo often shows the host's
  base clock instead);
* the popcount ceiling: the packed engine's kind of inner loop with nothing else around it
  and its accumulator traffic amortized, so that only the popcounts count. Each weight word
  of a row, loaded once, is XORed with eight input words, the eight popcounts summed and added
  to the row's accumulator; everything in L1 (LLVM makes it vector XOR + VPOPCNTQ + add where
  the CPU has AVX512-VPOPCNTDQ, the fastest 1-bit MAC a CPU offers). Measured here it is
  about 3x the same loop with one input word per accumulator update (the engine's tiles of
  four windows and its 8-bit pixel planes sit between the two). Its unit is 1-bit MACs per
  second.

Each figure is the best of several timed repetitions (the undisturbed time).
"""

from __future__ import annotations

import time

import numpy as np

# Popcount loop operands: 64 input words (8 per weight word), 8 x 256 weight words (16 KiB)
# and 256 accumulators (2 KiB), half of a 32 KiB L1 data cache; rows in multiples of a 512-bit
# vector.
CEILING_WORDS = 64
CEILING_STREAMS = 8
CEILING_ROWS = 256
# Chain iterations and loop passes per timed repetition (about 10 ms each at 3-4 GHz).
CLOCK_ITERATIONS = 20_000_000
CEILING_PASSES = 2_000
# Cycles of one clock-chain iteration: a shift and an add, each of 1 cycle latency.
CHAIN_CYCLES = 2


def _kernels():
    from numba import njit

    from ..ref.popcount import popcount

    @njit(cache=True)
    def chain(n, seed):
        x = seed
        for _ in range(n):
            x = x + (x >> 7)
        return x

    @njit(cache=True, nogil=True)
    def popcount_loop(x, w, acc, passes):
        for _ in range(passes):
            for j in range(w.shape[0]):
                x0, x1, x2, x3 = x[8 * j], x[8 * j + 1], x[8 * j + 2], x[8 * j + 3]
                x4, x5, x6, x7 = x[8 * j + 4], x[8 * j + 5], x[8 * j + 6], x[8 * j + 7]
                ws = w[j]
                for r in range(acc.shape[0]):
                    v = ws[r]
                    acc[r] += (popcount(x0 ^ v) + popcount(x1 ^ v) + popcount(x2 ^ v)
                               + popcount(x3 ^ v) + popcount(x4 ^ v) + popcount(x5 ^ v)
                               + popcount(x6 ^ v) + popcount(x7 ^ v))
        return acc[0]

    return chain, popcount_loop


_COMPILED: list = []


def _best(function, repetitions: int) -> float:
    function()  # compile or warm up
    best = float("inf")
    for _ in range(repetitions):
        begin = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - begin)
    return best


def measure(threads: int = 1, repetitions: int = 20) -> dict:
    """Measured clock (MHz) and popcount ceiling (1-bit MACs per second) of this CPU: the
    loop on ``threads`` threads at once (each its own operands), their MACs over the wall
    time."""
    if not _COMPILED:
        _COMPILED.extend(_kernels())
    chain, popcount_loop = _COMPILED
    clock_s = _best(lambda: chain(CLOCK_ITERATIONS, 3), repetitions)
    rng = np.random.default_rng(0)
    operands = [(rng.integers(0, 2**63, size=CEILING_WORDS, dtype=np.uint64),
                 rng.integers(0, 2**63, size=(CEILING_WORDS // CEILING_STREAMS, CEILING_ROWS),
                              dtype=np.uint64),
                 np.zeros(CEILING_ROWS, dtype=np.int64)) for _ in range(threads)]

    def loops():
        if threads == 1:
            popcount_loop(*operands[0], CEILING_PASSES)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(popcount_loop, *o, CEILING_PASSES) for o in operands]:
                future.result()

    loop_s = _best(loops, repetitions)
    macs = threads * 64 * CEILING_WORDS * CEILING_ROWS * CEILING_PASSES
    return {"clock_mhz": CHAIN_CYCLES * CLOCK_ITERATIONS / clock_s / 1e6,
            "popcount_macs_per_s": macs / loop_s}
