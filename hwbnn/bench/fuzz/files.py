"""Mutated model files: bytes, zip structure, header.json and the ``.npy`` arrays."""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from .cases import ZOO_FILES, Case


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@dataclass
class ZipEntry:
    """A zip entry as written by :func:`write_zip`: raw (maybe compressed) bytes and the sizes and
    CRC its headers declare (which a mutation may make lie)."""

    name: str
    raw: bytes
    method: int
    crc: int
    size: int
    flags: int = 0


def zip_entry(name: str, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> ZipEntry:
    if method == zipfile.ZIP_DEFLATED:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        raw = packer.compress(data) + packer.flush()
    else:
        raw = data
    return ZipEntry(name, raw, method, zlib.crc32(data), len(data))


def write_zip(entries: list[ZipEntry], comment: bytes = b"") -> bytes:
    """A zip archive written field by field (no zip64), so that headers can lie."""
    out, directory = io.BytesIO(), io.BytesIO()
    for entry in entries:
        name = entry.name.encode()
        offset = out.tell()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, entry.flags, entry.method, 0,
                              0x2821, entry.crc, len(entry.raw), entry.size, len(name), 0))
        out.write(name + entry.raw)
        directory.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, entry.flags,
                                    entry.method, 0, 0x2821, entry.crc, len(entry.raw),
                                    entry.size, len(name), 0, 0, 0, 0, 0, offset))
        directory.write(name)
    start, table = out.tell(), directory.getvalue()
    out.write(table)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                          len(table), start, len(comment)) + comment)
    return out.getvalue()


def npy_header(shape: tuple, descr: str = "|u1") -> bytes:
    """The header of a version 1.0 ``.npy`` file (padded to 64 bytes, as numpy writes it)."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


_BOMB: list[tuple[bytes, int]] = []  # the compressed stream and its CRC, made once
BOMB_BYTES = 10 ** 9


def bomb_entry(name: str) -> ZipEntry:
    """A uint8 array of shape (1, 1000, 10^6): 10^9 zero bytes in a 1 MB deflate stream (a
    block compressed after a full flush repeats, as deflate starts afresh there)."""
    header = npy_header((1, 1000, BOMB_BYTES // 1000))
    if not _BOMB:
        chunk = bytes(1 << 20)
        count, rest = divmod(BOMB_BYTES, len(chunk))
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        head = packer.compress(header) + packer.flush(zlib.Z_FULL_FLUSH)
        block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
        tail = packer.compress(bytes(rest)) + packer.flush()
        crc = zlib.crc32(header)
        for _ in range(count):
            crc = zlib.crc32(chunk, crc)
        _BOMB.append((head + block * count + tail, zlib.crc32(bytes(rest), crc)))
    raw, crc = _BOMB[0]
    return ZipEntry(name, raw, zipfile.ZIP_DEFLATED, crc, len(header) + BOMB_BYTES)


class ModelFile:
    """An unmutated model file, taken apart for the mutations."""

    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data
        archive = zipfile.ZipFile(io.BytesIO(data))
        self.header = json.loads(archive.read("header.json"))
        self.arrays = {n: np.load(io.BytesIO(archive.read(n))) for n in archive.namelist()
                       if n.endswith(".npy")}
        self.infos = archive.infolist()

    def entries(self, header=None, arrays=None, text: bytes | None = None) -> list[ZipEntry]:
        header = self.header if header is None else header
        arrays = self.arrays if arrays is None else arrays
        text = json.dumps(header, indent=1, sort_keys=True).encode() if text is None else text
        return [zip_entry("header.json", text)] + [
            zip_entry(name, data if isinstance(data, bytes) else _npy(data))
            for name, data in sorted(arrays.items())]


def _paths(value, prefix=()) -> list[tuple]:
    """Every path (tuple of keys and indices) inside a JSON value, the value's own first."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _paths(item, prefix + (index,))
    return paths


def _replace(value, path: tuple, new):
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


# Values no header field may take (a name may be any string, so names only get the others).
_BAD_VALUES = [True, False, None, 1.0, 0.5, -1, 0, 2 ** 64, 10 ** 30, -(2 ** 63) - 1, [],
               {}, [1, [2]], "", "x", "uint５", "binary\n", "１"]


