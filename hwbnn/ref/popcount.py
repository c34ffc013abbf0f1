"""Compiled kernels of the packed CPU engine (numba, LLVM ``ctpop``).

Operands are uint64 words. An activation tensor is ``(N, planes, H, W, words)``: every pixel
holds its channels in ``words = ceil(C / 64)`` words, bit ``c % 64`` of word ``c // 64``.
Weights are ``(planes, KH * KW * words, rows)``: window word ``j`` of every row, in the
(kernel row, kernel column, channel) order of a window, so a convolution runs straight on the
packed tensor (no im2col) and the innermost loop runs over rows. Bits past ``C`` are 0 on both
sides.

Planes per encoding (``sign`` bits store 1 = +1 everywhere, so a product's sign is an XOR):

* binary: ``[sign]``; the stored 0 of the -1 padding needs no mask.
* ternary: ``[nonzero, sign]`` (sign = 0 where nonzero = 0). docs/design.md (section 2)
  stores the sign of a ternary value as 1 = -1; the XOR of two signs, all the dot product
  needs, is the same.
* unsigned n-bit: ``[bit 0, ..., bit n-1]``, each plane a 0/1 mask of ones.
* masked weights (ternary, residual planes): ``[mask_0, sign_0, mask_1, sign_1, ...]`` with an
  integer scale per pair.

With ``m`` the bits where both operands are nonzero, a plane pair contributes
``popcount(m) - 2 * popcount(m & (x ^ w))``: one popcount for binary x binary (``m`` is the
fan-in, a constant) and the two-popcount (nonzero, sign) form for ternary. Each layer runs as
one ``MODE_*`` so the inner loops stay branch-free and LLVM vectorizes them (``vpopcntq``
where the CPU has AVX512-VPOPCNTDQ).
"""

from __future__ import annotations

import numpy as np
from numba import literally, njit, types
from numba.extending import intrinsic, overload

# x kind (binary, ternary, unsigned) x w kind (binary, masked planes with scales).
MODE_BB, MODE_BM, MODE_TB, MODE_TM, MODE_UB, MODE_UM = range(6)
# Encodings of a thresholded or pooled tensor.
ENC_BINARY, ENC_TERNARY, ENC_UINT = range(3)
# Most planes an activation has (uint8).
MAX_PLANES = 8
# Thresholds per channel up to which a branch-free linear count beats a binary search.
LINEAR_LEVELS = 16

_JIT = {"cache": True, "nogil": True}


@intrinsic
def popcount(typingctx, word):
    """Number of set bits of an integer, as int64 (LLVM ``ctpop``)."""
    if not isinstance(word, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return context.cast(builder, builder.ctpop(args[0]), word, types.int64)

    return types.int64(word), codegen


def _host_has_bmi2() -> bool:
    import llvmlite.binding as llvm

    return bool(llvm.get_host_cpu_features().get("bmi2", False))


HAS_BMI2 = _host_has_bmi2()


@intrinsic
def _pext_bmi2(typingctx, word, mask):
    """The bits of ``word`` under ``mask``, packed into the low bits (x86 BMI2 ``pext``)."""
    if not (isinstance(word, types.Integer) and isinstance(mask, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir
        from numba.core import cgutils

        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64, i64]),
                                            "llvm.x86.bmi.pext.64")
        return builder.call(fn, [context.cast(builder, args[0], word, types.uint64),
                                 context.cast(builder, args[1], mask, types.uint64)])

    return types.uint64(word, mask), codegen


@njit(inline="always", **_JIT)
def _pext_loop(word, mask):
    """:func:`pext` without BMI2: one mask bit at a time."""
    out = np.uint64(0)
    bit = np.uint64(0)
    m = np.uint64(mask)
    while m:
        low = m & (~m + np.uint64(1))
        if np.uint64(word) & low:
            out |= np.uint64(1) << bit
        bit += np.uint64(1)
        m &= m - np.uint64(1)
    return out


