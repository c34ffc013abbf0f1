"""Synthesis of generated designs: Yosys cell counts and nextpnr Fmax through YoWASP.

``read_design(DIR)`` reads a generated design (Verilog + ``manifest.json``);
``synthesize(design, "ice40" | "ecp5" | "xc7")`` returns a :class:`SynthResult` with the
design's LUT/FF/carry/block RAM/DSP counts and, on iCE40 and ECP5, the median Fmax over
nextpnr seeds. A pin-limited wrapper top keeps pins from limiting the design.
"""

from .design import Design, read_design
from .flow import FAMILIES, SynthResult, synthesize

__all__ = ["FAMILIES", "Design", "SynthResult", "read_design", "synthesize"]