def _mutate_header(model: ModelFile, rng) -> tuple[str, bytes]:
    choice = rng.integers(8)
    paths = [p for p in _paths(model.header) if p]
    path = paths[rng.integers(len(paths))]
    if choice < 3:
        name = path[-1] if isinstance(path[-1], str) else ""
        pool = [v for v in _BAD_VALUES if not (name == "name" and isinstance(v, str))]
        value = pool[rng.integers(len(pool))]
        return f"header value {'/'.join(map(str, path))}={value!r}", write_zip(
            model.entries(_replace(model.header, path, value)))
    if choice == 3:
        parent = json.loads(json.dumps(model.header))
        target = parent
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return f"header delete {'/'.join(map(str, path))}", write_zip(model.entries(parent))
    if choice == 4:
        dicts = [p for p in _paths(model.header) if isinstance(_get(model.header, p), dict)]
        where = dicts[rng.integers(len(dicts))]
        extra = dict(_get(model.header, where), unknown_field=[1, 2])
        return "header unknown key", write_zip(model.entries(_replace(model.header, where, extra)))
    if choice == 5:
        depth = int(rng.choice([20, 40, 1000, 100_000]))
        text = json.dumps(_replace(model.header, path, "__deep__")).encode()
        text = text.replace(b'"__deep__"', b"[" * depth + b"]" * depth)
        return f"header nested {depth} deep", write_zip(model.entries(text=text))
    if choice == 6:
        text = json.dumps(model.header).encode()
        edits = [(b"1", b"NaN"), (b"1", b"Infinity"), (b"1", b"9" * 5000), (b"{", b"\xff{"),
                 (b"}", b"} trailing"), (b"{", b'{"format_version": 2, '),
                 (b'"format"', b'"format": "hwbnn", "format"')]
        old, new = edits[rng.integers(len(edits))]
        return f"header text {new[:12]!r}", write_zip(model.entries(text=text.replace(old, new, 1)))
    text = json.dumps(model.header, indent=int(rng.integers(0, 4)), sort_keys=False).encode()
    return "header reformatted", write_zip(model.entries(text=text))


def _get(value, path: tuple):
    for key in path:
        value = value[key]
    return value


def _mutate_array(model: ModelFile, rng) -> tuple[str, bytes]:
    names = sorted(model.arrays)
    name = names[rng.integers(len(names))]
    array = model.arrays[name]
    arrays = dict(model.arrays)
    choice = rng.integers(7)
    if choice == 0:
        dtype = rng.choice(["uint64", "int64", "int32", "uint8", "int8", "float64", "bool",
                            ">i8", "<u2"])
        arrays[name] = array.astype(dtype)
        return f"{name} as {dtype}", write_zip(model.entries(arrays=arrays))
    if choice == 1:
        extremes = {"uint64": 2 ** 64 - 1, "int64": 2 ** 63 - 1, "uint8": 255}
        dtype = rng.choice(list(extremes))
        arrays[name] = np.full(array.shape, extremes[dtype], dtype=dtype)
        if arrays[name].dtype == array.dtype and name.endswith("thresholds.npy"):
            arrays[name][0, 0] = np.iinfo(np.int64).min  # still sorted, out of every range
        return f"{name} filled with {dtype} maximum", write_zip(model.entries(arrays=arrays))
    if choice == 2:
        shapes = [(), (0,), array.shape + (1,), (array.size,), array.shape[::-1],
                  (0,) + array.shape[1:]]
        shape = shapes[rng.integers(len(shapes))]
        if shape == array.shape:
            shape = array.shape + (1,)
        arrays[name] = (np.resize(array, shape) if math.prod(shape) else
                        np.zeros(shape, array.dtype))
        return f"{name} reshaped to {shape}", write_zip(model.entries(arrays=arrays))
    if choice == 3:
        bad = array.copy()
        index = tuple(int(rng.integers(n)) for n in bad.shape)
        if name.endswith("thresholds.npy") and bad.shape[1] > 1:
            bad[index[0]] = bad[index[0]][::-1] - np.arange(bad.shape[1])  # unsorted
        else:
            bad[index] = {"planes.npy": 2, "bitwidth.npy": 4, "scales.npy": 0}.get(
                name.rsplit("/", 1)[1], np.iinfo(np.int64).max)
        arrays[name] = bad
        return f"{name} value out of range", write_zip(model.entries(arrays=arrays))
    if choice == 4:
        arrays[name] = _npy(np.asfortranarray(array)) if array.ndim > 1 else _npy(array)
        return f"{name} Fortran order", write_zip(model.entries(arrays=arrays))
    if choice == 5:
        arrays[name] = _npy(np.array([array], dtype=object), allow_pickle=True)
        return f"{name} pickled", write_zip(model.entries(arrays=arrays))
    data = _npy(array)
    edits = [(b"'descr': '", b"'descr': '>"), (b"'shape': (", b"'shape': (-1, "),
             (b"'fortran_order': False", b"'fortran_order': None"), (b"\x01\x00", b"\x02\x00"),
             (b"\x93NUMPY", b"\x93NUMPX")]
    old, new = edits[rng.integers(len(edits))]
    arrays[name] = data.replace(old, new, 1)
    return f"{name} npy header {new!r}", write_zip(model.entries(arrays=arrays))


