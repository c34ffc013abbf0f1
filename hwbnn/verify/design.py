# amaranth: UnusedElaboratable=no
# (RtlDesign.taps builds a NetworkTop only to read its stage layout, never to elaborate it.)
"""A generated design to verify: its folder (Verilog + manifest.json) and the model it came from.

``hwbnn gen`` records the model's SHA-256 (``ir_sha256``) in the manifest but not its path,
so :func:`open_design` looks for the model among ``--model``, any ``*.hwbnn`` file in the
folder and the zoo model named by the manifest, and accepts only the one whose digest
matches: verification against the wrong model would prove nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import HwbnnError
from ..ir import fileformat
from ..ir.encoding import encoding_bits
from ..ir.network import Conv, MatVec, NetworkIR

TOP_INSTANCE = "network"  # NetworkTop's instance inside the AXI-Stream wrapper of hw.gen


def ir_digest(net: NetworkIR) -> str:
    return hashlib.sha256(fileformat.to_bytes(net)).hexdigest()


@dataclass(frozen=True)
class Tap:
    """A layer's output stream inside the design: instance path and element packing."""

    layer: str
    path: tuple[str, ...]
    bits: int
    per_beat: int
    encoding: str  # the layer's output encoding, or "signed" for scores

    def bench_entry(self) -> dict:
        return {"name": self.layer, "path": list(self.path)}


@dataclass
class RtlDesign:
    """A folder written by ``hwbnn gen`` and the NetworkIR it implements."""

    directory: Path
    manifest: dict
    net: NetworkIR

    @property
    def name(self) -> str:
        return self.manifest["top"]

    @property
    def top(self) -> str:
        return self.manifest["top"]

    @property
    def verilog(self) -> Path:
        return self.directory / self.manifest.get("verilog", f"{self.top}.v")

    @property
    def packing(self) -> dict:
        return self.manifest["packing"]

    @property
    def output(self) -> str:
        return self.manifest.get("output", self.packing["output"]["kind"])

    @property
    def folding(self):
        """The :class:`~hwbnn.hw.fold.Folding` the manifest records, with the frame rate and
        clock it was made for (``folded_for``), where ``gen`` had them."""
        from ..hw.fold import Folding

        made_for = self.manifest.get("folded_for") or {}
        return Folding.parse(self.manifest.get("folding", {}), self.net,
                             target_fps=made_for.get("target_frames_per_s"),
                             clock_mhz=made_for.get("clock_mhz"))

    @property
    def cycles_per_frame(self) -> int:
        return int(self.manifest["cycles_per_frame"])

    @property
    def latency_cycles(self) -> int:
        return int(self.manifest.get("latency_cycles_max", 4 * self.cycles_per_frame))

    def taps(self) -> list[Tap]:
        """One tap per IR layer: the output stream of the unit that computes it.

        An MVTU's stream carries PE elements per beat (its scores as ``acc_width``-bit
        two's complement), a pool unit's one pixel (C elements), a threshold or add unit the
        lanes of its input; the generator names each unit after its layer inside the
        ``network`` instance (:meth:`~hwbnn.hw.network.NetworkTop.layer_outputs`).
        """
        from ..hw.network import NetworkTop

        mode = self.manifest.get("mode", "folded")
        folding = self.folding if mode == "folded" else None
        outputs = NetworkTop(self.net, folding, mode=mode).layer_outputs()
        taps = []
        for layer in self.net.layers:
            stage = outputs[layer.name]
            produces_scores = getattr(layer, "produces_scores", False)
            encoding = "signed" if produces_scores else layer.out_encoding
            taps.append(Tap(layer.name, (TOP_INSTANCE, stage.name), stage.elem_bits_out,
                            stage.chunk_out, encoding))
        return taps


def read_manifest(directory: Path) -> dict:
    """The manifest with the fields verification needs checked."""
    from ..hw.gen import read_manifest as read_json

    manifest, path = read_json(directory)
    for key in ("top", "packing", "cycles_per_frame", "ir_sha256"):
        if not isinstance(manifest, dict) or key not in manifest:
            raise HwbnnError(f"{path}: field '{key}' is missing")
    for side in ("input", "output"):
        for key in ("bits", "elements_per_beat", "beats_per_frame", "tdata_width"):
            value = manifest["packing"].get(side, {}).get(key)
            if not isinstance(value, int) or value < 1:
                raise HwbnnError(f"{path}: packing.{side}.{key} must be a positive integer, "
                                 f"not {value!r}")
    return manifest


