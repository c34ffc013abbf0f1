"""Whole-network kernel of the packed engine for a chain: one compiled call per batch.

Riptide's lesson (Fromm et al., MLSys 2020): a binarized network is only fast when nothing
is left unfused. Here a chain of matvec, conv and max-pool layers runs frame by frame inside
one numba function: a frame's input is packed into words, each weight layer computes one
output pixel's accumulators in a small buffer (the popcount updates of
:mod:`hwbnn.ref.popcount`), thresholds them and writes the next layer's packed words at once,
max pooling works on words, and the last layer writes integer scores. No accumulator tensor,
no Python between layers; threads take whole frames.

The network is a *program*: one row of int64 fields per step (:data:`FIELDS`), with every
step's weights, scales, row bases and thresholds concatenated into one array each, and every
step's packed activations at fixed offsets in one scratch vector per frame. A scratch border
(a conv's padding) is zero and stays zero: the stored 0 is the pad value of every encoding
(-1 binary, 0 ternary and unsigned). See docs/design.md, section 3b.
"""

from __future__ import annotations

import numpy as np
from numba import literally, njit

from .popcount import (
    _JIT,
    ENC_BINARY,
    ENC_TERNARY,
    MAX_PLANES,
    MODE_BB,
    MODE_BM,
    MODE_TB,
    MODE_TM,
    MODE_UB,
    MODE_UM,
    _bits_of,
    _finish,
    _threshold_pixel,
    _update,
    _weights,
    pack_pixels,
    pext,
    popcount,
)

# Fields of a step row. A weight step reads the packed buffer at IN (IN_PLANES planes of
# IN_PLANE words, IN_WP pixels per buffer row, IN_WORDS words per pixel) through KH x KW
# windows, one per output pixel of OH x OW; ROWS output channels; weights at W_OFF
# ((planes, KL, ROWS) words, KL = KH * KW * IN_WORDS), S_LEN plane scales at S_OFF, row bases
# at B_OFF, thresholds (ROWS, LEVELS) at T_OFF (LEVELS 0: the step writes scores); its output
# buffer at OUT (OUT_PLANES planes of OUT_PLANE words, border OUT_PAD, OUT_WP pixels per row,
# OUT_WORDS words per pixel) in encoding OUT_ENC; ACC is where its accumulators go in a trace;
# bit p of FULL is set where pair p's mask is all ones (a residual model's first plane): its
# mismatches are binary ones, counted without the mask.
# STREAM 1: a masked step on binary inputs whose every pair has one mask for all rows (all
# ones, or a bitwidth per input column) runs as one weighed binary stream of C_WORDS words
# per window, whose signs lie compacted at W_OFF, ``(C_WORDS, rows)``, followed by each
# word's plane scale. Where pair 0's mask is all ones, the stream's first RAW words are the
# window's own words, read in place. The other C_WORDS - RAW (a multiple of 4, zero-filled)
# are gathered per window at C_IN of the frame's scratch (room for TILE windows): each
# pair's bits under its mask (KL words at M_OFF of the weights, per pair) packed into whole
# words (:func:`hwbnn.ref.popcount.pext`), pair after pair; pair 0's words past RAW, if
# any, are copied whole (its mask words there all ones, before them zero). Words no weight
# of a plane uses are never read, and the pairs' weighed mismatches sum in one accumulator
# (:func:`_tile_rows_bw`).
# A pool step (KIND_POOL) reads IN with KH = KW = its kernel and writes OUT.
(KIND, MODE, IN, IN_PLANES, IN_PLANE, IN_WP, IN_WORDS, KH, KW, OH, OW, ROWS, W_OFF, KL,
 S_OFF, S_LEN, B_OFF, T_OFF, LEVELS, OUT_ENC, OUT, OUT_PLANES, OUT_PLANE, OUT_PAD, OUT_WP,
 OUT_WORDS, ACC, FULL, STREAM, M_OFF, C_IN, C_WORDS, RAW, FIELDS) = range(34)
KIND_WEIGHT, KIND_POOL, KIND_DIRECT = 0, 1, 2
# KIND_DIRECT: a first conv on unsigned (or signed) integer pixels, computed on the frame's
# integers with int32 weights ``(KH*KW*C, ROWS)`` at W_OFF of the program's dense weights:
# a product per pixel value and row instead of one popcount per bit plane (8 for uint8
# pixels), no packing of the frame (:func:`_direct_step`).
# Windows that a step takes at once (:func:`_tile`): frames of a dense step, pixels of a conv.
TILE = 4
# Most scratch bytes of a tile of frames: beyond, frames go one at a time (a conv network's
# buffers would leave the L2 cache; its dense steps are a small part of its work).
TILE_BYTES = 128 * 1024
# Rows of a tile that go through a window together: their accumulators (4 windows x 128 rows
# x 8 bytes, x plane pairs) stay in the L1 cache while the window's words pass. Measured on
# LFC's 1024-row layers at batch 256: whole rows stream 32 KiB of accumulators per word.
TILE_ROWS = 256


@njit(**_JIT)
def _check_frame(frame, lo, hi, binary):
    """Whether one frame has a value outside ``lo..hi`` (or a 0 for a binary input): its
    least and greatest values and its zeros, three vector reductions (6x faster than a
    per-value test)."""
    least, most, zeros = lo, hi, 0
    for i in range(frame.shape[0]):
        v = frame[i]
        least = min(least, v)
        most = max(most, v)
        zeros += v == 0
    return (least < lo) | (most > hi) | (binary & (zeros > 0))


