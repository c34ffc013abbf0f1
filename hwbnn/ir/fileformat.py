"""The ``*.hwbnn`` model file: one zip holding ``header.json`` and ``.npy`` arrays.

The header carries ``format_version``; every array is integer. Version 1 holds a chain of
matvec, conv (stride 1) and maxpool layers; version 2 adds what
:meth:`~hwbnn.ir.network.NetworkIR.v2_features` lists (named layer inputs, add, avgpool,
globalavgpool, threshold, conv stride, integer weights, signed activations). A network is
written in the lowest version that holds it, so a version-1 network gives the same bytes as
it always did. Files are written reproducibly (fixed timestamps, sorted entries) and
atomically (temporary file + rename), so the same network always gives the same bytes and a
failed save leaves nothing behind.

Reading is the boundary where a damaged or hostile file stops: every zip read is guarded,
header.json is limited in size and depth and its fields are strictly typed (a bool is not an
int, 1.0 is not a version), and each array's dtype is checked exactly and its size against
its shape and the limits below before a byte of it is decompressed, so a zip bomb inflates
nothing. Every problem is one :class:`HwbnnError` naming the file and the field.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import stat
import struct
import tempfile
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import HwbnnError
from .network import (
    INTEGER_WEIGHT_BITS,
    MAX_PLANES,
    Add,
    AvgPool,
    Conv,
    GlobalAvgPool,
    MatVec,
    MaxPool,
    NetworkIR,
    Threshold,
    Weights,
)

FORMAT = "hwbnn"
FORMAT_VERSIONS = (1, 2)  # what this hwbnn reads; it writes the lowest that holds a network
FORMAT_VERSION = FORMAT_VERSIONS[-1]
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)

# Limits of what a model file may hold; every one is checked before the data is read.
MAX_FILE_BYTES = 1 << 28  # the file itself
MAX_HEADER_BYTES = 1 << 20  # header.json
MAX_JSON_DEPTH = 32  # nesting of header.json (the metadata is the deepest part)
MAX_LAYER_WEIGHTS = 1 << 24  # MH * MW of one layer, 64x the largest FPGA design (gen)
MAX_ARRAY_BYTES = 1 << 28  # all arrays together, decompressed
_NPY_HEADER_BYTES = 4096  # room for any .npy header (np.save writes 128 bytes)
# Array name -> (its exact dtype as written by to_bytes, dimensions, most elements).
ARRAY_LIMITS = {
    "planes": (np.dtype(np.uint8), 3,
               max(MAX_PLANES, INTEGER_WEIGHT_BITS[-1]) * MAX_LAYER_WEIGHTS),
    "bitwidth": (np.dtype(np.uint8), 2, MAX_LAYER_WEIGHTS),
    "scales": (np.dtype(np.int64), 1, MAX_PLANES),
    "thresholds": (np.dtype(np.int64), 2, MAX_LAYER_WEIGHTS),
}


def _weight_layer_header(layer: MatVec | Conv, version: int) -> dict:
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
        if version >= 2:
            header.update(stride=layer.stride)
    return header


def _layer_header(layer, version: int) -> dict:
    """The header entry of any layer (version-2 fields only in version-2 files)."""
    if isinstance(layer, MatVec | Conv):
        header = _weight_layer_header(layer, version)
    else:
        header = {"name": layer.name, "kind": layer.kind, "in_shape": list(layer.in_shape)}
    if isinstance(layer, MaxPool | AvgPool):
        header.update(kernel=layer.kernel)
    if isinstance(layer, MaxPool | AvgPool | GlobalAvgPool):
        header.update(encoding=layer.encoding)
    if isinstance(layer, AvgPool):
        header.update(stride=layer.stride)
    if isinstance(layer, Threshold):
        header.update(in_encoding=layer.in_encoding, out_encoding=layer.out_encoding)
    if isinstance(layer, Add):
        header.update(in_encodings=list(layer.in_encodings),
                      scales=[int(s) for s in layer.scales], out_encoding=layer.out_encoding,
                      thresholded=layer.thresholds is not None)
    if layer.inputs is not None:
        header.update(inputs=list(layer.inputs))
    return header


def _layer_arrays(layer) -> dict[str, np.ndarray]:
    arrays = {}
    if isinstance(layer, MatVec | Conv):
        arrays["planes"] = layer.weights.planes.astype(np.uint8)
    if isinstance(layer, MatVec | Conv) and layer.weights.kind == "residual":
        arrays["bitwidth"] = layer.weights.bitwidth.astype(np.uint8)
        arrays["scales"] = layer.weights.scales.astype(np.int64)
    if getattr(layer, "thresholds", None) is not None:
        arrays["thresholds"] = layer.thresholds.astype(np.int64)
    return arrays


def to_bytes(net: NetworkIR) -> bytes:
    """Serialize a validated network into the bytes of a ``.hwbnn`` file."""
    net.validate()
    version = 2 if net.v2_features() else 1
    header = {
        "format": FORMAT,
        "format_version": version,
        "name": net.name,
        "input_shape": list(net.input_shape),
        "input_encoding": net.input_encoding,
        "metadata": net.metadata,
        "layers": [],
    }
    arrays: dict[str, np.ndarray] = {}
    for index, layer in enumerate(net.layers):
        header["layers"].append(_layer_header(layer, version))
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
    """Write bytes to ``path`` through a temporary file in the same folder, then rename.

    A file-system problem (read-only place, a folder in the way) is one HwbnnError naming
    the path, and nothing is left behind.
    """
    path = Path(path)
    make_dir(path.parent)
    temp = None
    try:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                        suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal modes
        os.replace(temp, path)
    except OSError as error:
        raise HwbnnError(f"cannot write {str(path)!r}: {_reason(error)}") from None
    finally:
        if temp is not None and os.path.lexists(temp):
            Path(temp).unlink()
    return path


def make_dir(path: str | os.PathLike) -> Path:
    """Create folder ``path`` (and its parents) unless it exists; HwbnnError naming the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise HwbnnError(f"cannot create folder {str(path)!r}: a file is in the "
                         f"way") from None
    except OSError as error:
        raise HwbnnError(f"cannot create folder {str(path)!r}: {_reason(error)}") from None
    return path


