"""Board top: UART <-> framing protocol <-> the network's streams, LEDs, self-test.

::

    rx -> UARTReceiver -> RequestParser --payload--> BytesToBeats --+--> network --> result
                                  |request                  SelfTest/          (LabelResult or
                                  v                                             ScoreCollector)
    tx <- UARTTransmitter <- ResponseSender <-------result----------+-- SelfTest (until done)

:class:`BoardTop` has plain pins (``rx``, ``tx``, LEDs) so that the same design runs in
simulation (:mod:`hwbnn.boards.simulation`) and on a board (:mod:`hwbnn.boards.targets` adds
the clock and the pin resources).
"""

from dataclasses import dataclass

from amaranth import (
    ClockDomain,
    ClockSignal,
    Elaboratable,
    Instance,
    Module,
    Mux,
    ResetSignal,
    Signal,
)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwbnnError
from . import protocol
from .bridge import BytesToBeats, LabelResult, RequestParser, ResponseSender, ScoreCollector
from .selftest import SelfTest
from .uart import UARTReceiver, UARTTransmitter


@dataclass(frozen=True)
class NetworkCore:
    """A network as the board top sees it: a component with an input and an output stream.

    ``info`` gives the packing of both streams (its score fields are zero for a network in
    ``label`` mode, whose one output beat per frame holds the class index).
    """

    component: wiring.Component
    info: protocol.DesignInfo
    in_port: str = "i"
    out_port: str = "o"
    cycles_per_frame: int | None = None
    name: str = "network"

    def __post_init__(self):
        for port in (self.in_port, self.out_port):
            if port not in self.component.signature.members:
                raise HwbnnError(f"network component has no port {port!r}")
        in_width = len(self.input_stream.payload)
        if in_width != 8 * self.info.in_beat_bytes:
            raise HwbnnError(f"network input is {in_width} bits wide, the info says "
                             f"{self.info.in_beat_bytes} bytes")

    @property
    def input_stream(self):
        return getattr(self.component, self.in_port)

    @property
    def output_stream(self):
        return getattr(self.component, self.out_port)

    @property
    def mode(self) -> str:
        return "scores" if self.info.has_scores else "label"