# The bits of a word under a mask, packed into the low bits, order kept (a compacted plane's
# input, hwbnn.ref.chain): one instruction where the CPU has BMI2 (chosen when this module is
# imported: LLVM cannot select the intrinsic for a CPU without it).
pext = _pext_bmi2 if HAS_BMI2 else _pext_loop


# The row loops slice their operands and index them from 0: with ``a[start + i]`` numba
# guards every access against negative indices, which keeps LLVM from vectorizing the loop
# (measured 4-10x slower).
#
# One window word of the input meets the same word of every weight row: the weights are
# stored transposed, ``(planes, window words, rows)``, so the innermost loop runs over rows,
# contiguous and long (64..1024), and LLVM turns it into vector XOR/AND + VPOPCNTQ + add
# on 8 rows at a time. (Rows of words with a short word loop inside cost 5x more on the
# 3-word kernel rows of a 64-channel 3x3 convolution.) ``a`` is the slice of accumulators
# of one output pixel, ``x`` the input (flat) with the word at ``xi``, plane ``p`` of it
# ``p * xplane`` further, ``w`` the weights (flat) with word ``j`` of plane ``p`` of rows
# ``r0..r1-1`` at ``((p * kl + j) * rows + r0)``.


@njit(inline="always", **_JIT)
def _weights(w, plane, j, kl, rows, r0, r1):
    start = (plane * kl + j) * rows
    return w[start + r0:start + r1]