def check_folder(path: str | os.PathLike) -> Path:
    """``path`` if :func:`make_dir` can create it or write into it, else HwbnnError naming it:
    a check before long work whose output goes there (nothing is created yet)."""
    path = Path(path)
    try:
        existing = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
    except OSError as error:  # a parent that may not be searched
        raise HwbnnError(f"cannot create folder {str(path)!r}: {_reason(error)}") from None
    if not existing.is_dir():
        raise HwbnnError(f"cannot create folder {str(path)!r}: a file is in the way")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise HwbnnError(f"cannot create folder {str(path)!r}: "
                         f"{os.strerror(errno.EACCES)}")
    return path


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def read_file(path: str | os.PathLike, what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; HwbnnError naming the path
    when it is missing, unreadable, not a regular file (a folder, a device) or too large."""
    path = Path(path)
    try:
        # Non-blocking (where there is such a flag): opening a named pipe must not wait for
        # a writer; a regular file reads as ever.
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise HwbnnError(f"{what} {str(path)!r} is not a regular file")
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise HwbnnError(f"{what} {str(path)!r} does not exist") from None
    except OSError as error:
        raise HwbnnError(f"cannot read {what} {str(path)!r}: {_reason(error)}") from None
    if len(data) > limit:
        raise HwbnnError(f"{what} {str(path)!r} is larger than {limit >> 20} MiB")
    return data


def parse_json(data: bytes | str, what: str, max_depth: int = MAX_JSON_DEPTH):
    """Strict JSON: UTF-8, no NaN/Infinity, nested at most ``max_depth`` deep (deeper nesting
    would exhaust the recursion of later readers and writers)."""

    def refuse(constant):
        raise ValueError(f"{constant} is not a JSON number")

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise HwbnnError(f"{what} is nested deeper than {max_depth} levels") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise HwbnnError(f"{what} is not valid JSON ({str(error).splitlines()[0]})") from None
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > max_depth:
            raise HwbnnError(f"{what} is nested deeper than {max_depth} levels")
        level = [child for item in level if isinstance(item, dict | list)
                 for child in (item.values() if isinstance(item, dict) else item)]
    return value


def save(net: NetworkIR, path: str | os.PathLike) -> Path:
    """Validate and write ``net`` to ``path`` (a ``.hwbnn`` file)."""
    return write_atomic(path, to_bytes(net))


def sha256(path: str | os.PathLike) -> str:
    """Hex digest of a model file (recorded in hardware manifests)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# Everything the zip module and its decompressors raise on damaged or unsupported archives
# (zipfile raises RuntimeError for an encrypted entry, NotImplementedError for one with
# strong encryption: a flag bit a damaged header can carry).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
               ValueError, RuntimeError, NotImplementedError, struct.error)