def _mutate_zip(model: ModelFile, rng) -> tuple[str, bytes]:
    entries = model.entries()
    index = int(rng.integers(len(entries)))
    choice = rng.integers(9)
    if choice == 0:
        name = entries.pop(index).name
        return f"entry {name} missing", write_zip(entries)
    if choice == 1:
        entries.append(zip_entry("layers/99/unknown.npy", _npy(np.zeros(3))))
        return "unknown entry", write_zip(entries)
    if choice == 2:
        entries = [zip_entry(e.name, zlib.decompress(e.raw, -15), zipfile.ZIP_STORED)
                   for e in entries]
        return "stored, not deflated", write_zip(entries)
    if choice == 3:
        entry = entries[index]
        entries[index] = ZipEntry(entry.name, entry.raw, entry.method, entry.crc,
                                entry.size + int(rng.choice([-1, 1, 1000, 10 ** 9])))
        return f"entry {entry.name} size lies", write_zip(entries)
    if choice == 4:
        entries[index].crc ^= 1
        return f"entry {entries[index].name} CRC wrong", write_zip(entries)
    if choice == 5:
        entries[index].method = int(rng.choice([zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, 99]))
        return f"entry {entries[index].name} method {entries[index].method}", write_zip(entries)
    if choice == 6:
        entries[index].flags |= int(rng.choice([1, 1 << 5, 1 << 6]))
        return f"entry {entries[index].name} flags {entries[index].flags}", write_zip(entries)
    if choice == 7:
        planes = [i for i, e in enumerate(entries) if e.name.endswith("planes.npy")]
        target = planes[rng.integers(len(planes))]
        entries[target] = bomb_entry(entries[target].name)
        return f"zip bomb in {entries[target].name}", write_zip(entries)
    return "zip comment", write_zip(entries, comment=b"fuzz")


def _mutate_bytes(model: ModelFile, rng) -> tuple[str, bytes]:
    data = bytearray(model.data)
    choice = rng.integers(5)
    if choice == 0:
        offset = int(rng.integers(len(data)))
        data[offset] ^= 1 << int(rng.integers(8))
        return f"bit flip at {offset}", bytes(data)
    if choice == 1:
        info = model.infos[rng.integers(len(model.infos))]
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        offset = start + int(rng.integers(info.compress_size))
        data[offset] ^= 1 << int(rng.integers(8))
        return f"bit flip in {info.filename}", bytes(data)
    if choice == 2:
        cut = int(rng.integers(len(data)))
        return f"truncated at {cut}", bytes(data[:cut])
    if choice == 3:
        offset, count = int(rng.integers(len(data))), int(rng.integers(1, 64))
        return f"{count} bytes deleted at {offset}", bytes(data[:offset] + data[offset + count:])
    offset = int(rng.integers(len(data)))
    noise = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    return f"{len(noise)} bytes inserted at {offset}", bytes(data[:offset] + noise +
                                                            data[offset:])


def file_cases(count: int, seed: int) -> list[Case]:
    """``count`` mutated model files (after the references), each run by ``summary`` or,
    one in five, ``run``."""
    from ... import zoo

    models = [ModelFile(name, zoo.model_path(name).read_bytes()) for name in ZOO_FILES]
    commands = {"summary": ["summary", "model.hwbnn", "--json"],
                "run": ["run", "model.hwbnn", "--json"]}
    cases = [Case("file", "unmutated", argv, {"model.hwbnn": model.data},
                  key=f"{model.name} {command}", reference=True)
             for model in models for command, argv in commands.items()]
    mutators = [_mutate_bytes, _mutate_header, _mutate_header, _mutate_array, _mutate_array,
                _mutate_zip]
    rng = np.random.default_rng(seed)
    for number in range(count):
        model = models[rng.integers(len(models))]
        mutation, data = mutators[rng.integers(len(mutators))](model, rng)
        command = "run" if number % 5 == 4 else "summary"
        cases.append(Case("file", f"{model.name}: {mutation}", commands[command],
                          {"model.hwbnn": data}, key=f"{model.name} {command}"))
    return cases
