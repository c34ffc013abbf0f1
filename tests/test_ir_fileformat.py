"""Model file: round trip, reproducible bytes, and one clear error per kind of damage."""

import io
import json
import zipfile

import numpy as np
import pytest

from hwbnn import zoo
from hwbnn.errors import HwbnnError
from hwbnn.ir import fileformat
from hwbnn.ref import golden


@pytest.mark.parametrize("name", zoo.trained_names())
def test_round_trip_is_identical(name, tmp_path):
    original = zoo.model_path(name).read_bytes()
    net = fileformat.from_bytes(original)
    path = fileformat.save(net, tmp_path / "copy.hwbnn")
    assert path.read_bytes() == original
    again = fileformat.load(path)
    for a, b in zip(net.layers, again.layers, strict=True):
        assert a.kind == b.kind and a.name == b.name
        if a.kind != "maxpool":
            assert np.array_equal(a.weights.values(), b.weights.values())


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