class _Reader:
    """Reads fields and arrays out of a model file with errors that name them.

    Every read from the zip is bounded: an entry's size in the zip directory is checked
    (header.json against :data:`MAX_HEADER_BYTES`, an array against the dtype and shape in
    its own ``.npy`` header, which must be within :data:`ARRAY_LIMITS`) before its data is
    decompressed, and no more than that size is ever inflated.
    """

    def __init__(self, archive: zipfile.ZipFile, source: str):
        self.archive = archive
        self.source = source
        self.array_bytes = 0

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

    def optional_names(self, mapping: dict, key: str, where: str) -> tuple[str, ...] | None:
        value = mapping.get(key)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            self.fail(f"{where}: field '{key}' must be a list of layer names or null")
        return None if value is None else tuple(value)

    def optional_int(self, mapping: dict, key: str, where: str) -> int | None:
        value = mapping.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(f"{where}: field '{key}' must be an integer or null")
        return value

    def entry(self, path: str, what: str) -> zipfile.ZipInfo:
        try:
            info = self.archive.getinfo(path)
        except KeyError:
            self.fail(f"{what} is missing")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            self.fail(f"{what} uses an unsupported zip compression ({info.compress_type})")
        return info

    def header(self):
        """The parsed header.json."""
        info = self.entry("header.json", "header.json")
        if info.file_size > MAX_HEADER_BYTES:
            self.fail(f"header.json is larger than {MAX_HEADER_BYTES >> 20} MiB")
        try:
            with self.archive.open(info) as stream:
                text = self._read_exactly(stream, info.file_size)
        except _ZIP_ERRORS as error:
            self.fail(f"header.json is unreadable ({error})")
        try:
            return parse_json(text, "header.json")
        except HwbnnError as error:
            self.fail(str(error))

    @staticmethod
    def _read_exactly(stream, size: int) -> bytes:
        """``size`` bytes and the end of the entry (where zipfile checks the CRC)."""
        data = stream.read(size)
        if len(data) != size or stream.read(1):
            raise EOFError(f"expected {size} bytes")
        return data

    def array(self, index: int, key: str, where: str) -> np.ndarray:
        what = f"{where}: array '{key}'"
        info = self.entry(f"layers/{index}/{key}.npy", what)
        dtype, ndim, max_elements = ARRAY_LIMITS[key]
        if info.file_size > _NPY_HEADER_BYTES + max_elements * dtype.itemsize:
            self.fail(f"{what} is larger than any layer can be ({info.file_size} bytes)")
        try:
            with self.archive.open(info) as stream:
                head = stream.read(min(info.file_size, _NPY_HEADER_BYTES))
                shape, data_offset = self._npy_header(head, what, dtype, ndim, max_elements)
                size = data_offset + math.prod(shape) * dtype.itemsize
                if info.file_size != size:
                    self.fail(f"{what} holds {info.file_size} bytes, its shape {shape} needs "
                              f"{size}")
                self.array_bytes += size
                if self.array_bytes > MAX_ARRAY_BYTES:
                    self.fail(f"the arrays exceed {MAX_ARRAY_BYTES >> 20} MiB in all")
                data = head + self._read_exactly(stream, size - len(head))
        except _ZIP_ERRORS as error:
            self.fail(f"{what} is unreadable ({error})")
        return np.load(io.BytesIO(data), allow_pickle=False)

    def _npy_header(self, head: bytes, what: str, dtype: np.dtype, ndim: int,
                    max_elements: int) -> tuple[tuple, int]:
        """Shape and data offset from the start of a ``.npy`` entry, checked against the
        exact dtype hwbnn writes (so no value is converted, e.g. uint64 wrapping to -1)."""
        stream = io.BytesIO(head)
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _, found = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, _, found = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f".npy version {version} is not supported")
        except (ValueError, SyntaxError, tokenize.TokenError, RecursionError) as error:
            self.fail(f"{what} is unreadable ({error})")  # numpy parses the header text
        if found != dtype:
            self.fail(f"{what} must have dtype {dtype}, not {found}")
        if len(shape) != ndim or min(shape, default=1) < 0:
            self.fail(f"{what} must have {ndim} dimensions, not shape {shape}")
        if math.prod(shape) > max_elements:
            self.fail(f"{what} has shape {shape}, more than {max_elements} elements")
        return shape, stream.tell()


