"""A pin-limited wrapper top, so that synthesis measures the design and not its pins.

A generated network has an input stream of ``in_width`` bits and an output stream of
``out_width`` bits: far more pins than small FPGAs have, and ports that synthesis would
happily leave floating. The wrapper feeds ``s_axis_tdata`` from a shift register clocked in
from one pin and folds every bit of ``m_axis_tdata`` into one output pin through a pipelined
XOR tree (4 bits per stage: one LUT4 level between registers, so the wrapper never sets
Fmax). Every output bit reaches a pin, so nothing of the design can be optimized away. The
handshake stays real: ``tvalid``/``tready`` of both streams come from and go to pins through
registers. The wrapper is its own module; synthesis keeps the design's hierarchy separate so
its cell counts exclude the wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HwbnnError

WRAPPER_NAME = "hwbnn_synth_wrapper"
# Bits folded per XOR stage: a 4-input XOR is one LUT4 (iCE40, ECP5) or half a LUT6 (xc7).
XOR_GROUP = 4


@dataclass(frozen=True)
class StreamPorts:
    """Names of the design's clock, reset and AXI-Stream ports (docs/design.md section 4)."""

    clk: str = "clk"
    rst: str = "rst"
    s_tdata: str = "s_axis_tdata"
    s_tvalid: str = "s_axis_tvalid"
    s_tready: str = "s_axis_tready"
    m_tdata: str = "m_axis_tdata"
    m_tvalid: str = "m_axis_tvalid"
    m_tready: str = "m_axis_tready"


def wrapper_verilog(top: str, in_width: int, out_width: int,
                    ports: StreamPorts = StreamPorts()) -> str:
    """Verilog of the wrapper module instantiating ``top``."""
    for name, width in (("in_width", in_width), ("out_width", out_width)):
        if not isinstance(width, int) or width < 1:
            raise HwbnnError(f"{name} must be a positive integer, not {width!r}")
    if not top.isidentifier():
        raise HwbnnError(f"top module name must be a Verilog identifier, not {top!r}")
    lines = [
        f"module {WRAPPER_NAME} (",
        "    input wire clk, input wire rst_pin,",
        "    input wire in_bit, input wire in_valid, output reg in_ready,",
        "    input wire out_ready, output reg out_valid, output wire out_bit",
        ");",
        f"  reg [{in_width - 1}:0] in_shift;",
        "  reg rst, in_valid_q, out_ready_q;",
        "  wire s_tready, m_tvalid;",
        f"  wire [{out_width - 1}:0] xor_0;",
        "  always @(posedge clk) begin",
        "    rst <= rst_pin;",
        "    in_valid_q <= in_valid;",
        "    out_ready_q <= out_ready;",
        "    in_ready <= s_tready;",
        "    out_valid <= m_tvalid;",
        _shift_statement(in_width),
        "  end",
        f"  {top} dut (",
        f"    .{ports.clk}(clk), .{ports.rst}(rst),",
        f"    .{ports.s_tdata}(in_shift), .{ports.s_tvalid}(in_valid_q), "
        f".{ports.s_tready}(s_tready),",
        f"    .{ports.m_tdata}(xor_0), .{ports.m_tvalid}(m_tvalid), "
        f".{ports.m_tready}(out_ready_q)",
        "  );",
    ]
    lines += _xor_tree(out_width)
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _shift_statement(width: int) -> str:
    if width == 1:
        return "    in_shift <= in_bit;"
    return f"    in_shift <= {{in_shift[{width - 2}:0], in_bit}};"


def _xor_tree(width: int) -> list[str]:
    """Registered XOR stages from ``xor_0`` (the design's tdata) down to one bit."""
    lines, level = [], 0
    while width > 1:
        narrower = -(-width // XOR_GROUP)
        lines.append(f"  reg [{narrower - 1}:0] xor_{level + 1};")
        lines.append("  always @(posedge clk) begin")
        for i in range(narrower):
            hi = min(width, (i + 1) * XOR_GROUP) - 1
            lines.append(f"    xor_{level + 1}[{i}] <= ^xor_{level}[{hi}:{i * XOR_GROUP}];")
        lines.append("  end")
        width, level = narrower, level + 1
    if level == 0:
        lines.append("  reg xor_1;")
        lines.append("  always @(posedge clk) xor_1 <= xor_0[0];")
        level = 1
    lines.append(f"  assign out_bit = xor_{level}[0];")
    return lines
