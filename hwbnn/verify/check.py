"""Stimulus and expectations from the golden model; decoding and comparing what came out.

Input frames are packed as docs/design.md section 4 says (channels-last, element i of a beat in
bits ``[i*b, (i+1)*b)``); expected outputs are the golden scores (``scores`` mode) or the
argmax (``label`` mode). Per-layer taps are decoded back to activation values and compared
with the golden trace by :func:`hwbnn.ref.compare.first_mismatch`, so a difference is named
by layer, frame and element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hw.packing import from_codes, from_signed, pack, pack_values, unpack
from ..ref.compare import Mismatch, first_mismatch
from ..ref.golden import LayerTrace
from .design import RtlDesign, Tap


def to_hex(beats) -> list[str]:
    return [format(int(beat), "x") for beat in beats]


def input_beats(design: RtlDesign, images: np.ndarray) -> list[list[int]]:
    """Beats of every frame (channels-last order)."""
    spec = design.packing["input"]
    return [pack_values(frame.reshape(-1), design.net.input_encoding, spec["elements_per_beat"])
            for frame in np.asarray(images)]


def expected_output(design: RtlDesign, trace: list[LayerTrace]) -> list[list[int]]:
    """Output beats of every frame: packed scores, or one label beat."""
    scores = trace[-1].out
    spec = design.packing["output"]
    if design.output == "label":
        return [[int(label)] for label in np.argmax(scores, axis=1)]
    return [pack(row, spec["bits"], spec["elements_per_beat"]) for row in scores]


def decode_tap(tap: Tap, beats: list[int], shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """Values of the whole frames among ``beats``, ``(frames, *shape)``, and how many
    elements were left over (a partial frame)."""
    codes = unpack(beats, tap.bits, tap.per_beat)
    size = int(np.prod(shape))
    frames = len(codes) // size
    extra = len(codes) - frames * size
    codes = codes[:frames * size]
    values = (from_signed(codes, tap.bits) if tap.encoding == "signed"
              else from_codes(codes, tap.encoding))
    return values.reshape((frames, *shape)), extra


@dataclass
class Difference:
    """Where hardware and golden model part: a value mismatch, or a layer that fell short."""

    layer: str
    message: str
    frame: int | None = None
    mismatch: Mismatch | None = None

    def __str__(self) -> str:
        return self.message


def compare_taps(design: RtlDesign, taps: list[Tap], recorded: dict[str, list[str]],
                 trace: list[LayerTrace], frame_offset: int = 0) -> Difference | None:
    """First layer (network order) whose tapped output differs from the golden trace;
    ``frame_offset`` is added to frame numbers in the message (a replay of later frames)."""
    golden = {step.name: step for step in trace}
    frames = len(trace[-1].out)
    for tap in taps:
        want = golden[tap.layer]
        shape = want.out.shape[1:]
        got, extra = decode_tap(tap, [int(b, 16) for b in recorded.get(tap.layer, [])], shape)
        common = min(len(got), frames)
        mismatch = first_mismatch([LayerTrace(tap.layer, None, want.out[:common])],
                                  [LayerTrace(tap.layer, None, got[:common])])
        if mismatch is not None:
            frame = mismatch.index[0] + frame_offset
            return Difference(tap.layer, f"layer {tap.layer} differs first at frame {frame}, "
                              f"element {list(mismatch.index[1:])} of shape {list(shape)}: "
                              f"expected {mismatch.expected}, got {mismatch.actual} "
                              f"({mismatch.count} elements differ in {common} frames)",
                              frame, mismatch)
        if len(got) != frames or extra:
            return Difference(tap.layer, f"layer {tap.layer} produced {len(got)} whole frames "
                              f"(+{extra} elements) of {frames}", len(got))
    return None


def compare_output(design: RtlDesign, expected: list[list[int]],
                   output: list[str]) -> Difference | None:
    """First output beat that differs, named by frame and class (or label)."""
    per_frame = design.packing["output"]["beats_per_frame"]
    spec = design.packing["output"]
    got = [int(beat, 16) for beat in output]
    want = [beat for frame in expected for beat in frame]
    for n, (a, b) in enumerate(zip(want, got, strict=False)):
        if a != b:
            frame = n // per_frame
            if design.output == "label":
                return Difference("output", f"output frame {frame}: expected label {a}, got {b}",
                                  frame)
            base = (n % per_frame) * spec["elements_per_beat"]
            exp = from_signed(unpack([a], spec["bits"], spec["elements_per_beat"]), spec["bits"])
            act = from_signed(unpack([b], spec["bits"], spec["elements_per_beat"]), spec["bits"])
            k = int(np.argmax(exp != act))
            return Difference("output", f"output frame {frame}, score {base + k}: expected "
                              f"{int(exp[k])}, got {int(act[k])}", frame)
    if len(got) != len(want):
        return Difference("output", f"{len(got)} output beats of {len(want)} "
                          f"({len(got) // per_frame} whole frames of {len(expected)})",
                          len(got) // per_frame)
    return None
