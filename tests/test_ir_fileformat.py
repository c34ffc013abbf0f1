"""Model file: round trip, reproducible bytes, and one clear error per kind of damage."""

import io
import json
import zipfile
import zlib

import numpy as np
import pytest

from hwbnn import zoo
from hwbnn.bench import fuzz
from hwbnn.errors import HwbnnError
from hwbnn.ir import fileformat, to_bytes
from hwbnn.ir.encoding import validate_encoding
from hwbnn.ref import golden


@pytest.mark.parametrize("name", zoo.trained_names())
def test_round_trip_is_identical(name, tmp_path):
    original = zoo.model_path(name).read_bytes()
    net = fileformat.from_bytes(original)
    path = fileformat.save(net, tmp_path / "copy.hwbnn")
    assert path.read_bytes() == original
    again = fileformat.load(path)
    for a, b in zip(net.layers, again.layers, strict=True):
        assert a.kind == b.kind and a.name == b.name and a.inputs == b.inputs
        if hasattr(a, "weights"):
            assert np.array_equal(a.weights.values(), b.weights.values())
        if getattr(a, "thresholds", None) is not None:  # weight, add and threshold layers
            assert np.array_equal(a.thresholds, b.thresholds)


def _rewrite(data: bytes, edit) -> bytes:
    """Apply ``edit(header, arrays)`` to a model file's content and zip it again."""
    source = zipfile.ZipFile(io.BytesIO(data))
    header = json.loads(source.read("header.json"))
    arrays = {n: np.load(io.BytesIO(source.read(n)))
              for n in source.namelist() if n.endswith(".npy")}
    edit(header, arrays)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr("header.json", json.dumps(header))
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            target.writestr(name, buffer.getvalue())
    return out.getvalue()


@pytest.fixture
def w1a1_bytes():
    return zoo.model_path("digits_mlp_w1a1").read_bytes()


@pytest.fixture
def mix_bytes():
    return zoo.model_path("digits_mlp_mix14").read_bytes()


