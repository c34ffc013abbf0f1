"""Verification of generated Verilog against the golden integer model (docs/design.md section 5).

:func:`verify` runs a design written by ``hwbnn gen`` (:func:`open_design`) in Verilator
(a compiled stream harness, :mod:`hwbnn.verify.harness`), Icarus (cocotb 2 and
cocotbext-axi) or the Amaranth simulator, on dataset frames, and compares every output beat
with :mod:`hwbnn.ref.golden`; on a difference it names the first layer and element that
differ (per-layer taps in the cocotb bench) and keeps a waveform. Nothing here imports
torch.
"""

from .design import RtlDesign, generate_design, open_design
from .flow import VerifyReport, verify

__all__ = ["RtlDesign", "VerifyReport", "generate_design", "open_design", "verify"]
