"""The ``*.hwbnn`` model file: one zip holding ``header.json`` and ``.npy`` arrays.

The header carries ``format_version``; every array is integer. Files are written
reproducibly (fixed timestamps, sorted entries) and atomically (temporary file + rename),
so the same network always gives the same bytes and a failed save leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import HwbnnError
from .network import Conv, MatVec, MaxPool, NetworkIR, Weights

FORMAT = "hwbnn"
FORMAT_VERSION = 1
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def _weight_layer_header(layer: MatVec | Conv) -> dict:
    header = {
        "name": layer.name,
        "kind": layer.kind,
        "in_encoding": layer.in_encoding,
        "out_encoding": layer.out_encoding,
        "weight_kind": layer.weights.kind,
        "acc_range": [int(v) for v in layer.acc_range],
        "acc_width": int(layer.acc_width),
        "pe": layer.pe,
        "simd": layer.simd,
    }
    if isinstance(layer, Conv):
        header.update(in_shape=list(layer.in_shape), kernel=layer.kernel, padding=layer.padding)
    return header


def _layer_arrays(layer: MatVec | Conv) -> dict[str, np.ndarray]:
    arrays = {"planes": layer.weights.planes.astype(np.uint8)}
    if layer.weights.kind == "residual":
        arrays["bitwidth"] = layer.weights.bitwidth.astype(np.uint8)
        arrays["scales"] = layer.weights.scales.astype(np.int64)
    if layer.thresholds is not None:
        arrays["thresholds"] = layer.thresholds.astype(np.int64)
    return arrays


def to_bytes(net: NetworkIR) -> bytes:
    """Serialize a validated network into the bytes of a ``.hwbnn`` file."""
    net.validate()
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": net.name,
        "input_shape": list(net.input_shape),
        "input_encoding": net.input_encoding,
        "metadata": net.metadata,
        "layers": [],
    }
    arrays: dict[str, np.ndarray] = {}
    for index, layer in enumerate(net.layers):
        if isinstance(layer, MaxPool):
            header["layers"].append({"name": layer.name, "kind": "maxpool",
                                     "in_shape": list(layer.in_shape),
                                     "kernel": layer.kernel, "encoding": layer.encoding})
            continue
        header["layers"].append(_weight_layer_header(layer))
        for key, array in _layer_arrays(layer).items():
            arrays[f"layers/{index}/{key}.npy"] = array
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entry = zipfile.ZipInfo("header.json", _ZIP_DATE)
        archive.writestr(entry, json.dumps(header, indent=1, sort_keys=True),
                         zipfile.ZIP_DEFLATED)
        for path in sorted(arrays):
            data = io.BytesIO()
            np.save(data, arrays[path], allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(path, _ZIP_DATE), data.getvalue(),
                             zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal modes
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def save(net: NetworkIR, path: str | os.PathLike) -> Path:
    """Validate and write ``net`` to ``path`` (a ``.hwbnn`` file)."""
    return write_atomic(path, to_bytes(net))


def sha256(path: str | os.PathLike) -> str:
    """Hex digest of a model file (recorded in hardware manifests)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class _Reader:
    """Reads fields out of a parsed header with errors that name the field."""

    def __init__(self, archive: zipfile.ZipFile, source: str):
        self.archive = archive
        self.source = source

    def fail(self, message: str):
        raise HwbnnError(f"{self.source}: {message}")

    def field(self, mapping: dict, key: str, types, where: str):
        if not isinstance(mapping, dict) or key not in mapping:
            self.fail(f"{where}: field '{key}' is missing")
        value = mapping[key]
        if not isinstance(value, types) or (isinstance(value, bool) and types is int):
            self.fail(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
        return value

    def int_list(self, mapping: dict, key: str, length: int | None, where: str) -> tuple:
        value = self.field(mapping, key, list, where)
        if (length is not None and len(value) != length) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            self.fail(f"{where}: field '{key}' must be a list of "
                      f"{length if length else 'some'} integers")
        return tuple(value)

    def array(self, index: int, key: str, where: str) -> np.ndarray:
        path = f"layers/{index}/{key}.npy"
        try:
            data = self.archive.read(path)
        except KeyError:
            self.fail(f"{where}: array '{key}' is missing")
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as error:
            self.fail(f"{where}: array '{key}' is unreadable ({error})")
        if not np.issubdtype(array.dtype, np.integer):
            self.fail(f"{where}: array '{key}' must be integer, not {array.dtype}")
        return array


def _read_weight_layer(reader: _Reader, index: int, entry: dict, where: str) -> MatVec | Conv:
    kind = reader.field(entry, "weight_kind", str, where)
    planes = reader.array(index, "planes", where)
    bitwidth = scales = None
    if kind == "residual":
        bitwidth = reader.array(index, "bitwidth", where)
        scales = reader.array(index, "scales", where).astype(np.int64)
    thresholds = None
    if entry.get("out_encoding") is not None:
        thresholds = reader.array(index, "thresholds", where).astype(np.int64)
    common = dict(
        name=reader.field(entry, "name", str, where),
        in_encoding=reader.field(entry, "in_encoding", str, where),
        weights=Weights(kind, planes, bitwidth, scales),
        thresholds=thresholds,
        out_encoding=entry.get("out_encoding"),
        acc_range=reader.int_list(entry, "acc_range", 2, where),
        acc_width=reader.field(entry, "acc_width", int, where),
        pe=entry.get("pe"),
        simd=entry.get("simd"),
    )
    for key in ("pe", "simd"):
        if common[key] is not None and not isinstance(common[key], int):
            reader.fail(f"{where}: field '{key}' must be an integer or null")
    if entry["kind"] == "matvec":
        return MatVec(**common)
    return Conv(**common, in_shape=reader.int_list(entry, "in_shape", 3, where),
                kernel=reader.field(entry, "kernel", int, where),
                padding=reader.field(entry, "padding", int, where))


def from_bytes(data: bytes, source: str = "model file") -> NetworkIR:
    """Parse and validate the bytes of a ``.hwbnn`` file."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        header_text = archive.read("header.json")
    except (zipfile.BadZipFile, KeyError, EOFError, OSError, ValueError) as error:
        raise HwbnnError(f"{source}: not a hwbnn model file or truncated ({error})") from None
    except zipfile.LargeZipFile as error:
        raise HwbnnError(f"{source}: unreadable archive ({error})") from None
    reader = _Reader(archive, source)
    try:
        header = json.loads(header_text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reader.fail(f"header.json is not valid JSON ({error})")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        reader.fail("header.json does not describe a hwbnn model")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        reader.fail(f"format_version {version!r} is not supported (this hwbnn reads "
                    f"version {FORMAT_VERSION})")
    layers = []
    for index, entry in enumerate(reader.field(header, "layers", list, "header")):
        where = f"layer {index}"
        kind = reader.field(entry, "kind", str, where)
        if kind == "maxpool":
            layers.append(MaxPool(name=reader.field(entry, "name", str, where),
                                  in_shape=reader.int_list(entry, "in_shape", 3, where),
                                  kernel=reader.field(entry, "kernel", int, where),
                                  encoding=reader.field(entry, "encoding", str, where)))
        elif kind in ("matvec", "conv"):
            layers.append(_read_weight_layer(reader, index, entry, where))
        else:
            reader.fail(f"{where}: unsupported layer kind {kind!r}")
    try:
        net = NetworkIR(
            name=reader.field(header, "name", str, "header"),
            input_shape=reader.int_list(header, "input_shape", None, "header"),
            input_encoding=reader.field(header, "input_encoding", str, "header"),
            layers=layers,
            metadata=reader.field(header, "metadata", dict, "header"),
        )
        return net.validate()
    except HwbnnError as error:
        raise HwbnnError(f"{source}: {error}") from None


def load(path: str | os.PathLike) -> NetworkIR:
    """Read and validate a ``.hwbnn`` file; every problem is one HwbnnError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HwbnnError(f"model file {str(path)!r} does not exist") from None
    except OSError as error:
        raise HwbnnError(f"cannot read model file {str(path)!r}: {error.strerror}") from None
    return from_bytes(data, source=str(path))