def _candidates(directory: Path, manifest: dict):
    from .. import zoo

    for path in sorted(directory.glob("*.hwbnn")):
        yield str(path), lambda path=path: fileformat.load(path)
    name = manifest.get("model")
    if isinstance(name, str) and name in zoo.names():
        yield f"zoo:{name}", lambda: zoo.load(f"zoo:{name}")


def open_design(directory: str | Path, model: str | Path | NetworkIR | None = None
                ) -> RtlDesign:
    """Read a generated design; find (or check) the model it was generated from (a path,
    ``zoo:NAME`` or the NetworkIR itself)."""
    from .. import zoo

    directory = Path(directory)
    manifest = read_manifest(directory)
    digest = manifest["ir_sha256"]
    if model is not None:
        net = model if isinstance(model, NetworkIR) else zoo.load(model)
        if ir_digest(net) != digest:
            raise HwbnnError(f"model {getattr(model, 'name', model)} is not the one "
                             f"{directory} was generated from "
                             f"(ir_sha256 differs)")
    else:
        net = None
        for _, load in _candidates(directory, manifest):
            candidate = load()
            if ir_digest(candidate) == digest:
                net = candidate
                break
        if net is None:
            raise HwbnnError(f"cannot find the model {directory} was generated from "
                             f"(ir_sha256 {digest[:12]}...): pass --model")
    design = RtlDesign(directory, manifest, net)
    if not design.verilog.is_file():
        raise HwbnnError(f"{design.verilog} not found")
    _check_consistent(design)
    return design


def _check_consistent(design: RtlDesign) -> None:
    """The manifest's packing must fit the model (a hand-edited manifest fails here)."""
    net, packing = design.net, design.packing
    inp = packing["input"]
    if inp["bits"] != encoding_bits(net.input_encoding):
        raise HwbnnError(f"{design.directory}: input bits {inp['bits']} do not match the "
                         f"model's {net.input_encoding} input")
    size = 1
    for extent in net.input_shape:
        size *= int(extent)
    if inp["elements_per_beat"] * inp["beats_per_frame"] != size:
        raise HwbnnError(f"{design.directory}: {inp['beats_per_frame']} input beats of "
                         f"{inp['elements_per_beat']} elements do not hold a "
                         f"{'x'.join(map(str, net.input_shape))} frame")
    if not any(isinstance(layer, MatVec | Conv) for layer in net.layers):
        raise HwbnnError(f"model {net.name} has no weight layer")


def generate_design(model: str | Path | NetworkIR, out_dir: str | Path, *,
                    folding=None, target_fps: float | None = None,
                    clock_mhz: float | None = None, output: str = "scores",
                    mode: str = "folded", name: str | None = None,
                    adders: str = "trees") -> RtlDesign:
    """Generate a model's design with ``hwbnn.hw.gen``, write the model file beside it (so
    the folder is self-contained) and open it: what ``hwbnn gen`` and ``Model.generate`` do.

    ``folding``, ``target_fps`` and ``clock_mhz`` as :meth:`hwbnn.hw.fold.Folding.parse`
    takes them (default: the layers' own PE/SIMD); the unrolled mode takes none of them,
    and builds its sums with ``adders``.
    """
    from .. import zoo
    from ..hw.fold import Folding
    from ..hw.gen import check_unrolled, generate
    from ..hw.unrolled import check_adders

    check_adders(mode, adders)
    net = model if isinstance(model, NetworkIR) else zoo.load(model)
    if mode == "unrolled":
        check_unrolled(net, folding, target_fps)
    else:
        folding = Folding.parse(folding, net, target_fps=target_fps, clock_mhz=clock_mhz)
    out_dir = Path(out_dir)
    generate(net, folding, out_dir, output=output, mode=mode, name=name, adders=adders)
    fileformat.save(net, out_dir / f"{net.name}.hwbnn")
    return open_design(out_dir, net)
