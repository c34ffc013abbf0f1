"""A generated design on disk: Verilog files plus the ``manifest.json`` that describes them.

``hwbnn gen`` writes the manifest (docs/design.md section 4) beside the Verilog; synthesis needs
only the top module's name, its stream ports and their widths, and which files to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HwbnnError
from .wrapper import StreamPorts


@dataclass
class Design:
    """What synthesis needs to know about a design: files, top name, stream widths."""

    top: str
    verilog_files: list[Path]
    in_width: int
    out_width: int
    ports: StreamPorts = field(default_factory=StreamPorts)

    def __post_init__(self):
        if not isinstance(self.top, str) or not self.top:
            raise HwbnnError(f"top must be a module name, not {self.top!r}")
        if not self.verilog_files:
            raise HwbnnError(f"design {self.top!r} has no Verilog files")
        for name in ("in_width", "out_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise HwbnnError(f"{name} must be a positive integer, not {value!r}")


def read_design(directory: str | Path) -> Design:
    """Read ``directory/manifest.json``; HwbnnError naming the missing or bad field."""
    from ..hw.gen import read_manifest

    directory = Path(directory)
    manifest, path = read_manifest(directory)
    top = _top_name(manifest, path)
    ports = StreamPorts()
    return Design(
        top=top,
        verilog_files=_verilog_files(manifest, directory, path),
        in_width=_port_width(manifest, ports.s_tdata, "input", path),
        out_width=_port_width(manifest, ports.m_tdata, "output", path),
        ports=ports,
    )


def _top_name(manifest: dict, path: Path) -> str:
    top = manifest.get("top")
    if isinstance(top, dict):
        top = top.get("name")
    if not isinstance(top, str) or not top:
        raise HwbnnError(f"{path}: field 'top' must name the top module")
    return top


def _verilog_files(manifest: dict, directory: Path, path: Path) -> list[Path]:
    listed = manifest.get("verilog")
    if listed is None:
        files = sorted(directory.glob("*.v"))
        if not files:
            raise HwbnnError(f"{directory} holds no Verilog (*.v) files")
        return files
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        raise HwbnnError(f"{path}: field 'verilog' must be a file name or a list of them")
    files = [directory / name for name in listed]
    missing = [str(file) for file in files if not file.is_file()]
    if missing:
        raise HwbnnError(f"{path}: Verilog file {missing[0]} does not exist")
    return files


def _port_width(manifest: dict, port: str, stream: str, path: Path) -> int:
    """Width of ``port`` from ``ports`` ({name: width} or [{name, width}]) or the packing."""
    ports = manifest.get("ports")
    width = None
    if isinstance(ports, dict):
        width = ports.get(port)
        if isinstance(width, dict):
            width = width.get("width")
    elif isinstance(ports, list):
        width = next((entry.get("width") for entry in ports
                      if isinstance(entry, dict) and entry.get("name") == port), None)
    if width is None and isinstance(manifest.get(stream), dict):
        packing = manifest[stream]
        width = next((packing[key] for key in ("tdata_width", "beat_bits", "width")
                      if key in packing), None)
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise HwbnnError(f"{path}: no positive width for port {port} (expected "
                         f"'ports': {{'{port}': WIDTH}} or '{stream}': {{'tdata_width': ...}})")
    return width