@njit(**_JIT)
def _pack_frame(frame, h, w, c, encoding, patch, prog, scratch, base, pixel_bits):
    """Pack one frame ``(H*W*C,)`` into the first step's input buffer.

    ``patch`` > 0: the first conv reads whole K x K x C patches (K = patch, padding from the
    step's geometry) packed into one window per output pixel: each pixel's C bits of each
    plane are gathered once into ``pixel_bits (planes, H*W)`` (C <= 64), then shifted into
    place, K*K per window. Else pixels are packed as they are, inside the buffer's border.
    """
    planes, plane, wp, words = prog[0, IN_PLANES], prog[0, IN_PLANE], prog[0, IN_WP], prog[
        0, IN_WORDS]
    at0 = base + prog[0, IN]
    if patch == 0:
        pack_pixels(frame, h, w, c, encoding, scratch, at0, plane, planes, wp, words,
                    (wp - w) // 2)
        return
    for i in range(h * w):
        for p in range(planes):
            gathered = np.uint64(0)
            for ch in range(c):
                gathered |= _bits_of(frame[i * c + ch], encoding, p) << np.uint64(ch)
            pixel_bits[p, i] = gathered
    oh, ow = prog[0, OH], prog[0, OW]
    pad = ((oh - 1) + patch - h) // 2  # the conv's padding (stride 1)
    for oy in range(oh):
        for ox in range(ow):
            at = at0 + (oy * wp + ox) * words
            for p in range(planes):
                for word in range(words):
                    scratch[at + p * plane + word] = 0
            for ky in range(patch):
                y = oy + ky - pad
                if y < 0 or y >= h:
                    continue
                for kx in range(patch):
                    x = ox + kx - pad
                    if x < 0 or x >= w:
                        continue
                    i = (ky * patch + kx) * c
                    word, shift = i >> 6, i & 63
                    for p in range(planes):
                        gathered = pixel_bits[p, y * w + x]
                        scratch[at + p * plane + word] |= gathered << np.uint64(shift)
                        if shift + c > 64:
                            scratch[at + p * plane + word + 1] |= gathered >> np.uint64(
                                64 - shift)


# Masked weight planes (ternary, residual, integer) accumulate each plane pair's sum in its
# own slice of the accumulators, ``a[p * rows:(p + 1) * rows]``, with no multiply in the row
# loop (a 64-bit vector multiply costs several times an add); :func:`_combine` weighs them
# by their scales once per output pixel. The sums are those of popcount.py's updates.


@njit(inline="always", **_JIT)
def _update_masked(mode, a, x, xi, xplane, xplanes, w, j, kl, rows, pairs):
    if mode == MODE_BM:
        xw = x[xi]
        for p in range(pairs):
            wm = _weights(w, 2 * p, j, kl, rows, 0, rows)
            ws = _weights(w, 2 * p + 1, j, kl, rows, 0, rows)
            ap = a[p * rows:(p + 1) * rows]
            for r in range(rows):
                ap[r] += popcount(wm[r] & (xw ^ ws[r]))
    elif mode == MODE_TM:
        xm = x[xi]
        if xm == 0:
            return
        xs = x[xi + xplane]
        for p in range(pairs):
            wm = _weights(w, 2 * p, j, kl, rows, 0, rows)
            ws = _weights(w, 2 * p + 1, j, kl, rows, 0, rows)
            ap = a[p * rows:(p + 1) * rows]
            for r in range(rows):
                m = xm & wm[r]
                ap[r] += popcount(m) - 2 * popcount(m & (xs ^ ws[r]))
    else:  # MODE_UM
        for b in range(xplanes):
            u = x[xi + b * xplane]
            if u == 0:
                continue
            for p in range(pairs):
                wm = _weights(w, 2 * p, j, kl, rows, 0, rows)
                ws = _weights(w, 2 * p + 1, j, kl, rows, 0, rows)
                ap = a[p * rows:(p + 1) * rows]
                for r in range(rows):
                    m = u & wm[r]
                    ap[r] += (2 * popcount(m & ws[r]) - popcount(m)) << b


@njit(inline="always", **_JIT)
def _update_ub8(a, x, xi, xplane, ws):
    """Unsigned 8-bit x binary (a first layer on pixels): the eight planes' popcounts of a
    weight word summed in registers, one accumulator update per row instead of eight."""
    u0, u1, u2, u3 = x[xi], x[xi + xplane], x[xi + 2 * xplane], x[xi + 3 * xplane]
    u4, u5, u6, u7 = x[xi + 4 * xplane], x[xi + 5 * xplane], x[xi + 6 * xplane], x[
        xi + 7 * xplane]
    for r in range(a.shape[0]):
        wr = ws[r]
        a[r] += (popcount(u0 & wr) + (popcount(u1 & wr) << 1) + (popcount(u2 & wr) << 2)
                 + (popcount(u3 & wr) << 3) + (popcount(u4 & wr) << 4)
                 + (popcount(u5 & wr) << 5) + (popcount(u6 & wr) << 6)
                 + (popcount(u7 & wr) << 7))


@njit(inline="always", **_JIT)
def _combine(a, rows, scales):
    """``a[r] = sum_p scales[p] * a[p * rows + r]``: the plane pairs' sums, weighed, a pair
    at a time over slices indexed from 0 (vector loops; a loop over pairs inside the row
    loop ran scalar)."""
    acc = a[:rows]
    first = scales[0]
    if first != 1:
        for r in range(rows):
            acc[r] *= first
    for p in range(1, scales.shape[0]):
        pair = a[p * rows:(p + 1) * rows]
        scale = scales[p]
        for r in range(rows):
            acc[r] += scale * pair[r]


@njit(inline="always", **_JIT)
def _emit_pixel(s, prog, acc, t, scratch, base, oy, ox, bits, scores, acc_trace, n):
    """The finished accumulators of output pixel (oy, ox) of step ``s`` for frame ``n``: into
    the trace if one is kept, then scores (the last step) or thresholded into packed words."""
    rows, ow, levels = prog[s, ROWS], prog[s, OW], prog[s, LEVELS]
    pix = oy * ow + ox
    if acc_trace.shape[0]:
        acc_trace[n, prog[s, ACC] + pix * rows:prog[s, ACC] + (pix + 1) * rows] = acc
    if levels == 0:
        scores[n, pix * rows:(pix + 1) * rows] = acc
        return
    out_wp, out_words = prog[s, OUT_WP], prog[s, OUT_WORDS]
    at = base + prog[s, OUT] + ((oy + prog[s, OUT_PAD]) * out_wp + ox + prog[s, OUT_PAD]
                                ) * out_words
    _threshold_pixel(acc, t, levels, prog[s, OUT_ENC], scratch, at, prog[s, OUT_PLANE],
                     prog[s, OUT_PLANES], out_words, bits)


@njit(inline="always", **_JIT)
def _tile(mode, s, prog, scratch, w, rows, pairs, a, x0, x1, x2, x3):
    """Accumulators of :data:`TILE` windows at once (binary x binary, or binary or ternary x
    masked plane pairs), window f's words from ``x_f`` on, into stream f's slice of ``a``
    (``pairs`` slices of ``rows``; one for binary weights): each weight word, loaded once,
    meets the four windows' words (four accumulator streams in one vector loop)."""
    a[:TILE * pairs * rows] = 0
    for r0 in range(0, rows, TILE_ROWS):
        _tile_rows(mode, s, prog, scratch, w, rows, pairs, a, x0, x1, x2, x3, r0,
                   min(rows, r0 + TILE_ROWS))


@njit(inline="always", **_JIT)
def _tile_rows(mode, s, prog, scratch, w, rows, pairs, a, x0, x1, x2, x3, r0, r1):
    """Rows ``r0..r1-1`` of :func:`_tile`: every window word meets those rows' weights while
    their accumulators stay in the L1 cache."""
    kh, kw, words, wp = prog[s, KH], prog[s, KW], prog[s, IN_WORDS], prog[s, IN_WP]
    xplane, kl = prog[s, IN_PLANE], prog[s, KL]
    stream = pairs * rows
    length = kw * words
    if mode == MODE_BB:
        _tile_rows_bb(scratch, w, kl, rows, a, stream, x0, x1, x2, x3, r0, r1, kh, length,
                      wp * words)
        return
    full = prog[s, FULL]
    for p in range(pairs):  # MODE_BM or MODE_TM (the tileable modes)
        if mode == MODE_BM and (full >> p) & 1:
            _tile_rows_bb(scratch, w[(2 * p + 1) * kl * rows:], kl, rows, a[p * rows:],
                          stream, x0, x1, x2, x3, r0, r1, kh, length, wp * words)
        elif mode == MODE_BM:
            _tile_rows_bm(scratch, w, kl, rows, a, stream, p, x0, x1, x2, x3, r0, r1, length,
                          wp * words)
        else:
            _tile_rows_tm(scratch, w, kl, rows, a, stream, p, x0, x1, x2, x3, r0, r1, length,
                          wp * words, xplane)


@njit(inline="always", **_JIT)
def _word_at(j, length, row):
    """Offset of window word j of a window of rows of ``length`` words, ``row`` apart."""
    return (j // length) * row + j % length


@njit(inline="always", **_JIT)
def _four(scratch, x0, x1, x2, x3, i):
    """Word ``i`` of each of a tile's four windows."""
    return scratch[x0 + i], scratch[x1 + i], scratch[x2 + i], scratch[x3 + i]


@njit(**_JIT)
def _tile_rows_bm(scratch, w, kl, rows, a, stream, p, x0, x1, x2, x3, r0, r1, length, row):
    """Plane pair ``p`` (mask, signs) of masked weights against binary windows, rows
    ``r0..r1-1`` of a tile, four window words per accumulator update (as
    :func:`_tile_rows_bb`, with each XOR masked)."""
    n = r1 - r0
    at = p * rows + r0
    a0, a1, a2, a3 = a[at:at + n], a[stream + at:stream + at + n], a[
        2 * stream + at:2 * stream + at + n], a[3 * stream + at:3 * stream + at + n]
    j = 0
    while j + 4 <= kl:
        p0, p1, p2, p3 = _four(scratch, x0, x1, x2, x3, _word_at(j, length, row))
        q0, q1, q2, q3 = _four(scratch, x0, x1, x2, x3, _word_at(j + 1, length, row))
        u0, u1, u2, u3 = _four(scratch, x0, x1, x2, x3, _word_at(j + 2, length, row))
        v0, v1, v2, v3 = _four(scratch, x0, x1, x2, x3, _word_at(j + 3, length, row))
        mp, sp = _weights(w, 2 * p, j, kl, rows, r0, r1), _weights(w, 2 * p + 1, j, kl, rows,
                                                                    r0, r1)
        mq, sq = _weights(w, 2 * p, j + 1, kl, rows, r0, r1), _weights(w, 2 * p + 1, j + 1, kl,
                                                                        rows, r0, r1)
        mu, su = _weights(w, 2 * p, j + 2, kl, rows, r0, r1), _weights(w, 2 * p + 1, j + 2, kl,
                                                                        rows, r0, r1)
        mv, sv = _weights(w, 2 * p, j + 3, kl, rows, r0, r1), _weights(w, 2 * p + 1, j + 3, kl,
                                                                        rows, r0, r1)
        for r in range(n):
            mpr, spr, mqr, sqr = mp[r], sp[r], mq[r], sq[r]
            mur, sur, mvr, svr = mu[r], su[r], mv[r], sv[r]
            a0[r] += (popcount(mpr & (p0 ^ spr)) + popcount(mqr & (q0 ^ sqr))
                      + popcount(mur & (u0 ^ sur)) + popcount(mvr & (v0 ^ svr)))
            a1[r] += (popcount(mpr & (p1 ^ spr)) + popcount(mqr & (q1 ^ sqr))
                      + popcount(mur & (u1 ^ sur)) + popcount(mvr & (v1 ^ svr)))
            a2[r] += (popcount(mpr & (p2 ^ spr)) + popcount(mqr & (q2 ^ sqr))
                      + popcount(mur & (u2 ^ sur)) + popcount(mvr & (v2 ^ svr)))
            a3[r] += (popcount(mpr & (p3 ^ spr)) + popcount(mqr & (q3 ^ sqr))
                      + popcount(mur & (u3 ^ sur)) + popcount(mvr & (v3 ^ svr)))
        j += 4
    while j < kl:
        p0, p1, p2, p3 = _four(scratch, x0, x1, x2, x3, _word_at(j, length, row))
        mp, sp = _weights(w, 2 * p, j, kl, rows, r0, r1), _weights(w, 2 * p + 1, j, kl, rows,
                                                                    r0, r1)
        for r in range(n):
            mpr, spr = mp[r], sp[r]
            a0[r] += popcount(mpr & (p0 ^ spr))
            a1[r] += popcount(mpr & (p1 ^ spr))
            a2[r] += popcount(mpr & (p2 ^ spr))
            a3[r] += popcount(mpr & (p3 ^ spr))
        j += 1


@njit(**_JIT)
def _tile_rows_tm(scratch, w, kl, rows, a, stream, p, x0, x1, x2, x3, r0, r1, length, row,
                  xplane):
    """Plane pair ``p`` (mask, signs) of masked weights against ternary windows (nonzero and
    sign planes ``xplane`` apart), rows ``r0..r1-1`` of a tile, two window words per
    accumulator update (as :func:`_tile_rows_bb`)."""
    n = r1 - r0
    at = p * rows + r0
    a0, a1, a2, a3 = a[at:at + n], a[stream + at:stream + at + n], a[
        2 * stream + at:2 * stream + at + n], a[3 * stream + at:3 * stream + at + n]
    j = 0
    while j < kl:
        two = j + 1 < kl
        i0 = _word_at(j, length, row)
        i1 = _word_at(j + 1, length, row) if two else i0
        v0, v1, v2, v3 = _four(scratch, x0, x1, x2, x3, i0)
        u0, u1, u2, u3 = _four(scratch, x0, x1, x2, x3, i1)
        s0, s1, s2, s3 = _four(scratch, x0, x1, x2, x3, i0 + xplane)
        t0, t1, t2, t3 = _four(scratch, x0, x1, x2, x3, i1 + xplane)
        wm = _weights(w, 2 * p, j, kl, rows, r0, r1)
        ws = _weights(w, 2 * p + 1, j, kl, rows, r0, r1)
        # the second word of a last odd one: a zero mask adds nothing
        um = _weights(w, 2 * p, j + 1 if two else j, kl, rows, r0, r1)
        us = _weights(w, 2 * p + 1, j + 1 if two else j, kl, rows, r0, r1)
        keep = ~np.uint64(0) if two else np.uint64(0)
        for r in range(n):
            m, sg, mu, su = wm[r], ws[r], um[r] & keep, us[r]
            m0, m1, m2, m3 = m & v0, m & v1, m & v2, m & v3
            k0, k1, k2, k3 = mu & u0, mu & u1, mu & u2, mu & u3
            a0[r] += (popcount(m0) + popcount(k0)
                      - 2 * (popcount(m0 & (s0 ^ sg)) + popcount(k0 & (t0 ^ su))))
            a1[r] += (popcount(m1) + popcount(k1)
                      - 2 * (popcount(m1 & (s1 ^ sg)) + popcount(k1 & (t1 ^ su))))
            a2[r] += (popcount(m2) + popcount(k2)
                      - 2 * (popcount(m2 & (s2 ^ sg)) + popcount(k2 & (t2 ^ su))))
            a3[r] += (popcount(m3) + popcount(k3)
                      - 2 * (popcount(m3 & (s3 ^ sg)) + popcount(k3 & (t3 ^ su))))
        j += 2


@njit(**_JIT)
def _tile_rows_bb(scratch, w, kl, rows, a, stream, x0, x1, x2, x3, r0, r1, kh, length, row):
    """Binary x binary rows ``r0..r1-1`` of a tile, four window words per accumulator update:
    the four windows' sixteen XOR-popcounts of a row are summed in registers before its four
    accumulators are loaded and stored (one word per update is bound by the updates, not by
    the popcounts). Window word j (of ``kh`` rows of ``length`` words) lies at
    ``(j // length) * row + j % length``, so a group of four may span kernel rows."""
    n = r1 - r0
    a0, a1, a2, a3 = a[r0:r1], a[stream + r0:stream + r1], a[2 * stream + r0:2 * stream + r1], a[
        3 * stream + r0:3 * stream + r1]
    j = 0
    while j + 4 <= kl:
        p0, p1, p2, p3 = _four(scratch, x0, x1, x2, x3, _word_at(j, length, row))
        q0, q1, q2, q3 = _four(scratch, x0, x1, x2, x3, _word_at(j + 1, length, row))
        u0, u1, u2, u3 = _four(scratch, x0, x1, x2, x3, _word_at(j + 2, length, row))
        v0, v1, v2, v3 = _four(scratch, x0, x1, x2, x3, _word_at(j + 3, length, row))
        wp = _weights(w, 0, j, kl, rows, r0, r1)
        wq = _weights(w, 0, j + 1, kl, rows, r0, r1)
        wu = _weights(w, 0, j + 2, kl, rows, r0, r1)
        wv = _weights(w, 0, j + 3, kl, rows, r0, r1)
        for r in range(n):
            wpr, wqr, wur, wvr = wp[r], wq[r], wu[r], wv[r]
            a0[r] += (popcount(p0 ^ wpr) + popcount(q0 ^ wqr) + popcount(u0 ^ wur)
                      + popcount(v0 ^ wvr))
            a1[r] += (popcount(p1 ^ wpr) + popcount(q1 ^ wqr) + popcount(u1 ^ wur)
                      + popcount(v1 ^ wvr))
            a2[r] += (popcount(p2 ^ wpr) + popcount(q2 ^ wqr) + popcount(u2 ^ wur)
                      + popcount(v2 ^ wvr))
            a3[r] += (popcount(p3 ^ wpr) + popcount(q3 ^ wqr) + popcount(u3 ^ wur)
                      + popcount(v3 ^ wvr))
        j += 4
    while j < kl:
        p0, p1, p2, p3 = _four(scratch, x0, x1, x2, x3, _word_at(j, length, row))
        wp = _weights(w, 0, j, kl, rows, r0, r1)
        for r in range(n):
            wpr = wp[r]
            a0[r] += popcount(p0 ^ wpr)
            a1[r] += popcount(p1 ^ wpr)
            a2[r] += popcount(p2 ^ wpr)
            a3[r] += popcount(p3 ^ wpr)
        j += 1


@njit(inline="always", **_JIT)
def _gather(scratch, x, length, row, mask, kl, at):
    """One window's bits (word j at ``x + _word_at(j)``) under ``mask[j]``, packed in order
    into words from ``at`` on (the last one zero-filled); returns the words written."""
    out = np.uint64(0)
    bit = 0
    start = at
    for j in range(kl):
        m = mask[j]
        if m == 0:
            continue
        if m == ~np.uint64(0) and bit == 0:  # a whole word on a word boundary
            scratch[at] = scratch[x + _word_at(j, length, row)]
            at += 1
            continue
        v = pext(scratch[x + _word_at(j, length, row)], m)
        c = popcount(m)
        out |= v << np.uint64(bit)
        bit += c
        if bit >= 64:
            scratch[at] = out
            at += 1
            bit -= 64
            # the bits of v that did not fit (none when the word ended exactly)
            out = v >> np.uint64(c - bit) if bit else np.uint64(0)
    if bit:
        scratch[at] = out
        at += 1
    return at - start


@njit(inline="always", **_JIT)
def _gather_stream(scratch, x, length, row, kl, masks, pairs, at):
    """A window's weighed binary stream (see STREAM): every pair's bits under its mask."""
    for p in range(pairs):
        at += _gather(scratch, x, length, row, masks[p * kl:(p + 1) * kl], kl, at)


@njit(inline="always", **_JIT)
def _gather4(scratch, x0, x1, x2, x3, length, row, mask, kl, at0, at1, at2, at3):
    """:func:`_gather` for four windows at once (same masks, so the same bookkeeping); a
    whole word on a word boundary is copied. Returns the words each window got."""
    full = ~np.uint64(0)
    o0 = o1 = o2 = o3 = np.uint64(0)
    bit = 0
    at = 0
    for j in range(kl):
        m = mask[j]
        if m == 0:
            continue
        i = _word_at(j, length, row)
        if m == full and bit == 0:
            scratch[at0 + at], scratch[at1 + at], scratch[at2 + at], scratch[at3 + at] = (
                _four(scratch, x0, x1, x2, x3, i))
            at += 1
            continue
        c = popcount(m)
        v0, v1, v2, v3 = (pext(scratch[x0 + i], m), pext(scratch[x1 + i], m),
                          pext(scratch[x2 + i], m), pext(scratch[x3 + i], m))
        shift = np.uint64(bit)
        o0 |= v0 << shift
        o1 |= v1 << shift
        o2 |= v2 << shift
        o3 |= v3 << shift
        bit += c
        if bit >= 64:
            scratch[at0 + at], scratch[at1 + at], scratch[at2 + at], scratch[at3 + at] = (
                o0, o1, o2, o3)
            at += 1
            bit -= 64
            if bit:  # the bits that did not fit
                back = np.uint64(c - bit)
                o0, o1, o2, o3 = v0 >> back, v1 >> back, v2 >> back, v3 >> back
            else:
                o0 = o1 = o2 = o3 = np.uint64(0)
    if bit:
        scratch[at0 + at], scratch[at1 + at], scratch[at2 + at], scratch[at3 + at] = (
            o0, o1, o2, o3)
        at += 1
    return at


@njit(inline="always", **_JIT)
def _gather_stream4(scratch, x0, x1, x2, x3, length, row, kl, masks, pairs, c0, c1, c2, c3):
    """:func:`_gather_stream` for the four windows of a tile."""
    at = 0
    for p in range(pairs):
        at += _gather4(scratch, x0, x1, x2, x3, length, row, masks[p * kl:(p + 1) * kl], kl,
                       c0 + at, c1 + at, c2 + at, c3 + at)


@njit(**_JIT)
def _tile_rows_bw(scratch, w, scale, kt, rows, a, x0, x1, x2, x3, length, row, raw, c0, c1,
                  c2, c3, r0, r1):
    """A weighed binary stream (STREAM) against four windows, rows ``r0..r1-1``: its first
    ``raw`` words (plane 0, scale ``scale[0]``) from the windows (``x_f``) as binary x binary
    (:func:`_tile_rows_bb`, no multiply) and then weighed, the rest gathered (``c_f``), every
    word's mismatches times its plane's scale (``kt - raw`` a multiple of 4, so every update
    takes four words)."""
    n = r1 - r0
    a0, a1, a2, a3 = a[r0:r1], a[rows + r0:rows + r1], a[2 * rows + r0:2 * rows + r1], a[
        3 * rows + r0:3 * rows + r1]
    if raw:
        _tile_rows_bb(scratch, w, raw, rows, a, rows, x0, x1, x2, x3, r0, r1, 1, length, row)
        first = np.int64(scale[0])
        for r in range(n):
            a0[r] *= first
            a1[r] *= first
            a2[r] *= first
            a3[r] *= first
    for j in range(raw, kt, 4):
        k = j - raw
        p0, p1, p2, p3 = _four(scratch, c0, c1, c2, c3, k)
        q0, q1, q2, q3 = _four(scratch, c0, c1, c2, c3, k + 1)
        u0, u1, u2, u3 = _four(scratch, c0, c1, c2, c3, k + 2)
        v0, v1, v2, v3 = _four(scratch, c0, c1, c2, c3, k + 3)
        wp = _weights(w, 0, j, kt, rows, r0, r1)
        wq = _weights(w, 0, j + 1, kt, rows, r0, r1)
        wu = _weights(w, 0, j + 2, kt, rows, r0, r1)
        wv = _weights(w, 0, j + 3, kt, rows, r0, r1)
        sp, sq, su, sv = (np.int64(scale[j]), np.int64(scale[j + 1]), np.int64(scale[j + 2]),
                          np.int64(scale[j + 3]))
        if sp == sq and sp == su and sp == sv:  # four words of one plane: one multiply
            for r in range(n):
                wpr, wqr, wur, wvr = wp[r], wq[r], wu[r], wv[r]
                a0[r] += sp * (popcount(p0 ^ wpr) + popcount(q0 ^ wqr) + popcount(u0 ^ wur)
                               + popcount(v0 ^ wvr))
                a1[r] += sp * (popcount(p1 ^ wpr) + popcount(q1 ^ wqr) + popcount(u1 ^ wur)
                               + popcount(v1 ^ wvr))
                a2[r] += sp * (popcount(p2 ^ wpr) + popcount(q2 ^ wqr) + popcount(u2 ^ wur)
                               + popcount(v2 ^ wvr))
                a3[r] += sp * (popcount(p3 ^ wpr) + popcount(q3 ^ wqr) + popcount(u3 ^ wur)
                               + popcount(v3 ^ wvr))
            continue
        for r in range(n):
            wpr, wqr, wur, wvr = wp[r], wq[r], wu[r], wv[r]
            a0[r] += (sp * popcount(p0 ^ wpr) + sq * popcount(q0 ^ wqr)
                      + su * popcount(u0 ^ wur) + sv * popcount(v0 ^ wvr))
            a1[r] += (sp * popcount(p1 ^ wpr) + sq * popcount(q1 ^ wqr)
                      + su * popcount(u1 ^ wur) + sv * popcount(v1 ^ wvr))
            a2[r] += (sp * popcount(p2 ^ wpr) + sq * popcount(q2 ^ wqr)
                      + su * popcount(u2 ^ wur) + sv * popcount(v2 ^ wvr))
            a3[r] += (sp * popcount(p3 ^ wpr) + sq * popcount(q3 ^ wqr)
                      + su * popcount(u3 ^ wur) + sv * popcount(v3 ^ wvr))


@njit(inline="always", **_JIT)
def _tile_stream(scratch, w, scale, kt, rows, a, x0, x1, x2, x3, length, row, raw, c0, c1, c2,
                 c3):
    """:func:`_tile` for a weighed binary stream: four windows' accumulators (one per row)."""
    a[:TILE * rows] = 0
    for r0 in range(0, rows, TILE_ROWS):
        _tile_rows_bw(scratch, w, scale, kt, rows, a, x0, x1, x2, x3, length, row, raw, c0,
                      c1, c2, c3, r0, min(rows, r0 + TILE_ROWS))


@njit(**_JIT)
def _window_bw(acc, x, xo, length, row, raw, xi, w, scale, kt, rows):
    """One window's weighed binary stream into ``acc``: its first ``raw`` words (plane 0)
    from the window at ``xo``, summed and then weighed, the rest gathered at ``xi``."""
    j = 0
    while j + 4 <= raw:
        v0, v1, v2, v3 = (x[xo + _word_at(j, length, row)], x[xo + _word_at(j + 1, length, row)],
                          x[xo + _word_at(j + 2, length, row)],
                          x[xo + _word_at(j + 3, length, row)])
        w0 = _weights(w, 0, j, kt, rows, 0, rows)
        w1 = _weights(w, 0, j + 1, kt, rows, 0, rows)
        w2 = _weights(w, 0, j + 2, kt, rows, 0, rows)
        w3 = _weights(w, 0, j + 3, kt, rows, 0, rows)
        for r in range(rows):
            acc[r] += (popcount(v0 ^ w0[r]) + popcount(v1 ^ w1[r]) + popcount(v2 ^ w2[r])
                       + popcount(v3 ^ w3[r]))
        j += 4
    while j < raw:
        v0 = x[xo + _word_at(j, length, row)]
        w0 = _weights(w, 0, j, kt, rows, 0, rows)
        for r in range(rows):
            acc[r] += popcount(v0 ^ w0[r])
        j += 1
    if raw:
        first = np.int64(scale[0])
        for r in range(rows):
            acc[r] *= first
    for j in range(raw, kt, 4):
        k = xi + j - raw
        v0, v1, v2, v3 = x[k], x[k + 1], x[k + 2], x[k + 3]
        w0 = _weights(w, 0, j, kt, rows, 0, rows)
        w1 = _weights(w, 0, j + 1, kt, rows, 0, rows)
        w2 = _weights(w, 0, j + 2, kt, rows, 0, rows)
        w3 = _weights(w, 0, j + 3, kt, rows, 0, rows)
        s0, s1, s2, s3 = (np.int64(scale[j]), np.int64(scale[j + 1]), np.int64(scale[j + 2]),
                          np.int64(scale[j + 3]))
        for r in range(rows):
            acc[r] += (s0 * popcount(v0 ^ w0[r]) + s1 * popcount(v1 ^ w1[r])
                       + s2 * popcount(v2 ^ w2[r]) + s3 * popcount(v3 ^ w3[r]))


@njit(**_JIT)
def _window_bm(acc, x, xi, w, p, j0, length, kl, rows):
    """Binary windows x plane pair ``p`` (mask, signs) of masked weights: as
    :func:`_window_bb`, each XOR masked, into the pair's accumulators ``acc``."""
    i = 0
    while i + 4 <= length:
        v0, v1, v2, v3 = x[xi + i], x[xi + i + 1], x[xi + i + 2], x[xi + i + 3]
        m0, s0 = _weights(w, 2 * p, j0 + i, kl, rows, 0, rows), _weights(
            w, 2 * p + 1, j0 + i, kl, rows, 0, rows)
        m1, s1 = _weights(w, 2 * p, j0 + i + 1, kl, rows, 0, rows), _weights(
            w, 2 * p + 1, j0 + i + 1, kl, rows, 0, rows)
        m2, s2 = _weights(w, 2 * p, j0 + i + 2, kl, rows, 0, rows), _weights(
            w, 2 * p + 1, j0 + i + 2, kl, rows, 0, rows)
        m3, s3 = _weights(w, 2 * p, j0 + i + 3, kl, rows, 0, rows), _weights(
            w, 2 * p + 1, j0 + i + 3, kl, rows, 0, rows)
        for r in range(rows):
            acc[r] += (popcount(m0[r] & (v0 ^ s0[r])) + popcount(m1[r] & (v1 ^ s1[r]))
                       + popcount(m2[r] & (v2 ^ s2[r])) + popcount(m3[r] & (v3 ^ s3[r])))
        i += 4
    while i < length:
        v0 = x[xi + i]
        m0, s0 = _weights(w, 2 * p, j0 + i, kl, rows, 0, rows), _weights(
            w, 2 * p + 1, j0 + i, kl, rows, 0, rows)
        for r in range(rows):
            acc[r] += popcount(m0[r] & (v0 ^ s0[r]))
        i += 1


@njit(**_JIT)
def _window_bb(acc, x, xi, w, j0, length, kl, rows):
    """Binary x binary: words ``xi..xi+length-1`` of one window against weight words
    ``j0..``, four words per accumulator update (the sum of four XOR-popcounts of a row is
    made in registers; one word per update is bound by the accumulators' loads and stores)."""
    i = 0
    while i + 4 <= length:
        v0, v1, v2, v3 = x[xi + i], x[xi + i + 1], x[xi + i + 2], x[xi + i + 3]
        w0 = _weights(w, 0, j0 + i, kl, rows, 0, rows)
        w1 = _weights(w, 0, j0 + i + 1, kl, rows, 0, rows)
        w2 = _weights(w, 0, j0 + i + 2, kl, rows, 0, rows)
        w3 = _weights(w, 0, j0 + i + 3, kl, rows, 0, rows)
        for r in range(rows):
            acc[r] += (popcount(v0 ^ w0[r]) + popcount(v1 ^ w1[r]) + popcount(v2 ^ w2[r])
                       + popcount(v3 ^ w3[r]))
        i += 4
    while i < length:
        v0 = x[xi + i]
        w0 = _weights(w, 0, j0 + i, kl, rows, 0, rows)
        for r in range(rows):
            acc[r] += popcount(v0 ^ w0[r])
        i += 1


@njit(inline="always", **_JIT)
def _emit_binary(mismatches, rowbase, t, scratch, at, words):
    """One output pixel of a binary x binary step with binary outputs, from its XOR-popcount
    sums: ``rowbase - 2 * mismatches >= t`` packed 64 rows a word, in one pass (the value
    :func:`_tile_result` and :func:`_emit_pixel` make in two, with more calls)."""
    rows = mismatches.shape[0]
    for word in range(words):
        r0 = word * 64
        r1 = min(rows, r0 + 64)
        aw, bw, tw = mismatches[r0:r1], rowbase[r0:r1], t[r0:r1]
        b = np.uint64(0)
        for r in range(r1 - r0):
            b |= np.uint64(bw[r] - 2 * aw[r] >= tw[r]) << np.uint64(r)
        scratch[at + word] = b


@njit(inline="always", **_JIT)
def _mismatches(mode, weighed, a, f, rows, pairs, scales):
    """Stream f's weighed mismatch counts: binary weights' and a weighed stream's (STREAM)
    as they are, masked pairs' summed with their scales (the row base holds the pairs'
    weighed fan-ins)."""
    if mode == MODE_BB or weighed:
        return a[f * rows:(f + 1) * rows]
    at = f * pairs * rows
    _combine(a[at:at + pairs * rows], rows, scales)
    return a[at:at + rows]


@njit(inline="always", **_JIT)
def _tile_result(mode, weighed, a, f, rows, pairs, scales, rowbase):
    """Stream f's finished accumulators (plane pairs weighed by their scales)."""
    at = f * rows if weighed else f * pairs * rows
    if mode != MODE_BB and not weighed:
        _combine(a[at:at + pairs * rows], rows, scales)
    acc = a[at:at + rows]
    _finish(mode, acc, rowbase, 0)
    return acc


@njit(**_JIT)
def _weight_step(mode, s, prog, scratch, base0, size, count, weights, scales, wbase,
                 thresholds, a, bits, scores, acc_trace, n0):
    """One weight step of ``count`` frames, frame ``n0 + f`` at ``base0 + f * size``
    (``mode`` a literal: one specialization per mode). Binary and masked steps on binary or
    ternary inputs run :data:`TILE` windows at once: a dense step a tile of frames, a conv
    four output pixels of a row."""
    literally(mode)
    rows, kh, kw, words = prog[s, ROWS], prog[s, KH], prog[s, KW], prog[s, IN_WORDS]
    oh, ow, wp = prog[s, OH], prog[s, OW], prog[s, IN_WP]
    xplane, xplanes, kl = prog[s, IN_PLANE], prog[s, IN_PLANES], prog[s, KL]
    w = weights[prog[s, W_OFF]:prog[s, W_OFF] + prog[s, KL] * rows * (
        1 if mode == MODE_BB or mode == MODE_TB or mode == MODE_UB else 2 * prog[s, S_LEN])]
    sc = scales[prog[s, S_OFF]:prog[s, S_OFF] + prog[s, S_LEN]]
    rowbase = wbase[prog[s, B_OFF]:prog[s, B_OFF] + rows]
    levels = prog[s, LEVELS]
    t = thresholds[prog[s, T_OFF]:prog[s, T_OFF] + rows * levels]
    masked = mode == MODE_BM or mode == MODE_TM or mode == MODE_UM
    tileable = mode == MODE_BB or mode == MODE_BM or mode == MODE_TM
    pairs = sc.shape[0] if masked else 1
    acc = a[:rows]
    length = kw * words
    row = wp * words
    # A weighed binary stream (STREAM): compacted signs, per-word scales, pair masks.
    weighed = mode == MODE_BM and prog[s, STREAM] == 1
    kt, raw = prog[s, C_WORDS], prog[s, RAW]
    ws = weights[prog[s, W_OFF]:prog[s, W_OFF] + kt * rows]
    wk = weights[prog[s, W_OFF] + kt * rows:prog[s, W_OFF] + kt * (rows + 1)]
    masks = weights[prog[s, M_OFF]:prog[s, M_OFF] + (pairs * kl if weighed else 0)]
    # Binary inputs into one binary threshold, no trace: finished, compared and packed in
    # one pass over a tile's accumulators (:func:`_emit_binary`; masked pairs weighed
    # first: their mismatches then weigh like binary ones against the row base).
    fused = ((mode == MODE_BB or mode == MODE_BM) and levels == 1
             and prog[s, OUT_ENC] == ENC_BINARY and acc_trace.shape[0] == 0)
    out_wp, out_words, out_pad = prog[s, OUT_WP], prog[s, OUT_WORDS], prog[s, OUT_PAD]
    if tileable and oh * ow == 1 and count == TILE:
        x0 = base0 + prog[s, IN]
        if weighed:
            c0 = base0 + prog[s, C_IN]
            _gather_stream4(scratch, x0, x0 + size, x0 + 2 * size, x0 + 3 * size, length,
                            row, kl, masks, pairs, c0, c0 + size, c0 + 2 * size,
                            c0 + 3 * size)
            _tile_stream(scratch, ws, wk, kt, rows, a, x0, x0 + size, x0 + 2 * size,
                         x0 + 3 * size, length, row, raw, c0, c0 + size, c0 + 2 * size,
                         c0 + 3 * size)
        else:
            _tile(mode, s, prog, scratch, w, rows, pairs, a, x0, x0 + size, x0 + 2 * size,
                  x0 + 3 * size)
        for f in range(TILE):
            if fused:
                _emit_binary(_mismatches(mode, weighed, a, f, rows, pairs, sc), rowbase, t,
                             scratch, base0 + f * size + prog[s, OUT]
                             + (out_pad * out_wp + out_pad) * out_words, out_words)
                continue
            tile_acc = _tile_result(mode, weighed, a, f, rows, pairs, sc, rowbase)
            _emit_pixel(s, prog, tile_acc, t, scratch, base0 + f * size, 0, 0, bits, scores,
                        acc_trace, n0 + f)
        return
    for frame in range(count):
        base = base0 + frame * size
        n = n0 + frame
        x0 = base + prog[s, IN]
        for oy in range(oh):
            tiled = 0
            if tileable:
                tiled = ow - ow % TILE
            c0 = base + prog[s, C_IN]
            for ox in range(0, tiled, TILE):
                xo = x0 + (oy * wp + ox) * words
                if weighed:
                    cw = kt - raw  # gathered words of a window
                    _gather_stream4(scratch, xo, xo + words, xo + 2 * words, xo + 3 * words,
                                    length, row, kl, masks, pairs, c0, c0 + cw, c0 + 2 * cw,
                                    c0 + 3 * cw)
                    _tile_stream(scratch, ws, wk, kt, rows, a, xo, xo + words,
                                 xo + 2 * words, xo + 3 * words, length, row, raw, c0,
                                 c0 + cw, c0 + 2 * cw, c0 + 3 * cw)
                else:
                    _tile(mode, s, prog, scratch, w, rows, pairs, a, xo, xo + words,
                          xo + 2 * words, xo + 3 * words)
                for f in range(TILE):
                    if fused:
                        _emit_binary(_mismatches(mode, weighed, a, f, rows, pairs, sc),
                                     rowbase, t, scratch, base + prog[s, OUT]
                                     + ((oy + out_pad) * out_wp + ox + f + out_pad)
                                     * out_words, out_words)
                        continue
                    tile_acc = _tile_result(mode, weighed, a, f, rows, pairs, sc, rowbase)
                    _emit_pixel(s, prog, tile_acc, t, scratch, base, oy, ox + f, bits, scores,
                                acc_trace, n)
            for ox in range(tiled, ow):
                xo = x0 + (oy * wp + ox) * words
                if weighed:
                    _gather_stream(scratch, xo, length, row, kl, masks, pairs, c0)
                    acc[:] = 0
                    _window_bw(acc, scratch, xo, length, row, raw, c0, ws, wk, kt, rows)
                elif mode == MODE_BM:
                    a[:pairs * rows] = 0
                    full = prog[s, FULL]
                    for p in range(pairs):
                        ap = a[p * rows:(p + 1) * rows]
                        for ky in range(kh):
                            if (full >> p) & 1:  # binary signs of plane p
                                _window_bb(ap, scratch, xo + ky * row,
                                           w[(2 * p + 1) * kl * rows:], ky * length, length,
                                           kl, rows)
                            else:
                                _window_bm(ap, scratch, xo + ky * row, w, p, ky * length,
                                           length, kl, rows)
                    _combine(a, rows, sc)
                elif masked:
                    a[:pairs * rows] = 0
                    for ky in range(kh):
                        for i in range(length):
                            _update_masked(mode, a, scratch, xo + ky * row + i, xplane,
                                           xplanes, w, ky * length + i, kl, rows, pairs)
                    _combine(a, rows, sc)
                elif mode == MODE_BB:
                    acc[:] = 0
                    for ky in range(kh):
                        _window_bb(acc, scratch, xo + ky * row, w, ky * length, length, kl,
                                   rows)
                elif mode == MODE_UB and xplanes == 8:
                    acc[:] = 0
                    for ky in range(kh):
                        for i in range(length):
                            _update_ub8(acc, scratch, xo + ky * row + i, xplane,
                                        _weights(w, 0, ky * length + i, kl, rows, 0, rows))
                else:
                    acc[:] = 0
                    for ky in range(kh):
                        for i in range(length):
                            _update(mode, acc, scratch, xo + ky * row + i, xplane, xplanes, w,
                                    ky * length + i, kl, rows, 0, rows, sc)
                stat = 0
                if mode == MODE_TB:  # nonzeros of the window
                    for ky in range(kh):
                        for i in range(length):
                            stat += popcount(scratch[xo + ky * row + i])
                elif mode == MODE_UB:  # sum of the window's values
                    for b in range(xplanes):
                        sb = 0
                        for ky in range(kh):
                            for i in range(length):
                                sb += popcount(scratch[xo + ky * row + i + b * xplane])
                        stat += sb << b
                _finish(mode, acc, rowbase, stat)
                _emit_pixel(s, prog, acc, t, scratch, base, oy, ox, bits, scores, acc_trace,
                            n)


@njit(**_JIT)
def _direct_step(s, prog, frames, shape, dense, thresholds, scratch, base0, size, count, a,
                 acc4, pixels, bits, scores, acc_trace, n0):
    """A first conv (stride 1, zero padding) of ``count`` frames from their integers.

    The frame is copied into ``pixels``, a buffer with a zero border (the padding, and
    :data:`TILE` - 1 more columns on the right for a row's last group), so that a kernel row
    of a window is ``KW * C`` consecutive values and consecutive taps. Four output pixels of a
    row go together: each weight row, loaded once, meets the four pixels' values, two taps
    per accumulator update (the update's loads and stores are the bound). Values, weights and
    accumulators have the dense weights' type: int16 where every sum fits it (twice the lanes
    of int32), else int32 (the program checks the bound); emitted as int64."""
    h, w, c = shape[0], shape[1], shape[2]
    kh, kw, oh, ow, rows = prog[s, KH], prog[s, KW], prog[s, OH], prog[s, OW], prog[s, ROWS]
    pad_y, pad_x = ((oh - 1) + kh - h) // 2, ((ow - 1) + kw - w) // 2
    wp = w + 2 * pad_x + TILE - 1
    weights = dense[prog[s, W_OFF]:prog[s, W_OFF] + kh * kw * c * rows]
    levels = prog[s, LEVELS]
    t = thresholds[prog[s, T_OFF]:prog[s, T_OFF] + rows * levels]
    a0, a1, a2, a3 = acc4[:rows], acc4[rows:2 * rows], acc4[2 * rows:3 * rows], acc4[
        3 * rows:4 * rows]
    acc = a[:rows]
    span = kw * c  # taps of a kernel row
    for f in range(count):
        frame = frames[n0 + f]
        for y in range(h):
            row = pixels[((y + pad_y) * wp + pad_x) * c:((y + pad_y) * wp + pad_x + w) * c]
            values = frame[y * w * c:(y + 1) * w * c]
            for i in range(w * c):
                row[i] = values[i]
        for oy in range(oh):
            for ox in range(0, ow, TILE):
                acc4[:] = 0
                for ky in range(kh):
                    at = ((oy + ky) * wp + ox) * c
                    tap = ky * span
                    for q in range(0, span - 1, 2):
                        v0, v1, v2, v3 = pixels[at + q], pixels[at + c + q], pixels[
                            at + 2 * c + q], pixels[at + 3 * c + q]
                        u0, u1, u2, u3 = pixels[at + q + 1], pixels[at + c + q + 1], pixels[
                            at + 2 * c + q + 1], pixels[at + 3 * c + q + 1]
                        wr = weights[(tap + q) * rows:(tap + q + 1) * rows]
                        wu = weights[(tap + q + 1) * rows:(tap + q + 2) * rows]
                        for r in range(rows):
                            wv, uv = wr[r], wu[r]
                            a0[r] += v0 * wv + u0 * uv
                            a1[r] += v1 * wv + u1 * uv
                            a2[r] += v2 * wv + u2 * uv
                            a3[r] += v3 * wv + u3 * uv
                    if span % 2:
                        q = span - 1
                        v0, v1, v2, v3 = pixels[at + q], pixels[at + c + q], pixels[
                            at + 2 * c + q], pixels[at + 3 * c + q]
                        wr = weights[(tap + q) * rows:(tap + q + 1) * rows]
                        for r in range(rows):
                            wv = wr[r]
                            a0[r] += v0 * wv
                            a1[r] += v1 * wv
                            a2[r] += v2 * wv
                            a3[r] += v3 * wv
                for g in range(min(TILE, ow - ox)):
                    group = acc4[g * rows:(g + 1) * rows]
                    for r in range(rows):
                        acc[r] = group[r]
                    _emit_pixel(s, prog, acc, t, scratch, base0 + f * size, oy, ox + g, bits,
                                scores, acc_trace, n0 + f)


@njit(inline="always", **_JIT)
def _direct_pixels(prog, shape):
    """Values of :func:`_direct_step`'s zero-bordered pixel buffer."""
    h, w, c = shape[0], shape[1], shape[2]
    pad_y, pad_x = ((prog[0, OH] - 1) + prog[0, KH] - h) // 2, ((prog[0, OW] - 1) + prog[
        0, KW] - w) // 2
    return (h + 2 * pad_y) * (w + 2 * pad_x + TILE - 1) * c


