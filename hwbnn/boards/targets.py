"""Supported boards (amaranth-boards platforms), their resources, clocks and PLL settings.

========== ===================== ======= ========= =====================================
name       FPGA                  clock   bitstream place and route
========== ===================== ======= ========= =====================================
icebreaker iCE40UP5K-SG48        12 MHz  ``.bin``  nextpnr-ice40 (yowasp)
ulx3s-85f  ECP5 LFE5U-85F        25 MHz  ``.bit``  nextpnr-ecp5 (yowasp)
arty-a7-35 Artix-7 XC7A35T       100 MHz none      none: Verilog + XDC + synth_xilinx counts
========== ===================== ======= ========= =====================================

The design clock comes from the board oscillator directly or through the FPGA's PLL, with
divider settings computed here within the ranges of the vendors' PLL documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HwbnnError


@dataclass(frozen=True)
class PllSetting:
    """Dividers of one PLL configuration and the output frequency they give."""

    family: str
    params: dict
    out_hz: float
    vco_hz: float
    pfd_hz: float


# iCE40 sysCLOCK PLL, SIMPLE feedback (Lattice TN1251, "iCE40 sysCLOCK PLL Design and Usage
# Guide", table of frequency ranges): F_PFD = F_REF/(DIVR+1) in 10..133 MHz,
# F_VCO = F_PFD*(DIVF+1) in 533..1066 MHz, F_OUT = F_VCO/2^DIVQ in 16..275 MHz.
ICE40_PFD = (10e6, 133e6)
ICE40_VCO = (533e6, 1066e6)
ICE40_OUT = (16e6, 275e6)
# Loop filter setting by PFD frequency, upper bounds in MHz (as icepll of Project IceStorm
# chooses it).
ICE40_FILTER = ((17e6, 1), (26e6, 2), (44e6, 3), (66e6, 4), (101e6, 5))

# ECP5 EHXPLLL with CLKOP feedback (Lattice TN1263, "ECP5 and ECP5-5G sysCLOCK PLL/DLL Design
# and Usage Guide"): F_PFD = F_IN/CLKI_DIV >= 3.125 MHz, F_OUT = F_IN*CLKFB_DIV/CLKI_DIV
# in 3.125..400 MHz, F_VCO = F_OUT*CLKOP_DIV in 400..800 MHz; each divider 1..128.
ECP5_PFD = (3.125e6, 400e6)
ECP5_VCO = (400e6, 800e6)
ECP5_OUT = (3.125e6, 400e6)


def ice40_pll(ref_hz: float, want_hz: float) -> PllSetting:
    """The iCE40 PLL setting whose output is closest to ``want_hz`` (ties: lower VCO)."""
    best = None
    for divr in range(16):
        pfd = ref_hz / (divr + 1)
        if not ICE40_PFD[0] <= pfd <= ICE40_PFD[1]:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not ICE40_VCO[0] <= vco <= ICE40_VCO[1]:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if not ICE40_OUT[0] <= out <= ICE40_OUT[1]:
                    continue
                key = (abs(out - want_hz), vco)
                if best is None or key < best[0]:
                    best = (key, divr, divf, divq, out, vco, pfd)
    if best is None:
        raise HwbnnError(f"no iCE40 PLL setting gives {want_hz / 1e6:g} MHz from "
                         f"{ref_hz / 1e6:g} MHz (output range 16..275 MHz)")
    _, divr, divf, divq, out, vco, pfd = best
    filter_range = next((value for bound, value in ICE40_FILTER if pfd < bound), 6)
    params = {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range}
    return PllSetting("ice40", params, out, vco, pfd)


def ecp5_pll(ref_hz: float, want_hz: float) -> PllSetting:
    """The ECP5 EHXPLLL setting whose output is closest to ``want_hz``."""
    best = None
    for clki in range(1, 129):
        pfd = ref_hz / clki
        if not ECP5_PFD[0] <= pfd <= ECP5_PFD[1]:
            continue
        for clkfb in range(1, 129):
            out = pfd * clkfb
            if not ECP5_OUT[0] <= out <= ECP5_OUT[1]:
                continue
            # The highest VCO that the output divider allows: the least jitter.
            clkop = min(128, int(ECP5_VCO[1] // out))
            vco = out * clkop
            if clkop < 1 or vco < ECP5_VCO[0]:
                continue
            key = (abs(out - want_hz), -vco)
            if best is None or key < best[0]:
                best = (key, clki, clkfb, clkop, out, vco, pfd)
    if best is None:
        raise HwbnnError(f"no ECP5 PLL setting gives {want_hz / 1e6:g} MHz from "
                         f"{ref_hz / 1e6:g} MHz (output range 3.125..400 MHz)")
    _, clki, clkfb, clkop, out, vco, pfd = best
    params = {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
              # The output phase counter starts one cycle of the output divider late.
              "CLKOP_CPHASE": clkop - 1}
    return PllSetting("ecp5", params, out, vco, pfd)


@dataclass(frozen=True)
class Board:
    """A board: its amaranth-boards platform, FPGA family, clock and resources."""

    name: str
    title: str
    platform_name: str          # class in amaranth_boards.<module>
    platform_module: str
    family: str                 # ice40 | ecp5 | xc7
    device: str                 # device name as hwbnn.synth knows it
    oscillator_hz: float
    default_clock_hz: float
    # What the FPGA has: LUTs (LUT4 or LUT6), flip-flops, block RAMs (count and bits), DSPs.
    resources: dict = field(default_factory=dict)
    bitstream_suffix: str | None = None
    programmer: str | None = None
    # Which LED shows what: name -> list of (resource, number[, subsignal]); label LSB first.
    leds: dict = field(default_factory=dict)

    @property
    def place_and_route(self) -> bool:
        return self.bitstream_suffix is not None

    def platform(self):
        import importlib

        module = importlib.import_module(f"amaranth_boards.{self.platform_module}")
        platform_class = getattr(module, self.platform_name)
        if self.family == "xc7":
            # Amaranth's Yosys-based Xilinx flow writes Verilog that Yosys reads (its Vivado
            # flow instantiates cells with Vivado-only parameters).
            return platform_class(toolchain="Xray")
        platform = platform_class()
        if self.name == "icebreaker":
            # The snap-off PMOD's five LEDs show the label.
            platform.add_resources(platform.break_off_pmod)
        return platform

    def pll(self, clock_hz: float) -> PllSetting | None:
        """PLL setting for ``clock_hz`` (None: the oscillator clocks the design directly)."""
        if abs(clock_hz - self.oscillator_hz) < 1:
            return None
        if self.family == "ice40":
            return ice40_pll(self.oscillator_hz, clock_hz)
        if self.family == "ecp5":
            return ecp5_pll(self.oscillator_hz, clock_hz)
        raise HwbnnError(f"{self.title}: the design runs on the {self.oscillator_hz / 1e6:g} "
                         f"MHz oscillator (no PLL support for {self.family} here)")


# iCE40UP5K: 5280 LUT4 + FF, 30 EBR of 4 kbit, 8 DSP (SB_MAC16), 4 SPRAM of 256 kbit (the
# SPRAM holds no initial contents, so weights cannot live there). Lattice iCE40 UltraPlus
# family data sheet (FPGA-DS-02008), table 1.1.
# LFE5U-85F: 83,640 LUT4, 208 EBR of 18 kbit, 156 18x18 multipliers. Lattice ECP5 family data
# sheet (FPGA-DS-02012), table 1.1.
# XC7A35T: 20,800 LUT6, 41,600 FF, 50 block RAMs of 36 kbit, 90 DSP48E1. Xilinx DS180
# (7 Series FPGAs Data Sheet: Overview), table 3.
BOARDS = {
    "icebreaker": Board(
        "icebreaker", "iCEBreaker (iCE40UP5K)", "ICEBreakerPlatform", "icebreaker", "ice40",
        "up5k", 12e6, 24e6,
        {"lut": 5280, "ff": 5280, "bram": 30, "bram_bits": 30 * 4096, "dsp": 8},
        ".bin", "iceprog",
        {"label": [("led", 2), ("led", 3), ("led", 4), ("led", 5)], "busy": [("led", 6)],
         "passed": [("led_g", 0)], "failed": [("led_r", 0)]}),
    "ulx3s-85f": Board(
        "ulx3s-85f", "ULX3S-85F (ECP5 LFE5U-85F)", "ULX3S_85F_Platform", "ulx3s", "ecp5",
        "85k", 25e6, 50e6,
        {"lut": 83640, "ff": 83640, "bram": 208, "bram_bits": 208 * 18432, "dsp": 156},
        ".bit", "openFPGALoader",
        {"label": [("led", n) for n in range(4)], "busy": [("led", 5)],
         "passed": [("led", 6)], "failed": [("led", 7)]}),
    "arty-a7-35": Board(
        "arty-a7-35", "Arty A7-35 (Artix-7 XC7A35T)", "ArtyA7_35Platform", "arty_a7", "xc7",
        "xc7", 100e6, 100e6,
        {"lut": 20800, "ff": 41600, "bram": 50, "bram_bits": 50 * 36864, "dsp": 90},
        None, "openFPGALoader",
        {"label": [("led", n) for n in range(4)], "busy": [("rgb_led", 1, "b")],
         "passed": [("rgb_led", 0, "g")], "failed": [("rgb_led", 0, "r")]}),
}


def device_capacity(family: str, device: str) -> dict | None:
    """What a board's FPGA of ``family`` and ``device`` has (None: no board has it)."""
    return next((b.resources for b in BOARDS.values()
                 if b.family == family and b.device == device), None)


def board(name: str) -> Board:
    if name not in BOARDS:
        raise HwbnnError(f"board must be one of {', '.join(BOARDS)}, not {name!r}")
    return BOARDS[name]