def _read_weight_layer(reader: _Reader, index: int, entry: dict, where: str) -> MatVec | Conv:
    kind = reader.field(entry, "weight_kind", str, where)
    planes = reader.array(index, "planes", where)
    bitwidth = scales = None
    if kind == "residual":
        bitwidth = reader.array(index, "bitwidth", where)
        scales = reader.array(index, "scales", where)
    thresholds = None
    if entry.get("out_encoding") is not None:
        thresholds = reader.array(index, "thresholds", where)
    common = dict(
        name=reader.field(entry, "name", str, where),
        in_encoding=reader.field(entry, "in_encoding", str, where),
        weights=Weights(kind, planes, bitwidth, scales),
        thresholds=thresholds,
        out_encoding=entry.get("out_encoding"),
        acc_range=reader.int_list(entry, "acc_range", 2, where),
        acc_width=reader.field(entry, "acc_width", int, where),
        pe=reader.optional_int(entry, "pe", where),
        simd=reader.optional_int(entry, "simd", where),
    )
    common.update(inputs=reader.optional_names(entry, "inputs", where))
    if entry["kind"] == "matvec":
        return MatVec(**common)
    stride = 1 if "stride" not in entry else reader.field(entry, "stride", int, where)
    return Conv(**common, in_shape=reader.int_list(entry, "in_shape", 3, where),
                kernel=reader.field(entry, "kernel", int, where),
                padding=reader.field(entry, "padding", int, where), stride=stride)


def _read_other_layer(reader: _Reader, index: int, entry: dict, kind: str, where: str):
    """A layer without weights: maxpool, avgpool, globalavgpool, add or threshold."""
    common = dict(name=reader.field(entry, "name", str, where),
                  inputs=reader.optional_names(entry, "inputs", where))
    if kind == "threshold":
        return Threshold(**common, in_shape=reader.int_list(entry, "in_shape", None, where),
                         in_encoding=reader.field(entry, "in_encoding", str, where),
                         thresholds=reader.array(index, "thresholds", where),
                         out_encoding=reader.field(entry, "out_encoding", str, where))
    if kind == "add":
        thresholds = None
        if reader.field(entry, "thresholded", bool, where):
            thresholds = reader.array(index, "thresholds", where)
        names = common.pop("inputs")
        return Add(**common, inputs=names,
                   in_shape=reader.int_list(entry, "in_shape", None, where),
                   in_encodings=tuple(reader.field(entry, "in_encodings", list, where)),
                   scales=reader.int_list(entry, "scales", 2, where), thresholds=thresholds,
                   out_encoding=reader.field(entry, "out_encoding", str, where))
    common.update(in_shape=reader.int_list(entry, "in_shape", 3, where),
                  encoding=reader.field(entry, "encoding", str, where))
    if kind == "globalavgpool":
        return GlobalAvgPool(**common)
    kernel = reader.field(entry, "kernel", int, where)
    if kind == "maxpool":
        return MaxPool(**common, kernel=kernel)
    return AvgPool(**common, kernel=kernel, stride=reader.field(entry, "stride", int, where))


def from_bytes(data: bytes, source: str = "model file") -> NetworkIR:
    """Parse and validate the bytes of a ``.hwbnn`` file; every problem is one HwbnnError."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as error:
        raise HwbnnError(f"{source}: not a hwbnn model file or truncated ({error})") from None
    reader = _Reader(archive, source)
    header = reader.header()
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        reader.fail("header.json does not describe a hwbnn model")
    version = header.get("format_version")
    if type(version) is not int or version not in FORMAT_VERSIONS:  # not True, not 1.0
        reader.fail(f"format_version {version!r} is not supported (this hwbnn reads "
                    f"versions {', '.join(map(str, FORMAT_VERSIONS))})")
    kinds = ("matvec", "conv", "maxpool") + (("add", "avgpool", "globalavgpool",
                                              "threshold") if version >= 2 else ())
    layers = []
    for index, entry in enumerate(reader.field(header, "layers", list, "header")):
        where = f"layer {index}"
        kind = reader.field(entry, "kind", str, where)
        if kind not in kinds:
            reader.fail(f"{where}: unsupported layer kind {kind!r} (format_version {version})")
        if kind in ("matvec", "conv"):
            layers.append(_read_weight_layer(reader, index, entry, where))
        else:
            layers.append(_read_other_layer(reader, index, entry, kind, where))
    try:
        net = NetworkIR(
            name=reader.field(header, "name", str, "header"),
            input_shape=reader.int_list(header, "input_shape", None, "header"),
            input_encoding=reader.field(header, "input_encoding", str, "header"),
            layers=layers,
            metadata=reader.field(header, "metadata", dict, "header"),
        )
        net.validate()
        features = net.v2_features()
        if version == 1 and features:
            raise HwbnnError(f"format_version 1 cannot hold {features[0]} (version 2 can)")
        return net
    except HwbnnError as error:
        raise HwbnnError(f"{source}: {error}") from None


def load(path: str | os.PathLike) -> NetworkIR:
    """Read and validate a ``.hwbnn`` file; every problem is one HwbnnError naming it."""
    return from_bytes(read_file(path, "model file", MAX_FILE_BYTES), source=str(path))
