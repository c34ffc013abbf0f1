"""The Larq Compute Engine peer of ``hwbnn bench cpu``: the same network, timed by LCE.

LCE 0.16 needs TensorFlow 2.16, numpy 1.x and protobuf 4, which conflict with the project's
pins, so it lives in a venv of its own, ``.venv-lce`` at the repository root (``make lce``).
This module describes a NetworkIR chain as a JSON spec (:func:`lce_spec`) and runs the
standalone script :mod:`hwbnn.bench.lce_peer` in that venv on it (:func:`run_lce`); the script
builds the larq model of the same architecture with random binary weights, converts it with
LCE and times it in LCE's best x86 setup (see the script's docstring).

LCE runs binary weights with binary activations (and a first layer reading integer pixels as
floats), so only such networks have a peer: ternary or multi-bit weights and non-binary hidden
activations would run as float layers there, a different network.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ..errors import HwbnnError
from ..ir.encoding import encoding_bits
from ..ir.network import MatVec, MaxPool, NetworkIR

REPOSITORY = Path(__file__).resolve().parents[2]
LCE_VENV = REPOSITORY / ".venv-lce"
PEER_SCRIPT = Path(__file__).with_name("lce_peer.py")
CONSUMER = "the LCE peer"
# Importing TensorFlow and converting one model per batch take seconds; CNV at batch 256 takes
# about a second per invocation on one thread. Ten minutes is far beyond any sane run.
TIMEOUT_S = 600.0


def lce_spec(net: NetworkIR) -> dict:
    """The peer's description of ``net``: input shape and bits, and one entry per layer.

    Raises HwbnnError for what LCE cannot run as the same binary network: anything beyond a
    chain, weights other than binary, a layer past the first reading non-binary activations,
    and conv padding other than none or "same" (the only two Keras convolutions have).
    """
    net.require_chain(CONSUMER)
    layers = []
    first = True
    for layer in net.layers:
        if isinstance(layer, MaxPool):
            layers.append({"kind": "maxpool", "kernel": layer.kernel})
            continue
        where = f"(layer {layer.name!r})"
        if layer.weights.kind != "binary":
            raise HwbnnError(f"{CONSUMER} supports binary weights only, not "
                             f"{layer.weights.kind} {where}")
        binary_input = layer.in_encoding == "binary"
        if not (binary_input or first):
            raise HwbnnError(f"{CONSUMER} supports binary hidden activations only, not "
                             f"{layer.in_encoding} {where}")
        first = False
        if isinstance(layer, MatVec):
            layers.append({"kind": "dense", "units": layer.mh, "binary_input": binary_input})
            continue
        # a Conv: Keras convolutions pad nothing ("valid") or kernel // 2 ("same")
        if layer.padding and (layer.kernel % 2 == 0 or layer.padding != layer.kernel // 2):
            raise HwbnnError(f"{CONSUMER} supports conv padding 0 or {layer.kernel // 2} "
                             f"('same') only, not {layer.padding} {where}")
        layers.append({"kind": "conv", "channels": layer.mh, "kernel": layer.kernel,
                       "padding": layer.padding, "binary_input": binary_input})
    shape = tuple(net.input_shape)
    return {"input_shape": list(shape if len(shape) == 3 else (1, 1, *shape)),
            "input_bits": encoding_bits(net.input_encoding), "layers": layers}


def check_venv(venv: Path | None = None) -> Path:
    """The LCE venv's python (``venv`` defaults to :data:`LCE_VENV`), else HwbnnError."""
    python = (LCE_VENV if venv is None else Path(venv)) / "bin" / "python"
    if not python.exists():
        raise HwbnnError(f"{CONSUMER} needs its own venv: run `make lce`")
    return python


def run_lce(net: NetworkIR, batches: list[int], threads: int = 1, min_time: float = 1.0, *,
            rounds: int = 3, venv: Path | None = None, timeout: float = TIMEOUT_S) -> dict:
    """Time ``net`` in Larq Compute Engine, one batch size after another.

    Returns the peer's result: ``lce_version``, ``tensorflow_version``, ``setup`` and per
    batch ``batch``, ``best_s``, ``median_s`` (seconds of one invocation on the whole batch)
    and ``repetitions`` (at least ``rounds``, and as many as ``min_time`` seconds allow).
    ``venv`` defaults to :data:`LCE_VENV`. Raises HwbnnError with one line: the venv is
    missing, or the peer failed (its last stderr line) or ran past ``timeout`` seconds.
    """
    if not batches or not all(isinstance(b, int) and b >= 1 for b in batches):
        raise HwbnnError(f"batches must be positive integers, not {batches!r}")
    if not isinstance(threads, int) or threads < 1:
        raise HwbnnError(f"threads must be a positive integer, not {threads!r}")
    spec = {**lce_spec(net), "batches": list(batches), "threads": threads,
            "min_time": min_time, "rounds": rounds}
    python = check_venv(venv)
    try:
        done = subprocess.run([str(python), str(PEER_SCRIPT)], input=json.dumps(spec),
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise HwbnnError(f"{CONSUMER} did not finish in {timeout:g} s") from error
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise HwbnnError(lines[-1] if lines else
                         f"{CONSUMER} failed with exit code {done.returncode}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise HwbnnError(f"{CONSUMER} printed no JSON result: {done.stdout[:80]!r}") from error
