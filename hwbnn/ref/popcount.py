"""Compiled kernels of the packed CPU engine (numba, LLVM ``ctpop``).

Operands are uint64 words. An activation tensor is ``(N, planes, H, W, words)``: every pixel
holds its channels in ``words = ceil(C / 64)`` words, bit ``c % 64`` of word ``c // 64``; a
weight row is ``(planes, KH * KW * words)`` in the same (kernel row, kernel column, channel)
order, so one kernel row of a window is ``KW * words`` contiguous words on both sides and a
convolution runs straight on the packed tensor. Bits past ``C`` are 0 on both sides.

Planes per encoding (``sign`` bits store 1 = +1 everywhere, so a product's sign is an XOR):

* binary: ``[sign]``; the stored 0 of the -1 padding needs no mask.
* ternary: ``[nonzero, sign]`` (sign = 0 where nonzero = 0). DESIGN.md stores the sign of a
  ternary value as 1 = -1; the XOR of two signs, all the dot product needs, is the same.
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
from numba import njit, prange, types
from numba.extending import intrinsic

# x kind (binary, ternary, unsigned) x w kind (binary, masked planes with scales).
MODE_BB, MODE_BM, MODE_TB, MODE_TM, MODE_UB, MODE_UM = range(6)
# Encodings of a thresholded or pooled tensor.
ENC_BINARY, ENC_TERNARY, ENC_UINT = range(3)
# Most planes an activation has (uint8).
MAX_PLANES = 8

_JIT = {"cache": True, "nogil": True}


@intrinsic
def popcount(typingctx, word):
    """Number of set bits of an integer, as int64 (LLVM ``ctpop``)."""
    if not isinstance(word, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return context.cast(builder, builder.ctpop(args[0]), word, types.int64)

    return types.int64(word), codegen


@njit(inline="always", **_JIT)
def _xor_count(a, ao, b, bo, length):
    s = 0
    for i in range(length):
        s += popcount(a[ao + i] ^ b[bo + i])
    return s


@njit(inline="always", **_JIT)
def _count(a, ao, length):
    s = 0
    for i in range(length):
        s += popcount(a[ao + i])
    return s


@njit(inline="always", **_JIT)
def _and_count(a, ao, b, bo, length):
    s = 0
    for i in range(length):
        s += popcount(a[ao + i] & b[bo + i])
    return s


@njit(inline="always", **_JIT)
def _masked_xor_count(m, mo, a, ao, b, bo, length):
    s = 0
    for i in range(length):
        s += popcount(m[mo + i] & (a[ao + i] ^ b[bo + i]))
    return s


@njit(inline="always", **_JIT)
def _ternary_counts(xm, xs, xo, wm, ws, wo, length):
    """(popcount(m), popcount(m & (xs ^ ws))) with m = xm & wm."""
    c = 0
    s = 0
    for i in range(length):
        m = xm[xo + i] & wm[wo + i]
        c += popcount(m)
        s += popcount(m & (xs[xo + i] ^ ws[wo + i]))
    return c, s


@njit(inline="always", **_JIT)
def _unsigned_counts(u, uo, wm, ws, wo, length):
    """(popcount(u & wm), popcount(u & wm & ws)): ones met by nonzero and by +1 weights."""
    c = 0
    p = 0
    for i in range(length):
        m = u[uo + i] & wm[wo + i]
        c += popcount(m)
        p += popcount(m & ws[wo + i])
    return c, p


@njit(**_JIT)
def _accumulate(mode, x, w, scales, wbase, xstat, pix, xo, row, kh, length):
    """Accumulator of one output pixel of one weight row.

    ``x`` is the frame ``(planes, words)``, ``w`` the row ``(planes, words)``, ``xo`` the
    window's first word, ``row`` the words between two image rows, ``length`` the words of
    one kernel row.
    """
    if mode == MODE_BB:
        s = 0
        for ky in range(kh):
            s += _xor_count(x[0], xo + ky * row, w[0], ky * length, length)
        return wbase - 2 * s
    if mode == MODE_BM:
        s = 0
        for p in range(scales.shape[0]):
            sp = 0
            for ky in range(kh):
                wo = ky * length
                sp += _masked_xor_count(w[2 * p], wo, x[0], xo + ky * row, w[2 * p + 1], wo,
                                        length)
            s += scales[p] * sp
        return wbase - 2 * s
    if mode == MODE_TB:
        s = 0
        for ky in range(kh):
            xk = xo + ky * row
            s += _masked_xor_count(x[0], xk, x[1], xk, w[0], ky * length, length)
        return xstat[pix] - 2 * s
    if mode == MODE_TM:
        acc = 0
        for p in range(scales.shape[0]):
            cp = 0
            sp = 0
            for ky in range(kh):
                c, s = _ternary_counts(x[0], x[1], xo + ky * row, w[2 * p], w[2 * p + 1],
                                       ky * length, length)
                cp += c
                sp += s
            acc += scales[p] * (cp - 2 * sp)
        return acc
    if mode == MODE_UB:
        s = 0
        for b in range(x.shape[0]):
            sb = 0
            for ky in range(kh):
                sb += _and_count(x[b], xo + ky * row, w[0], ky * length, length)
            s += sb << b
        return 2 * s - xstat[pix]
    acc = 0
    for b in range(x.shape[0]):
        for p in range(scales.shape[0]):
            cp = 0
            pp = 0
            for ky in range(kh):
                c, pos = _unsigned_counts(x[b], xo + ky * row, w[2 * p], w[2 * p + 1],
                                          ky * length, length)
                cp += c
                pp += pos
            acc += (scales[p] << b) * (2 * pp - cp)
    return acc


@njit(**_JIT)
def _layer_job(job, mode, xa, wa, scales, wbase, xstat, wp, words, kh, kw, ow, tile, acc):
    """One tile of frames times one weight row: every output pixel of those frames."""
    rows = wa.shape[0]
    r = job % rows
    first = (job // rows) * tile
    last = min(first + tile, xa.shape[0])
    w = wa[r]
    base = wbase[r]
    row = wp * words
    length = kw * words
    for n in range(first, last):
        x = xa[n]
        stat = xstat[n]
        for pix in range(acc.shape[1]):
            oy = pix // ow
            ox = pix - oy * ow
            acc[n, pix, r] = _accumulate(mode, x, w, scales, base, stat, pix,
                                         (oy * wp + ox) * words, row, kh, length)


@njit(**_JIT)
def _layer_serial(mode, xa, wa, scales, wbase, xstat, wp, words, kh, kw, ow, tile, acc):
    jobs = -(-xa.shape[0] // tile) * wa.shape[0]
    for job in range(jobs):
        _layer_job(job, mode, xa, wa, scales, wbase, xstat, wp, words, kh, kw, ow, tile, acc)


@njit(parallel=True, **_JIT)
def _layer_parallel(mode, xa, wa, scales, wbase, xstat, wp, words, kh, kw, ow, tile, acc):
    jobs = -(-xa.shape[0] // tile) * wa.shape[0]
    for job in prange(jobs):
        _layer_job(job, mode, xa, wa, scales, wbase, xstat, wp, words, kh, kw, ow, tile, acc)


def layer(mode, xa, wa, scales, wbase, xstat, wp, words, kh, kw, ow, tile, acc, parallel):
    """Accumulators ``acc (N, OH*OW, rows)`` of a packed layer.

    ``xa (N, planes, Hp*Wp*words)``: input with its padding border; ``wa (rows, planes,
    KH*KW*words)``; ``scales`` per weight plane pair; ``wbase`` per row and ``xstat``
    ``(N, OH*OW)`` per window: the terms of the mode that do not depend on both operands.
    """
    kernel = _layer_parallel if parallel else _layer_serial
    kernel(mode, xa, wa, scales, wbase, xstat, wp, words, kh, kw, ow, tile, acc)


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
def _count_passed(value, thresholds):
    """Number of sorted thresholds t with value >= t (binary search)."""
    lo = 0
    hi = thresholds.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if value >= thresholds[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**_JIT)
def _threshold_job(job, acc, thresholds, encoding, out, pad, ow):
    """Thresholds of one output pixel, packed 64 channels per word for the next layer."""
    n = job // acc.shape[1]
    pix = job - n * acc.shape[1]
    oy = pix // ow + pad
    ox = pix - (pix // ow) * ow + pad
    rows = acc.shape[2]
    planes = out.shape[1]
    words = np.zeros(MAX_PLANES, dtype=np.uint64)
    for word in range(out.shape[4]):
        for p in range(planes):
            words[p] = 0
        for r in range(word * 64, min(rows, word * 64 + 64)):
            count = _count_passed(acc[n, pix, r], thresholds[r])
            bit = np.uint64(1) << np.uint64(r - word * 64)
            if encoding == ENC_BINARY:
                if count:
                    words[0] |= bit
            elif encoding == ENC_TERNARY:
                if count != 1:
                    words[0] |= bit
                if count == 2:
                    words[1] |= bit
            else:
                for p in range(planes):
                    if (count >> p) & 1:
                        words[p] |= bit
        for p in range(planes):
            out[n, p, oy, ox, word] = words[p]


@njit(**_JIT)
def _threshold_serial(acc, thresholds, encoding, out, pad, ow):
    for job in range(acc.shape[0] * acc.shape[1]):
        _threshold_job(job, acc, thresholds, encoding, out, pad, ow)


@njit(parallel=True, **_JIT)
def _threshold_parallel(acc, thresholds, encoding, out, pad, ow):
    for job in prange(acc.shape[0] * acc.shape[1]):
        _threshold_job(job, acc, thresholds, encoding, out, pad, ow)


def threshold(acc, thresholds, encoding, out, pad, ow, parallel):
    """Compare-and-count ``acc (N, OH*OW, rows)`` against sorted integer thresholds and pack
    the activations into ``out (N, planes, OH+2*pad, OW+2*pad, words)`` (zeroed)."""
    kernel = _threshold_parallel if parallel else _threshold_serial
    kernel(acc, thresholds, encoding, out, pad, ow)


@njit(**_JIT)
def _maxpool_job(job, x, k, encoding, out, pad):
    """One output pixel: OR for binary, (nonzero, sign) rule for ternary, bit-serial max for
    unsigned (an MSB-first elimination among the k*k candidates, 64 channels at a time)."""
    oh = out.shape[2] - 2 * pad
    ow = out.shape[3] - 2 * pad
    n = job // (oh * ow)
    pix = job - n * oh * ow
    oy = pix // ow
    ox = pix - oy * ow
    planes = x.shape[1]
    alive = np.empty(k * k, dtype=np.uint64)
    for word in range(x.shape[4]):
        if encoding == ENC_TERNARY:
            anypos = np.uint64(0)
            allnz = ~np.uint64(0)
            for dy in range(k):
                for dx in range(k):
                    anypos |= x[n, 1, oy * k + dy, ox * k + dx, word]
                    allnz &= x[n, 0, oy * k + dy, ox * k + dx, word]
            out[n, 0, oy + pad, ox + pad, word] = anypos | allnz
            out[n, 1, oy + pad, ox + pad, word] = anypos
            continue
        for i in range(k * k):
            alive[i] = ~np.uint64(0)
        for p in range(planes - 1, -1, -1):
            hit = np.uint64(0)
            for i in range(k * k):
                hit |= alive[i] & x[n, p, oy * k + i // k, ox * k + i % k, word]
            for i in range(k * k):
                alive[i] &= ~hit | x[n, p, oy * k + i // k, ox * k + i % k, word]
            out[n, p, oy + pad, ox + pad, word] = hit


@njit(**_JIT)
def _maxpool_serial(x, k, encoding, out, pad):
    jobs = x.shape[0] * (out.shape[2] - 2 * pad) * (out.shape[3] - 2 * pad)
    for job in range(jobs):
        _maxpool_job(job, x, k, encoding, out, pad)


@njit(parallel=True, **_JIT)
def _maxpool_parallel(x, k, encoding, out, pad):
    jobs = x.shape[0] * (out.shape[2] - 2 * pad) * (out.shape[3] - 2 * pad)
    for job in prange(jobs):
        _maxpool_job(job, x, k, encoding, out, pad)


def maxpool(x, k, encoding, out, pad, parallel):
    """KxK stride-K max pooling of packed ``x (N, planes, H, W, words)`` into ``out`` (with a
    border of ``pad`` pixels for the next layer)."""
    kernel = _maxpool_parallel if parallel else _maxpool_serial
    kernel(x, k, encoding, out, pad)


@njit(**_JIT)
def _pack_serial(values, encoding, out, pad):
    for n in range(values.shape[0]):
        for y in range(values.shape[1]):
            for xx in range(values.shape[2]):
                for c in range(values.shape[3]):
                    v = values[n, y, xx, c]
                    bit = np.uint64(1) << np.uint64(c & 63)
                    word = c >> 6
                    if encoding == ENC_BINARY:
                        if v > 0:
                            out[n, 0, y + pad, xx + pad, word] |= bit
                    elif encoding == ENC_TERNARY:
                        if v != 0:
                            out[n, 0, y + pad, xx + pad, word] |= bit
                        if v > 0:
                            out[n, 1, y + pad, xx + pad, word] |= bit
                    else:
                        for p in range(out.shape[1]):
                            if (v >> p) & 1:
                                out[n, p, y + pad, xx + pad, word] |= bit


def pack(values, encoding, out, pad):
    """Pack integer activations ``(N, H, W, C)`` into the zeroed ``out`` (planes, border)."""
    _pack_serial(values, encoding, out, pad)
