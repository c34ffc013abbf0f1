"""hwbnn from Python: load a model, run it, estimate its cost, generate its hardware, verify
the Verilog bit-exactly in Verilator and synthesize it for an iCE40.

    python examples/digits_api.py [WORK_DIR]
"""

import sys
from pathlib import Path

import hwbnn


def main(work: Path) -> None:
    model = hwbnn.load("zoo:digits_mlp_w1a1")
    print(model)
    print(f"accuracy on digits (golden integer model): {model.accuracy('digits'):.4f}")
    frames = model.frames("digits")
    assert (model.predict(frames, engine="packed") == model.predict(frames)).all()

    report = model.cost("ice40", target_fps=1e5)
    totals = report.totals()
    print(f"ice40 estimate at {report.profile.folding}: {totals['lut']:.0f} LUT, "
          f"{totals['ff']:.0f} FF, {totals['bram']:g} block RAM, "
          f"{totals['cycles_per_frame']} cycles/frame")

    design = model.generate(work / "rtl", target_fps=1e5)
    print(design)
    result = design.verify(gap=0.1, backpressure=0.2, work=work / "verify")
    print(f"Verilator: {result.frames} frames bit-exact: {result.passed} "
          f"({result.sim_cycles_per_s:,.0f} simulated cycles/s)")
    assert result.passed

    synth = design.synthesize("ice40", seeds=1, work=work / "synth")
    print(f"ice40 synthesis: {synth.counts['lut']} LUT, {synth.counts['ff']} FF, "
          f"Fmax {synth.fmax_mhz:.1f} MHz")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/example"))
