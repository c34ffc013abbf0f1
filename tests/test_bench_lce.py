"""The LCE peer's host side: specs of the synthetic models and the subprocess protocol.

None of these needs ``.venv-lce`` (CI has none): the peer is replaced by small shell scripts
standing in for its Python.
"""

import json
import re
import stat

import pytest

from hwbnn.bench.lce import lce_spec, run_lce
from hwbnn.errors import HwbnnError
from hwbnn.zoo.synthetic import SYNTHETIC


@pytest.fixture(scope="module")
def lfc():
    return SYNTHETIC["lfc_w1a1"]()


@pytest.fixture(scope="module")
def cnv():
    return SYNTHETIC["cnv_w1a1"]()


def dense(units, binary_input=True):
    return {"kind": "dense", "units": units, "binary_input": binary_input}


def conv(channels, binary_input=True):
    return {"kind": "conv", "channels": channels, "kernel": 3, "padding": 0,
            "binary_input": binary_input}


MAXPOOL = {"kind": "maxpool", "kernel": 2}


def test_spec_of_lfc(lfc):
    assert lce_spec(lfc) == {"input_shape": [28, 28, 1], "input_bits": 1,
                             "layers": [dense(1024), dense(1024), dense(1024), dense(10)]}


def test_spec_of_cnv(cnv):
    # the first layer reads 8-bit pixels; every later layer binary activations
    assert lce_spec(cnv) == {
        "input_shape": [32, 32, 3], "input_bits": 8,
        "layers": [conv(64, binary_input=False), conv(64), MAXPOOL, conv(128), conv(128),
                   MAXPOOL, conv(256), conv(256), dense(512), dense(512), dense(10)]}


def test_spec_of_flat_input(tiny_net):
    # (features,) inputs become one pixel of that many channels; uint2 pixels are 2 bits
    spec = lce_spec(tiny_net)
    assert spec["input_shape"] == [1, 1, 4] and spec["input_bits"] == 2
    assert spec["layers"] == [dense(3, binary_input=False), dense(2)]


@pytest.mark.parametrize("name, message", [
    ("lfc_ternary", "the LCE peer supports binary weights only, not ternary (layer 'dense0')"),
    ("lfc_mix14", "the LCE peer supports binary weights only, not residual (layer 'dense0')"),
])
def test_spec_refuses_what_lce_runs_as_another_network(name, message):
    with pytest.raises(HwbnnError, match=f"^{re.escape(message)}$"):
        lce_spec(SYNTHETIC[name]())


def test_missing_venv_is_one_line(lfc, tmp_path):
    with pytest.raises(HwbnnError) as error:
        run_lce(lfc, [1], venv=tmp_path / "missing")
    assert str(error.value) == "the LCE peer needs its own venv: run `make lce`"


def fake_venv(tmp_path, script):
    """A folder whose bin/python is the shell ``script`` instead of an interpreter."""
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text("#!/bin/sh\n" + script)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def test_peer_receives_spec_and_returns_its_json(lfc, tmp_path):
    result = {"lce_version": "0.16.0", "batches": [{"batch": 1, "best_s": 0.001}]}
    venv = fake_venv(tmp_path, f"cat > {tmp_path}/spec.json\necho '{json.dumps(result)}'\n")
    assert run_lce(lfc, [1, 256], threads=2, min_time=0.5, venv=venv) == result
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert spec == {**lce_spec(lfc), "batches": [1, 256], "threads": 2, "min_time": 0.5,
                    "rounds": 3}


def test_peer_failure_is_its_last_stderr_line(lfc, tmp_path):
    venv = fake_venv(tmp_path, "echo 'Traceback' >&2\necho 'ValueError: no kernel' >&2\n"
                               "exit 1\n")
    with pytest.raises(HwbnnError, match=r"^ValueError: no kernel$"):
        run_lce(lfc, [1], venv=venv)


def test_peer_timeout(lfc, tmp_path):
    venv = fake_venv(tmp_path, "exec sleep 5\n")
    with pytest.raises(HwbnnError, match=r"^the LCE peer did not finish in 0.2 s$"):
        run_lce(lfc, [1], venv=venv, timeout=0.2)
