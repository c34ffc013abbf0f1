"""The pin-limited wrapper: every output bit reaches the pin, the handshake stays wired."""

import re

import pytest

from hwbnn.errors import HwbnnError
from hwbnn.synth.wrapper import WRAPPER_NAME, XOR_GROUP, StreamPorts, wrapper_verilog


def xor_stages(verilog: str) -> dict[int, list[tuple[int, int, int]]]:
    """Stage -> [(output bit, source hi, source lo)] parsed from the XOR assignments."""
    stages: dict[int, list[tuple[int, int, int]]] = {}
    pattern = r"xor_(\d+)\[(\d+)\] <= \^xor_(\d+)\[(\d+):(\d+)\];"
    for out, bit, src, hi, lo in re.findall(pattern, verilog):
        assert int(src) == int(out) - 1
        stages.setdefault(int(out), []).append((int(bit), int(hi), int(lo)))
    return stages


@pytest.mark.parametrize("out_width", [1, 2, 4, 5, 16, 17, 80, 1024])
def test_xor_tree_uses_every_output_bit_once(out_width):
    verilog = wrapper_verilog("dut_top", 8, out_width)
    stages = xor_stages(verilog)
    width = out_width
    for level in sorted(stages):
        covered = sorted(b for _, hi, lo in stages[level] for b in range(lo, hi + 1))
        assert covered == list(range(width))
        assert all(hi - lo < XOR_GROUP for _, hi, lo in stages[level])
        width = len(stages[level])
        assert sorted(bit for bit, _, _ in stages[level]) == list(range(width))
    assert width == 1
    last = max(stages) if stages else 1
    assert f"assign out_bit = xor_{last}[0];" in verilog


@pytest.mark.parametrize("in_width", [1, 8, 320])
def test_input_shift_register_spans_tdata(in_width):
    verilog = wrapper_verilog("dut_top", in_width, 8)
    assert f"reg [{in_width - 1}:0] in_shift;" in verilog
    if in_width > 1:
        assert f"in_shift <= {{in_shift[{in_width - 2}:0], in_bit}};" in verilog


def test_ports_connect_by_name():
    ports = StreamPorts(clk="clock", rst="reset", s_tdata="a", s_tvalid="b", s_tready="c",
                        m_tdata="d", m_tvalid="e", m_tready="f")
    verilog = wrapper_verilog("dut_top", 8, 8, ports)
    assert f"module {WRAPPER_NAME} (" in verilog
    for connection in (".clock(clk)", ".reset(rst)", ".a(in_shift)", ".b(in_valid_q)",
                       ".c(s_tready)", ".d(xor_0)", ".e(m_tvalid)", ".f(out_ready_q)"):
        assert connection in verilog
    # The stream handshake goes to and from pins through registers.
    for statement in ("in_valid_q <= in_valid;", "out_ready_q <= out_ready;",
                      "in_ready <= s_tready;", "out_valid <= m_tvalid;"):
        assert statement in verilog


@pytest.mark.parametrize("top,in_width,out_width,message", [
    ("dut_top", 0, 8, "in_width must be a positive integer, not 0"),
    ("dut_top", 8, -1, "out_width must be a positive integer, not -1"),
    ("bad name", 8, 8, "top module name must be a Verilog identifier"),
])
def test_bad_arguments(top, in_width, out_width, message):
    with pytest.raises(HwbnnError, match=message):
        wrapper_verilog(top, in_width, out_width)