class BoardTop(wiring.Component):
    """UART bridge, network, optional self-test, LED outputs.

    Parameters
    ----------
    core : NetworkCore
    divisor : int
        UART clock cycles per bit (:func:`hwbnn.boards.uart.uart_divisor`).
    selftest : tuple[list[list[int]], list[int]] | None
        Input beats of the test frames and their expected labels: the board checks them
        after reset, before it listens to the host.

    Ports: ``rx`` (In), ``tx`` (Out), ``label`` (Out(8): the last label), ``passed`` /
    ``failed`` (Out: self-test outcome; both 0 without or before it), ``busy`` (Out: the
    network holds a frame).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    label: Out(8)
    passed: Out(1)
    failed: Out(1)
    busy: Out(1)

    def __init__(self, core: NetworkCore, divisor: int, selftest=None):
        if not isinstance(core, NetworkCore):
            raise HwbnnError(f"core must be a NetworkCore, not {type(core).__name__}")
        self._core = core
        self._divisor = divisor
        self._selftest = selftest
        # Build the parts here so that bad arguments fail at construction.
        info = core.info
        self._rx = UARTReceiver(divisor)
        self._tx = UARTTransmitter(divisor)
        self._parser = RequestParser(info.frame_bytes, scores=info.has_scores)
        self._sender = ResponseSender(info.to_bytes(),
                                      info.score_beats * info.score_beat_bytes)
        self._beats = BytesToBeats(info.in_beat_bytes)
        if info.has_scores:
            self._result = ScoreCollector(info.score_bits, info.scores_per_beat,
                                          info.score_beat_bytes, info.classes)
        else:
            self._result = LabelResult(len(core.output_stream.payload))
        self._test = None if selftest is None else SelfTest(*selftest, 8 * info.in_beat_bytes)
        super().__init__()

    @property
    def core(self) -> NetworkCore:
        return self._core

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def selftest_frames(self) -> int:
        return 0 if self._test is None else self._test.frame_count

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = self._rx
        m.submodules.uart_tx = tx = self._tx
        m.submodules.parser = parser = self._parser
        m.submodules.sender = sender = self._sender
        m.submodules.to_beats = to_beats = self._beats
        m.submodules.network = self._core.component
        m.submodules.result = result = self._result
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        wiring.connect(m, rx.o, parser.i)
        wiring.connect(m, parser.payload, to_beats.i)
        wiring.connect(m, parser.request, sender.request)
        wiring.connect(m, sender.o, tx.i)
        wiring.connect(m, self._core.output_stream, result.i)

        net_in = self._core.input_stream
        label = result.o.payload[:8]
        if self._test is None:
            wiring.connect(m, to_beats.o, net_in)
            wiring.connect(m, result.o, sender.result)
        else:
            m.submodules.selftest = test = self._test
            self._connect_selftest(m, test, to_beats, net_in, result, sender)
            m.d.comb += [self.passed.eq(test.passed), self.failed.eq(test.failed)]
        with m.If(result.o.valid & result.o.ready):
            m.d.sync += self.label.eq(label)

        # A frame is in the network from its first input beat until its result leaves.
        with m.If(net_in.valid & net_in.ready):
            m.d.sync += self.busy.eq(1)
        with m.Elif(result.o.valid & result.o.ready):
            m.d.sync += self.busy.eq(0)
        return m

    @staticmethod
    def _connect_selftest(m, test, to_beats, net_in, result, sender):
        """The self-test owns the network until it has checked every label."""
        active = ~test.done
        m.d.comb += [
            net_in.payload.eq(Mux(active, test.o.payload, to_beats.o.payload)),
            net_in.valid.eq(Mux(active, test.o.valid, to_beats.o.valid)),
            test.o.ready.eq(active & net_in.ready),
            to_beats.o.ready.eq(~active & net_in.ready),
            test.result.payload.eq(result.o.payload[:8]),
            test.result.valid.eq(active & result.o.valid),
            sender.result.payload.eq(result.o.payload),
            sender.result.valid.eq(~active & result.o.valid),
            result.o.ready.eq(Mux(active, test.result.ready, sender.result.ready)),
        ]


def network_core(net, folding: dict | None = None, scores: bool = False) -> NetworkCore:
    """The generated :class:`~hwbnn.hw.network.NetworkTop` of ``net`` as a board core.

    ``scores=False`` generates the network in ``label`` mode (one label beat per frame);
    ``scores=True`` in ``scores`` mode, and the board picks the label itself.
    """
    from ..hw.network import NetworkTop

    top = NetworkTop(net, folding, output="scores" if scores else "label")
    packing = top.packing()
    given, out = packing["input"], packing["output"]
    encoding = "unsigned" if net.input_encoding.startswith("uint") else net.input_encoding
    score_fields = (out["bits"], out["elements_per_beat"], out["tdata_width"] // 8,
                    out["beats_per_frame"]) if scores else (0, 0, 0, 0)
    info = protocol.DesignInfo(encoding, given["bits"], given["elements_per_beat"],
                               given["tdata_width"] // 8, given["beats_per_frame"],
                               net.num_classes, *score_fields)
    return NetworkCore(top, info, "s_axis", "m_axis", top.cycle_model()["cycles_per_frame"],
                       net.name)


class PlatformTop(Elaboratable):
    """A :class:`BoardTop` on a board: clock (PLL or oscillator), reset, UART pins, LEDs.

    Parameters
    ----------
    board : hwbnn.boards.targets.Board
    top : BoardTop
    pll : hwbnn.boards.targets.PllSetting | None
        None clocks the design from the board oscillator (the platform's default domain).
    """

    # Power-on delay after PLL lock before the design leaves reset (also covers the iCE40
    # block RAMs, which read as zero for about 3 us after configuration).
    POR_CYCLES = 1024

    def __init__(self, board, top: BoardTop, pll=None):
        self._board = board
        self._top = top
        self._pll = pll

    def elaborate(self, platform):
        m = Module()
        if self._pll is not None:
            self._clocking(m, platform)
        m.submodules.board = top = self._top
        uart = platform.request("uart", 0)
        m.d.comb += [top.rx.eq(uart.rx.i), uart.tx.o.eq(top.tx)]
        outputs = {"label": top.label, "busy": top.busy, "passed": top.passed,
                   "failed": top.failed}
        requested = {}  # an RGB LED is one resource with r/g/b subsignals
        for name, leds in self._board.leds.items():
            for bit, (resource, number, *sub) in enumerate(leds):
                if (resource, number) not in requested:
                    requested[resource, number] = platform.request(resource, number)
                pin = requested[resource, number]
                if sub:
                    pin = getattr(pin, sub[0])
                m.d.comb += pin.o.eq(outputs[name][bit])
        return m

    def _clocking(self, m, platform):
        pll = self._pll
        clk = Signal()
        locked = Signal()
        if pll.family == "ice40":
            # The oscillator pin feeds the PLL pad directly (SB_PLL40_PAD).
            pin = platform.request(platform.default_clk, dir="-")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=pll.params["DIVR"], p_DIVF=pll.params["DIVF"],
                p_DIVQ=pll.params["DIVQ"], p_FILTER_RANGE=pll.params["FILTER_RANGE"],
                i_PACKAGEPIN=pin.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clk, o_LOCK=locked)
        else:
            oscillator = platform.request(platform.default_clk, 0)
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_FEEDBK_PATH="CLKOP", p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=pll.params["CLKI_DIV"], p_CLKFB_DIV=pll.params["CLKFB_DIV"],
                p_CLKOP_DIV=pll.params["CLKOP_DIV"],
                p_CLKOP_CPHASE=pll.params["CLKOP_CPHASE"], p_CLKOP_FPHASE=0,
                p_OUTDIVIDER_MUXA="DIVA", p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                i_CLKI=oscillator.i, i_CLKFB=clk, i_RST=0, i_STDBY=0,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=0, i_PHASESTEP=0,
                i_PHASELOADREG=0, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=clk, o_LOCK=locked)
        platform.add_clock_constraint(clk, pll.out_hz)
        m.domains.por = ClockDomain(reset_less=True, local=True)
        m.domains.sync = ClockDomain()
        m.d.comb += [ClockSignal("por").eq(clk), ClockSignal("sync").eq(clk)]
        timer = Signal(range(self.POR_CYCLES + 1))
        with m.If(~locked):
            m.d.por += timer.eq(0)
        with m.Elif(timer != self.POR_CYCLES):
            m.d.por += timer.eq(timer + 1)
        m.d.comb += ResetSignal("sync").eq(timer != self.POR_CYCLES)
