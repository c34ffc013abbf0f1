"""The CPU's measured ceiling for binary work: its clock and a vector popcount loop.

``hwbnn bench cpu`` reports every packed figure as a fraction of what this machine does in
the best case, measured in the same run rather than taken from a nominal clock:

* the clock, from a dependent chain of 1-cycle integer operations (shift and add: 2 cycles
  an iteration on any current x86 or ARM core; a VM's /proc/cpuinfo often shows the host's
  base clock instead);
* the popcount ceiling, from the packed engine's own inner loop with nothing else around it:
  one input word XORed with a row of weight words, popcounted and added to accumulators,
  everything in L1 (LLVM makes it vector XOR + VPOPCNTQ + add where the CPU has
  AVX512-VPOPCNTDQ, the fastest 1-bit MAC a CPU offers). Its unit is 1-bit MACs per second.

Each figure is the best of several timed repetitions (the undisturbed time).
"""

from __future__ import annotations

import time

import numpy as np

# Popcount loop operands: 8 words x 256 rows of weights (16 KiB) and 256 accumulators (2 KiB),
# half of a 32 KiB L1 data cache; rows in multiples of a 512-bit vector.
CEILING_WORDS = 8
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
            for j in range(x.shape[0]):
                xw = x[j]
                ws = w[j]
                for r in range(acc.shape[0]):
                    acc[r] += popcount(xw ^ ws[r])
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
                 rng.integers(0, 2**63, size=(CEILING_WORDS, CEILING_ROWS), dtype=np.uint64),
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