@njit(**_JIT)
def _pool_step(s, prog, scratch, base, alive):
    """K x K stride-K max pooling of one frame on words: OR for binary, the (nonzero, sign)
    rule for ternary, a bit-serial MSB-first max for unsigned values."""
    k, words, planes = prog[s, KH], prog[s, IN_WORDS], prog[s, IN_PLANES]
    wp, xplane = prog[s, IN_WP], prog[s, IN_PLANE]
    oh, ow, encoding = prog[s, OH], prog[s, OW], prog[s, OUT_ENC]
    out_wp, out_pad, out_plane = prog[s, OUT_WP], prog[s, OUT_PAD], prog[s, OUT_PLANE]
    x0 = base + prog[s, IN]
    o0 = base + prog[s, OUT]
    for oy in range(oh):
        for ox in range(ow):
            at = o0 + ((oy + out_pad) * out_wp + ox + out_pad) * words
            for word in range(words):
                if encoding == ENC_TERNARY:
                    anypos = np.uint64(0)
                    allnz = ~np.uint64(0)
                    for dy in range(k):
                        for dx in range(k):
                            src = x0 + ((oy * k + dy) * wp + ox * k + dx) * words + word
                            anypos |= scratch[src + xplane]
                            allnz &= scratch[src]
                    scratch[at + word] = anypos | allnz
                    scratch[at + out_plane + word] = anypos
                    continue
                for i in range(k * k):
                    alive[i] = ~np.uint64(0)
                for p in range(planes - 1, -1, -1):
                    hit = np.uint64(0)
                    for i in range(k * k):
                        src = x0 + p * xplane + ((oy * k + i // k) * wp + ox * k + i % k
                                                 ) * words + word
                        hit |= alive[i] & scratch[src]
                    for i in range(k * k):
                        src = x0 + p * xplane + ((oy * k + i // k) * wp + ox * k + i % k
                                                 ) * words + word
                        alive[i] &= ~hit | scratch[src]
                    scratch[at + p * out_plane + word] = hit


@njit(**_JIT)
def pool_frames(prog, scratch, size, frames):
    """Pool step 0 of ``prog`` on ``frames`` frames, frame n's buffers at ``n * size`` (the
    graph path's max pooling)."""
    alive = np.empty(prog[0, KH] * prog[0, KW], dtype=np.uint64)
    for n in range(frames):
        _pool_step(0, prog, scratch, n * size, alive)


@njit(**_JIT)
def _any_weight_step(s, prog, scratch, base0, size, count, weights, scales, wbase, thresholds,
                     a, bits, scores, acc_trace, n0):
    """:func:`_weight_step` with the specialization of the step's mode."""
    mode = prog[s, MODE]
    if mode == MODE_BB:
        _weight_step(MODE_BB, s, prog, scratch, base0, size, count, weights, scales, wbase,
                     thresholds, a, bits, scores, acc_trace, n0)
    elif mode == MODE_BM:
        _weight_step(MODE_BM, s, prog, scratch, base0, size, count, weights, scales, wbase,
                     thresholds, a, bits, scores, acc_trace, n0)
    elif mode == MODE_TB:
        _weight_step(MODE_TB, s, prog, scratch, base0, size, count, weights, scales, wbase,
                     thresholds, a, bits, scores, acc_trace, n0)
    elif mode == MODE_TM:
        _weight_step(MODE_TM, s, prog, scratch, base0, size, count, weights, scales, wbase,
                     thresholds, a, bits, scores, acc_trace, n0)
    elif mode == MODE_UB:
        _weight_step(MODE_UB, s, prog, scratch, base0, size, count, weights, scales, wbase,
                     thresholds, a, bits, scores, acc_trace, n0)
    else:
        _weight_step(MODE_UM, s, prog, scratch, base0, size, count, weights, scales, wbase,
                     thresholds, a, bits, scores, acc_trace, n0)


@njit(**_JIT)
def run_frames(first, last, frames, shape, limits, patch, prog, weights, dense, scales, wbase,
               thresholds, scratch, size, tile, keep, scores, acc_trace):
    """Frames ``first..last-1`` of ``frames (N, H*W*C)`` through the whole program.

    ``shape`` is (H, W, C) of a frame, ``limits`` (lo, hi, binary, input encoding).
    Frames go through in tiles of ``tile`` frames (1, or :data:`TILE`: dense steps then
    take a tile at once).
    ``scratch`` holds a tile's buffers, ``size`` words per frame (``keep`` 0, reused tile
    after tile) or every frame's (``keep`` 1, frame n at ``n * size``, for a trace). Returns the
    index of the first frame with a value out of range, or -1.
    """
    h, w, c = shape[0], shape[1], shape[2]
    lo, hi, binary, encoding = limits[0], limits[1], limits[2], limits[3]
    steps = prog.shape[0]
    rows = 1
    window = 1
    for s in range(steps):
        rows = max(rows, prog[s, ROWS] * max(1, prog[s, S_LEN]))
        if prog[s, KIND] == KIND_POOL:
            window = max(window, prog[s, KH] * prog[s, KW])
    a = np.empty(TILE * rows, dtype=np.int64)
    bits = np.zeros(MAX_PLANES, dtype=np.uint64)
    alive = np.empty(window, dtype=np.uint64)
    pixel_bits = np.empty((MAX_PLANES, h * w if patch else 0), dtype=np.uint64)
    direct = prog[0, KIND] == KIND_DIRECT
    acc4 = np.empty(TILE * prog[0, ROWS] if direct else 0, dtype=dense.dtype)
    pixels = np.zeros(_direct_pixels(prog, shape) if direct else 0, dtype=dense.dtype)
    for n0 in range(first, last, tile):
        n1 = min(n0 + tile, last)
        base0 = n0 * size if keep else 0
        for n in range(n0, n1):
            frame = frames[n]
            if _check_frame(frame, lo, hi, binary):
                return n
            if not direct:
                _pack_frame(frame, h, w, c, encoding, patch, prog, scratch,
                            base0 + (n - n0) * size, pixel_bits)
        for s in range(steps):
            if prog[s, KIND] == KIND_POOL:
                for n in range(n0, n1):
                    _pool_step(s, prog, scratch, base0 + (n - n0) * size, alive)
            elif prog[s, KIND] == KIND_DIRECT:
                _direct_step(s, prog, frames, shape, dense, thresholds, scratch, base0, size,
                             n1 - n0, a, acc4, pixels, bits, scores, acc_trace, n0)
            else:
                _any_weight_step(s, prog, scratch, base0, size, n1 - n0, weights, scales, wbase,
                                 thresholds, a, bits, scores, acc_trace, n0)
    return -1