def test_truncated_file(w1a1_bytes):
    with pytest.raises(HwbnnError, match="not a hwbnn model file or truncated"):
        fileformat.from_bytes(w1a1_bytes[: len(w1a1_bytes) // 2])


def test_foreign_file():
    with pytest.raises(HwbnnError, match="not a hwbnn model file"):
        fileformat.from_bytes(b"PK\x03\x04 definitely not a zip")


def test_both_format_versions_are_read():
    assert fileformat.FORMAT_VERSIONS == (1, 2)


def test_wrong_format_version(w1a1_bytes):
    data = _rewrite(w1a1_bytes, lambda h, a: h.update(format_version=99))
    with pytest.raises(HwbnnError, match="format_version 99 is not supported"):
        fileformat.from_bytes(data)


def test_unsorted_thresholds(w1a1_bytes):
    def edit(header, arrays):
        thresholds = arrays["layers/0/thresholds.npy"]
        header["layers"][0]["out_encoding"] = "uint2"
        arrays["layers/0/thresholds.npy"] = np.concatenate(
            [thresholds + 2, thresholds + 1, thresholds], axis=1)

    with pytest.raises(HwbnnError, match="layer 0 .*thresholds of channel 0 are not sorted"):
        fileformat.from_bytes(_rewrite(w1a1_bytes, edit))


def test_bitwidth_four(mix_bytes):
    def edit(header, arrays):
        arrays["layers/0/bitwidth.npy"][0, 0] = 4

    with pytest.raises(HwbnnError, match="bitwidth must be 1, 2 or 3, found 4"):
        fileformat.from_bytes(_rewrite(mix_bytes, edit))


def test_shape_mismatch(w1a1_bytes):
    def edit(header, arrays):
        arrays["layers/1/planes.npy"] = arrays["layers/1/planes.npy"][:, :, :-1]

    with pytest.raises(HwbnnError, match="layer 1 .*expects 31 inputs but the previous layer"):
        fileformat.from_bytes(_rewrite(w1a1_bytes, edit))


def test_wrong_accumulator_width(w1a1_bytes):
    data = _rewrite(w1a1_bytes, lambda h, a: h["layers"][0].update(acc_width=3))
    with pytest.raises(HwbnnError, match="acc_width is 3"):
        fileformat.from_bytes(data)


def test_missing_field(w1a1_bytes):
    data = _rewrite(w1a1_bytes, lambda h, a: h["layers"][2].pop("in_encoding"))
    with pytest.raises(HwbnnError, match="layer 2: field 'in_encoding' is missing"):
        fileformat.from_bytes(data)


def test_folding_must_divide(w1a1_bytes):
    data = _rewrite(w1a1_bytes, lambda h, a: h["layers"][0].update(pe=5))
    with pytest.raises(HwbnnError, match="pe=5 must divide 32"):
        fileformat.from_bytes(data)


def test_failed_save_leaves_nothing(tmp_path, tiny_net):
    tiny_net.layers[0].acc_width = 1
    with pytest.raises(HwbnnError):
        fileformat.save(tiny_net, tmp_path / "bad.hwbnn")
    assert list(tmp_path.iterdir()) == []


def test_saved_model_runs_the_same(tmp_path, tiny_net):
    path = fileformat.save(tiny_net, tmp_path / "tiny.hwbnn")
    x = np.array([[0, 1, 2, 3], [3, 3, 0, 1]])
    assert np.array_equal(golden.scores(fileformat.load(path), x), golden.scores(tiny_net, x))


# --- issue 17: bad files end in one HwbnnError, never a traceback, hang or wrong network ----


def _compressed_span(data: bytes, name: str) -> range:
    """Offsets of an entry's compressed bytes inside a zip."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    return range(start, start + info.compress_size)


def test_flipped_bit_in_compressed_array(w1a1_bytes):
    """1: a flipped bit in an array's deflate stream: a bad CRC or a zlib error, unless the
    bit is padding after the stream's end (then the network is the same)."""
    span = _compressed_span(w1a1_bytes, "layers/0/planes.npy")
    original = to_bytes(fileformat.from_bytes(w1a1_bytes))
    refused = 0
    for offset in span[::3]:
        for bit in (0, 5):
            data = bytearray(w1a1_bytes)
            data[offset] ^= 1 << bit
            try:
                assert to_bytes(fileformat.from_bytes(bytes(data))) == original
            except HwbnnError as error:
                assert "layer 0: array 'planes' is unreadable" in str(error)
                refused += 1
    assert refused > 0.9 * 2 * len(span[::3])  # most flips break the stream


@pytest.mark.parametrize("shape", [(), (0,), (0, 32, 64), (1, 0, 64)])
def test_empty_or_scalar_planes(w1a1_bytes, shape):
    """2: planes that are empty or 0-d are refused before their shape is used."""
    data = _rewrite(w1a1_bytes, lambda h, a: a.update(
        {"layers/0/planes.npy": np.zeros(shape, np.uint8)}))
    with pytest.raises(HwbnnError, match="layer 0.*planes"):
        fileformat.from_bytes(data)


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_header(w1a1_bytes, depth):
    """3: header.json nested deeper than any reader handles."""
    source = zipfile.ZipFile(io.BytesIO(w1a1_bytes))
    header = json.loads(source.read("header.json"))
    header["metadata"] = "__deep__"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        text = json.dumps(header).replace('"__deep__"', "[" * depth + "]" * depth)
        target.writestr("header.json", text)
        for name in source.namelist()[1:]:
            target.writestr(name, source.read(name))
    with pytest.raises(HwbnnError, match="header.json is nested deeper than 32 levels"):
        fileformat.from_bytes(out.getvalue())


def test_zip_bomb_is_refused_before_it_inflates(w1a1_bytes):
    """4: a 1 MB file whose planes inflate to 10^9 bytes, in a process limited in time and
    memory: refused from the sizes alone."""
    model = fuzz.ModelFile("w1a1", w1a1_bytes)
    entries = model.entries()
    index = [entry.name for entry in entries].index("layers/0/planes.npy")
    entries[index] = fuzz.bomb_entry("layers/0/planes.npy")
    bomb = fuzz.write_zip(entries)
    assert len(bomb) < 2 ** 20 + 2 ** 16
    case = fuzz.Case("file", "bomb", ["summary", "bomb.hwbnn"], {"bomb.hwbnn": bomb})
    [(_, result)] = fuzz.run_cases([case], timeout=30)
    assert result.outcome == "clean error", result
    assert "array 'planes' is larger than any layer can be" in result.stderr
    assert result.seconds < 5 and result.maxrss < fuzz.MEMORY_BYTES


def test_zip_size_that_lies_inflates_no_further(w1a1_bytes):
    """4: a directory that understates an entry's size: the reader stops at the stated size
    (and the CRC fails) instead of inflating all 10^9 bytes."""
    model = fuzz.ModelFile("w1a1", w1a1_bytes)
    entries = model.entries()
    index = [entry.name for entry in entries].index("layers/0/planes.npy")
    bomb = fuzz.bomb_entry("layers/0/planes.npy")
    header = fuzz.npy_header((1, 32, 64))
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = raw.compress(header) + raw.flush(zlib.Z_FULL_FLUSH) + bomb.raw[-(2 ** 19):]
    entries[index] = fuzz.ZipEntry(bomb.name, stream, zipfile.ZIP_DEFLATED, 0,
                                 len(header) + 32 * 64)
    with pytest.raises(HwbnnError, match="array 'planes' is unreadable"):
        fileformat.from_bytes(fuzz.write_zip(entries))


def test_thresholds_must_be_int64_exactly(w1a1_bytes):
    """5: uint64 2^64-1 thresholds once wrapped to -1."""
    data = _rewrite(w1a1_bytes, lambda h, a: a.update({"layers/0/thresholds.npy": np.full(
        (32, 1), 2 ** 64 - 1, np.uint64)}))
    with pytest.raises(HwbnnError, match="array 'thresholds' must have dtype int64, not uint64"):
        fileformat.from_bytes(data)


@pytest.mark.parametrize("shape", [[-8, -8, 1], [0, 64, 1], [8, 8], []])
def test_input_shape_must_be_positive(w1a1_bytes, shape):
    """6: [-8, -8, 1] has the product 64 too."""
    data = _rewrite(w1a1_bytes, lambda h, a: h.update(input_shape=shape))
    with pytest.raises(HwbnnError, match="input_shape must be"):
        fileformat.from_bytes(data)


@pytest.mark.parametrize("edit, message", [
    (lambda h: h.update(format_version=True), "format_version True is not supported"),
    (lambda h: h.update(format_version=1.0), "format_version 1.0 is not supported"),
    (lambda h: h["layers"][0].update(pe=True), "layer 0: field 'pe' must be an integer"),
    (lambda h: h["layers"][1].update(simd=True), "layer 1: field 'simd' must be an integer"),
    (lambda h: h.update(input_encoding="uint５"), "input_encoding must be 'binary'"),
    (lambda h: h["layers"][2].update(in_encoding="uint５"), "layer 2.*in_encoding"),
    (lambda h: h["layers"][0].update(acc_width=True), "field 'acc_width' has the wrong type"),
])
def test_strict_header_types(w1a1_bytes, edit, message):
    """7: a bool is not an int, 1.0 is not a version, only ASCII digits name an encoding."""
    with pytest.raises(HwbnnError, match=message):
        fileformat.from_bytes(_rewrite(w1a1_bytes, lambda h, a: edit(h)))


def test_strict_encoding_names():
    for name in ("uint５", "uint05", "uint 5", "Binary", "uint9", 5, None):
        with pytest.raises(HwbnnError):
            validate_encoding(name)
    assert [validate_encoding(f"uint{b}") for b in range(2, 9)] == [f"uint{b}"
                                                                     for b in range(2, 9)]
