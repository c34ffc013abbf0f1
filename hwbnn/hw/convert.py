"""Amaranth's Verilog conversion, with memory contents written in one piece.

Amaranth 0.5 writes the initial contents of a memory into RTLIL one bit at a time, a Python
object per bit (about 3 us each). A network's weight ROMs hold Mbits (zoo:lfc_w1a1 at FINN's
folding: 2.9 Mbit), so that loop was most of the time of ``hwbnn gen``.
:func:`convert_rtlil` runs Amaranth's own steps but formats the contents from the integers
directly: its RTLIL text, and so the Verilog of :func:`convert_verilog`, are byte for byte
those of :mod:`amaranth.back.rtlil` / :mod:`amaranth.back.verilog` (``tests/test_hw_convert.py``
checks this against the public functions, as it relies on Amaranth's backend classes, which
are not public API).
"""

from __future__ import annotations

from amaranth.back import rtlil, verilog
from amaranth.hdl import Fragment, _ast, _ir, _nir


class _ModuleEmitter(rtlil.ModuleEmitter):
    """Amaranth's RTLIL module emitter with a memory's contents formatted word by word."""

    def emit_memory(self, cell_idx, cell):
        """Amaranth's ``$meminit_v2`` cell, its data as the one constant chunk that
        ``sigspec`` makes of an all-constant value: the width, a quote, the bits MSB first
        (the last word first)."""
        if not cell.width or not cell.depth:
            # No bits: sigspec writes an empty concatenation, not a constant.
            return super().emit_memory(cell_idx, cell)
        mask = (1 << cell.width) - 1
        bits = "".join(format(word & mask, f"0{cell.width}b") for word in reversed(cell.init))
        self.builder.cell("$meminit_v2", ports={
            "ADDR": self.sigspec(),
            "DATA": f"{len(bits)}'{bits}",
            "EN": self.sigspec(_nir.Value.ones(cell.width)),
        }, parameters={
            "MEMID": self.memories[cell_idx].memid,
            "ABITS": 0,
            "WIDTH": cell.width,
            "WORDS": cell.depth,
            "PRIORITY": 0,
        }, src_loc=cell.src_loc)


def convert_rtlil(elaboratable, *, name: str, ports) -> str:
    """RTLIL of ``elaboratable`` as module ``name`` (no source locations), as
    ``amaranth.back.rtlil.convert(elaboratable, name=name, ports=ports, emit_src=False)``."""
    netlist = _ir.build_netlist(Fragment.get(elaboratable, None), ports=ports, name=name)
    empty = rtlil.EmptyModuleChecker(netlist)
    design = rtlil.Design(emit_src=False)
    name_map = _ast.SignalDict()
    for index, module in enumerate(netlist.modules):
        if empty.is_empty(index):
            continue
        builder = design.module(".".join(module.name), src_loc=module.src_loc)
        if index == 0:
            builder.attribute("top", 1)
        _ModuleEmitter(builder, netlist, module, name_map, empty_checker=empty).emit()
    return str(design)


def convert_verilog(elaboratable, *, name: str, ports) -> str:
    """Verilog of ``elaboratable`` as module ``name`` (no source locations), as
    ``amaranth.back.verilog.convert(elaboratable, name=name, ports=ports, emit_src=False)``."""
    return verilog._convert_rtlil_text(convert_rtlil(elaboratable, name=name, ports=ports))