@njit(inline="always", **_JIT)
def _update_bb(a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
    xw = x[xi]
    ws = _weights(w, 0, j, kl, rows, r0, r1)
    for r in range(a.shape[0]):
        a[r] += popcount(xw ^ ws[r])


@njit(inline="always", **_JIT)
def _update_bm(a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
    xw = x[xi]
    for p in range(scales.shape[0]):
        wm = _weights(w, 2 * p, j, kl, rows, r0, r1)
        ws = _weights(w, 2 * p + 1, j, kl, rows, r0, r1)
        scale = scales[p]
        for r in range(a.shape[0]):
            a[r] += scale * popcount(wm[r] & (xw ^ ws[r]))


@njit(inline="always", **_JIT)
def _update_tb(a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
    xm = x[xi]
    if xm == 0:  # all zeros (or padding): nothing to add
        return
    xs = x[xi + xplane]
    ws = _weights(w, 0, j, kl, rows, r0, r1)
    for r in range(a.shape[0]):
        a[r] += popcount(xm & (xs ^ ws[r]))


@njit(inline="always", **_JIT)
def _update_tm(a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
    xm = x[xi]
    if xm == 0:
        return
    xs = x[xi + xplane]
    for p in range(scales.shape[0]):
        wm = _weights(w, 2 * p, j, kl, rows, r0, r1)
        ws = _weights(w, 2 * p + 1, j, kl, rows, r0, r1)
        scale = scales[p]
        for r in range(a.shape[0]):
            m = xm & wm[r]
            a[r] += scale * (popcount(m) - 2 * popcount(m & (xs ^ ws[r])))


@njit(inline="always", **_JIT)
def _update_ub(a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
    ws = _weights(w, 0, j, kl, rows, r0, r1)
    for b in range(xplanes):
        u = x[xi + b * xplane]
        if u == 0:
            continue
        for r in range(a.shape[0]):
            a[r] += popcount(u & ws[r]) << b


@njit(inline="always", **_JIT)
def _update_um(a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
    for b in range(xplanes):
        u = x[xi + b * xplane]
        if u == 0:
            continue
        for p in range(scales.shape[0]):
            wm = _weights(w, 2 * p, j, kl, rows, r0, r1)
            ws = _weights(w, 2 * p + 1, j, kl, rows, r0, r1)
            scale = scales[p] << b
            for r in range(a.shape[0]):
                m = u & wm[r]
                a[r] += scale * (2 * popcount(m & ws[r]) - popcount(m))


# What the sums of popcounts become: base - 2 * mismatches (binary x), nonzeros - 2 *
# mismatches (ternary x, binary w), 2 * matches - sum of x (unsigned x, binary w); the
# masked forms are complete already.


@njit(inline="always", **_JIT)
def _finish_base(a, base, stat):
    for r in range(a.shape[0]):
        a[r] = base[r] - 2 * a[r]


@njit(inline="always", **_JIT)
def _finish_stat(a, base, stat):
    for r in range(a.shape[0]):
        a[r] = stat - 2 * a[r]


@njit(inline="always", **_JIT)
def _finish_sum(a, base, stat):
    for r in range(a.shape[0]):
        a[r] = 2 * a[r] - stat


@njit(inline="always", **_JIT)
def _finish_none(a, base, stat):
    return


_UPDATE = {MODE_BB: _update_bb, MODE_BM: _update_bm, MODE_TB: _update_tb,
           MODE_TM: _update_tm, MODE_UB: _update_ub, MODE_UM: _update_um}
_FINISH = {MODE_BB: _finish_base, MODE_BM: _finish_base, MODE_TB: _finish_stat,
           MODE_TM: _finish_none, MODE_UB: _finish_sum, MODE_UM: _finish_none}


def _update(mode, a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
    """Typing-time dispatch on a literal ``mode`` to its ``_update_*``."""


def _finish(mode, a, base, stat):
    """Typing-time dispatch on a literal ``mode`` to its ``_finish_*``."""


@overload(_update, inline="always", jit_options=_JIT)
def _update_for_mode(mode, a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
    if isinstance(mode, types.IntegerLiteral):
        implementation = _UPDATE[mode.literal_value]

        def update(mode, a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales):
            implementation(a, x, xi, xplane, xplanes, w, j, kl, rows, r0, r1, scales)

        return update
    return None


@overload(_finish, inline="always", jit_options=_JIT)
def _finish_for_mode(mode, a, base, stat):
    if isinstance(mode, types.IntegerLiteral):
        implementation = _FINISH[mode.literal_value]

        def finish(mode, a, base, stat):
            implementation(a, base, stat)

        return finish
    return None


@njit(**_JIT)
def _layer_jobs(mode, first_job, last_job, xa, xplane, xplanes, wa, kl, scales, wbase, xstat,
                wp, words, kh, kw, oh, ow, tile, chunk, acc):
    """Jobs ``first_job..last_job-1``; a job is a tile of frames times a chunk of rows.

    ``mode`` is compiled in as a literal (one specialization per mode): a runtime mode
    inside the row loop blocks its vectorization (measured 9x slower).
    """
    literally(mode)
    rows = wbase.shape[0]
    chunks = -(-rows // chunk)
    row = wp * words
    length = kw * words
    for job in range(first_job, last_job):
        t = job // chunks
        r0 = (job - t * chunks) * chunk
        r1 = min(r0 + chunk, rows)
        base = wbase[r0:r1]
        for n in range(t * tile, min(t * tile + tile, xstat.shape[0])):
            frame = n * xplanes * xplane
            for oy in range(oh):
                for ox in range(ow):
                    pix = oy * ow + ox
                    xo = frame + (oy * wp + ox) * words
                    out = (n * oh * ow + pix) * rows
                    a = acc[out + r0:out + r1]
                    a[:] = 0
                    for ky in range(kh):
                        for i in range(length):
                            _update(mode, a, xa, xo + ky * row + i, xplane, xplanes, wa,
                                    ky * length + i, kl, rows, r0, r1, scales)
                    _finish(mode, a, base, xstat[n, pix])


@njit(**_JIT)
def _layer_any_mode(mode, first_job, last_job, xa, xplane, xplanes, wa, kl, scales, wbase,
                    xstat, wp, words, kh, kw, oh, ow, tile, chunk, acc):
    """Run the jobs with the specialization of ``mode`` (a runtime value here, a literal in
    each call, so calls from Python find one compiled entry point)."""
    if mode == MODE_BB:
        _layer_jobs(MODE_BB, first_job, last_job, xa, xplane, xplanes, wa, kl, scales, wbase,
                    xstat, wp, words, kh, kw, oh, ow, tile, chunk, acc)
    elif mode == MODE_BM:
        _layer_jobs(MODE_BM, first_job, last_job, xa, xplane, xplanes, wa, kl, scales, wbase,
                    xstat, wp, words, kh, kw, oh, ow, tile, chunk, acc)
    elif mode == MODE_TB:
        _layer_jobs(MODE_TB, first_job, last_job, xa, xplane, xplanes, wa, kl, scales, wbase,
                    xstat, wp, words, kh, kw, oh, ow, tile, chunk, acc)
    elif mode == MODE_TM:
        _layer_jobs(MODE_TM, first_job, last_job, xa, xplane, xplanes, wa, kl, scales, wbase,
                    xstat, wp, words, kh, kw, oh, ow, tile, chunk, acc)
    elif mode == MODE_UB:
        _layer_jobs(MODE_UB, first_job, last_job, xa, xplane, xplanes, wa, kl, scales, wbase,
                    xstat, wp, words, kh, kw, oh, ow, tile, chunk, acc)
    else:
        _layer_jobs(MODE_UM, first_job, last_job, xa, xplane, xplanes, wa, kl, scales, wbase,
                    xstat, wp, words, kh, kw, oh, ow, tile, chunk, acc)


def layer(mode, xa, wa, scales, wbase, xstat, wp, words, kh, kw, oh, ow, tile, chunk, acc,
          threads):
    """Accumulators ``acc (N, OH*OW, rows)`` of a packed layer.

    ``xa (N, planes, Hp*Wp*words)``: input with its padding border; ``wa (planes,
    KH*KW*words, rows)``: weights transposed; ``scales`` per weight plane pair; ``wbase`` per
    row and ``xstat (N, OH*OW)`` per window: the terms of the mode that do not depend on both
    operands. A job is ``tile`` frames times ``chunk`` rows.
    """
    jobs = -(-xa.shape[0] // tile) * -(-wa.shape[2] // chunk)
    flat_x, flat_w, flat_acc = xa.reshape(-1), wa.reshape(-1), acc.reshape(-1)

    def run(first, last):
        _layer_any_mode(mode, first, last, flat_x, xa.shape[2], xa.shape[1], flat_w,
                        wa.shape[1], scales, wbase, xstat, wp, words, kh, kw, oh, ow, tile,
                        chunk, flat_acc)

    run_jobs(run, jobs, threads)


_POOL: list = []


def run_jobs(run, jobs: int, threads: int) -> None:
    """Call ``run(first, last)`` over ``0..jobs`` split among ``threads`` threads.

    The kernels release the GIL (``nogil``), so plain Python threads run them in parallel;
    this keeps one compiled version of each kernel (numba's ``parallel=True`` would compile a
    second one, several times slower to build).
    """
    if threads <= 1 or jobs <= 1:
        run(0, jobs)
        return
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(thread_name_prefix="hwbnn-packed"))
    bounds = [jobs * i // threads for i in range(threads + 1)]
    futures = [_POOL[0].submit(run, bounds[i], bounds[i + 1]) for i in range(1, threads)]
    run(bounds[0], bounds[1])
    for future in futures:
        future.result()


@njit(inline="always", **_JIT)
def _count(a, ao, length):
    a = a[ao:ao + length]
    s = 0
    for i in range(length):
        s += popcount(a[i])
    return s


@njit(**_JIT)
def _window_stat_serial(mode, xa, wp, words, kh, kw, ow, out):
    length = kw * words
    row = wp * words
    for n in range(xa.shape[0]):
        for pix in range(out.shape[1]):
            oy = pix // ow
            xo = (oy * wp + pix - oy * ow) * words
            s = 0
            if mode == MODE_TB:
                for ky in range(kh):
                    s += _count(xa[n, 0], xo + ky * row, length)
            else:
                for b in range(xa.shape[1]):
                    sb = 0
                    for ky in range(kh):
                        sb += _count(xa[n, b], xo + ky * row, length)
                    s += sb << b
            out[n, pix] = s


def window_stat(mode, xa, wp, words, kh, kw, ow, out):
    """Per window: nonzero count (ternary x binary) or sum of values (unsigned x binary)."""
    _window_stat_serial(mode, xa, wp, words, kh, kw, ow, out)


@njit(inline="always", **_JIT)
def _count_passed(value, thresholds, first, levels):
    """Number of sorted thresholds ``thresholds[first:first+levels]`` that ``value`` reaches."""
    lo = 0
    hi = levels
    while lo < hi:
        mid = (lo + hi) >> 1
        if value >= thresholds[first + mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(inline="always", **_JIT)
def _levels_passed(value, thresholds, first, levels):
    """Thresholds ``thresholds[first:first+levels]`` (sorted) that ``value`` reaches."""
    if levels > LINEAR_LEVELS:
        return _count_passed(value, thresholds, first, levels)
    count = 0
    for i in range(levels):
        count += value >= thresholds[first + i]
    return count


@njit(**_JIT)
def _threshold_binary(a, thresholds, scratch, at, words):
    """:func:`_threshold_pixel` for one threshold per row and binary outputs: each word's 64
    compares on slices indexed from 0 (one vector compare; ``a[r0 + r]`` keeps LLVM's
    negative-index guards and runs scalar, 6x slower)."""
    rows = a.shape[0]
    for word in range(words):
        r0 = word * 64
        r1 = min(rows, r0 + 64)
        aw, tw = a[r0:r1], thresholds[r0:r1]
        b = np.uint64(0)
        for r in range(r1 - r0):
            b |= np.uint64(aw[r] >= tw[r]) << np.uint64(r)
        scratch[at + word] = b


@njit(**_JIT)
def _threshold_ternary(a, thresholds, scratch, at, plane, words):
    """:func:`_threshold_pixel` for ternary outputs (two thresholds per row): each word's
    (nonzero, sign) planes in one pass on slices indexed from 0, branch-free."""
    rows = a.shape[0]
    for word in range(words):
        r0 = word * 64
        r1 = min(rows, r0 + 64)
        aw, tw = a[r0:r1], thresholds[2 * r0:2 * r1]
        nonzero = np.uint64(0)
        positive = np.uint64(0)
        for r in range(r1 - r0):
            low, high = aw[r] >= tw[2 * r], aw[r] >= tw[2 * r + 1]
            nonzero |= np.uint64(low == high) << np.uint64(r)  # count 0 or 2, not 1
            positive |= np.uint64(high) << np.uint64(r)
        scratch[at + word] = nonzero
        scratch[at + plane + word] = positive


@njit(inline="always", **_JIT)
def _threshold_pixel(a, thresholds, levels, encoding, scratch, at, plane, planes, words,
                     bits):
    """Threshold the accumulators ``a`` of one output pixel and store its packed words."""
    if encoding == ENC_BINARY:
        _threshold_binary(a, thresholds, scratch, at, words)
        return
    if encoding == ENC_TERNARY and levels == 2:
        _threshold_ternary(a, thresholds, scratch, at, plane, words)
        return
    rows = a.shape[0]
    for word in range(words):
        r0 = word * 64
        r1 = min(rows, r0 + 64)
        for p in range(planes):
            bits[p] = 0
        for r in range(r0, r1):
            count = _levels_passed(a[r], thresholds, r * levels, levels)
            shift = np.uint64(r - r0)
            if encoding == ENC_TERNARY:
                bits[0] |= np.uint64(count != 1) << shift
                bits[1] |= np.uint64(count == 2) << shift
            else:
                for p in range(planes):
                    bits[p] |= np.uint64((count >> p) & 1) << shift
        for p in range(planes):
            scratch[at + p * plane + word] = bits[p]


@njit(**_JIT)
def _threshold_jobs(first_job, last_job, acc, rows, pixels, thresholds, levels, encoding, out,
                    planes, plane_words, pad, ow, out_wp, words):
    """Thresholds of output pixels ``first_job..last_job-1`` (job = frame * pixels + pixel),
    written as whole words: 64 channels per word and plane for the next layer."""
    bits = np.zeros(MAX_PLANES, dtype=np.uint64)
    for job in range(first_job, last_job):
        n = job // pixels
        pix = job - n * pixels
        oy = pix // ow
        ox = pix - oy * ow
        at = n * planes * plane_words + ((oy + pad) * out_wp + ox + pad) * words
        _threshold_pixel(acc[job * rows:(job + 1) * rows], thresholds, levels, encoding, out,
                         at, plane_words, planes, words, bits)


def threshold(acc, thresholds, encoding, out, pad, ow, threads):
    """Compare-and-count ``acc (N, OH*OW, rows)`` against sorted integer thresholds
    ``(rows, levels)`` and pack the activations into ``out (N, planes, OH+2*pad, OW+2*pad,
    words)`` (zeroed)."""
    n, pixels, rows = acc.shape
    flat_acc, flat_thresholds, flat_out = acc.reshape(-1), thresholds.reshape(-1), out.reshape(-1)
    planes, out_wp, words = out.shape[1], out.shape[3], out.shape[4]
    plane_words = out.shape[2] * out_wp * words

    def run(first, last):
        _threshold_jobs(first, last, flat_acc, rows, pixels, flat_thresholds,
                        thresholds.shape[1], encoding, flat_out, planes, plane_words, pad, ow,
                        out_wp, words)

    run_jobs(run, n * pixels, threads)


@njit(inline="always", **_JIT)
def _bits_of(value, encoding, plane):
    """Bit ``plane`` of one activation value as stored (1 = +1 for binary signs)."""
    if encoding == ENC_BINARY:
        return np.uint64(value > 0)
    if encoding == ENC_TERNARY:
        if plane == 0:
            return np.uint64(value != 0)
        return np.uint64(value > 0)
    return np.uint64((value >> plane) & 1)


@njit(inline="always", **_JIT)
def pack_pixels(frame, h, w, c, encoding, dest, at0, plane, planes, wp, words, pad):
    """Pack one frame's integers ``(H*W*C,)`` into words: pixel (y, x) at ``at0 + ((y + pad)
    * wp + x + pad) * words``, plane p ``p * plane`` further. Each word is built in a
    register, 64 channels at a time, and stored once; branch-free (a data-dependent branch
    per element mispredicts on random signs and costs more than the whole word's popcounts)."""
    for y in range(h):
        for x in range(w):
            src = (y * w + x) * c
            at = at0 + ((y + pad) * wp + x + pad) * words
            for word in range(words):
                values = frame[src + word * 64:src + min(c, word * 64 + 64)]
                for p in range(planes):
                    bits = np.uint64(0)
                    for ch in range(values.shape[0]):  # from 0: a vector loop (see above)
                        bits |= _bits_of(values[ch], encoding, p) << np.uint64(ch)
                    dest[at + p * plane + word] = bits


@njit(**_JIT)
def _pack_serial(values, encoding, out, pad):
    """:func:`pack_pixels` frame after frame."""
    n_frames, h, w, c = values.shape
    planes, hp, wp, words = out.shape[1], out.shape[2], out.shape[3], out.shape[4]
    flat = values.reshape(-1)
    dest = out.reshape(-1)
    size = h * w * c
    for n in range(n_frames):
        pack_pixels(flat[n * size:(n + 1) * size], h, w, c, encoding, dest,
                    n * planes * hp * wp * words, hp * wp * words, planes, wp, words, pad)


def pack(values, encoding, out, pad):
    """Pack integer activations ``(N, H, W, C)`` into the zeroed ``out`` (planes, border)."""
    _pack_serial(np.ascontiguousarray(values), encoding, out, pad)
