"""The board top as Verilog in cocotb (Verilator): the host client classifies digits through
the UART pins, the same client class that talks to a real board over a serial port."""

import dataclasses
from pathlib import Path

from amaranth.back import verilog

from hwbnn import zoo
from hwbnn.boards.top import BoardTop, network_core
from hwbnn.ref import golden
from hwbnn.verify.runner import build, run

from .tooling import require_simulator

CACHE = Path(__file__).resolve().parents[1] / "build" / "sim" / "cache"
TOP = "hwbnn_board"
DIVISOR = 8


def test_client_in_cocotb_classifies_10_digits_like_golden(tmp_path, digits):
    """Acceptance: through the UART pins of the Verilog board top, the golden labels."""
    require_simulator("verilator")
    net = zoo.load("zoo:digits_mlp_w1a1")
    images = digits.test_x[:10]
    core = network_core(net)  # the network in label mode, fully folded as on the board
    source = tmp_path / f"{TOP}.v"
    source.write_text(verilog.convert(BoardTop(core, DIVISOR), name=TOP, emit_src=False))
    built = build(source, TOP, "verilator", CACHE)
    config = {"images": images.tolist(), "divisor": DIVISOR}
    outcome = run(built, config, tmp_path / "run", module="hwbnn.boards.tb_board")
    assert outcome.passed, f"bench failed; see {outcome.log}"
    result = outcome.result
    expected = golden.predict(net, images)
    assert result["labels"] == expected.tolist()
    assert result["led_label"] == expected[-1]
    assert result["info"] == dataclasses.asdict(core.info)
