"""An AXI-Stream-named shell around one stream component, so the synthesis flow's wrapper
(which expects ``s_axis_*`` / ``m_axis_*`` ports, docs/design.md section 4) can take it."""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class AxiShell(wiring.Component):
    """Renames ``component.i`` / ``component.o`` to AXI-Stream ports; adds no logic."""

    def __init__(self, component: wiring.Component):
        self._component = component
        super().__init__({
            "s_axis_tdata": In(len(component.i.payload)), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "m_axis_tdata": Out(len(component.o.payload)), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
        })

    @property
    def in_width(self) -> int:
        return len(self._component.i.payload)

    @property
    def out_width(self) -> int:
        return len(self._component.o.payload)

    def elaborate(self, platform):
        m = Module()
        m.submodules.component = c = self._component
        m.d.comb += [
            c.i.payload.eq(self.s_axis_tdata), c.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(c.i.ready),
            self.m_axis_tdata.eq(c.o.payload), self.m_axis_tvalid.eq(c.o.valid),
            c.o.ready.eq(self.m_axis_tready),
        ]
        return m
