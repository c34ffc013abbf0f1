"""Cost model: FPGA resources, ASIC area and energy per frame, from the IR and the folding.

``estimate(net, "ice40" | "ecp5" | "xc7" | "asic", folds)`` gives per-component, per-layer
and total figures (:mod:`.estimate`); the linear coefficients are fitted against Yosys
synthesis of generated components by :mod:`.calibrate` and ship in ``constants/``, with the
held-out validation reports in ``calibration/``. :mod:`.sweep` compares bitwidth mixes.
Nothing here imports torch.
"""

from .estimate import FAMILIES, CostReport, estimate
from .profile import NetworkProfile, profile_network

__all__ = ["FAMILIES", "CostReport", "NetworkProfile", "estimate",
           "profile_network"]
