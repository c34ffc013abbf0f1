"""The Larq Compute Engine peer of ``hwbnn bench cpu``: a standalone script for ``.venv-lce``.

LCE 0.16 needs TensorFlow 2.16 with numpy 1.x, which conflict with the project's pins, so this
script runs in a venv of its own (``make lce``) and imports only the standard library, numpy,
TensorFlow, larq and LCE, never hwbnn. :mod:`hwbnn.bench.lce` writes the network to its stdin
as JSON::

    {"input_shape": [H, W, C], "input_bits": 1 or 8,
     "layers": [{"kind": "conv", "channels": 64, "kernel": 3, "padding": 0,
                 "binary_input": true},
                {"kind": "maxpool", "kernel": 2},
                {"kind": "dense", "units": 1024, "binary_input": true}, ...],
     "batches": [1, 256], "threads": 1, "min_time": 1.0, "rounds": 3}

and reads one JSON object from its stdout: versions, the setup, and per batch the best and
median seconds of one invocation of the whole batch. Everything else (TensorFlow's and the
converter's chatter) goes to stderr.

The model is the usual larq BNN of that architecture: binary kernels (``ste_sign``), a
``ste_sign`` input quantizer where the layer reads binary activations, BatchNorm after every
weight layer but the last (LCE folds it into the binary convolution's output thresholds), and
a first layer on 8-bit pixels reading them as floats with a binary kernel, as LCE runs it.
Weights are random: the time of a binary layer does not depend on their values.

It runs in LCE's best x86 setup (measured for issue 19): dense layers become 1x1 binary
convolutions on a (1, 1, C) tensor, and the interpreter uses the optimized indirect BGEMM
kernels instead of its defaults, which on x86 are 5-6x slower (LCE's docs: off ARM it falls
back to reference kernels).
"""

import json
import os
import statistics
import sys
import time

# Before TensorFlow loads: quiet its C++ logging, and make ``tf.keras`` the Keras 2 of the
# tf-keras package, the one larq 0.13 builds its layers on (TF 2.16 defaults to Keras 3).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import larq as lq  # noqa: E402
import larq_compute_engine as lce  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from larq_compute_engine.tflite.python.interpreter import Interpreter  # noqa: E402

SETUP = ("dense layers as 1x1 binary convolutions; Interpreter(use_reference_bconv=False, "
         "use_indirect_bgemm=True)")
MIN_ROUNDS = 3


def binary_conv(filters: int, kernel: int, padding: int, binary_input: bool):
    """A larq convolution with a binary kernel: LCE's LceBconv2d where the input is binary,
    a float convolution with +-1 weights where it is not (the 8-bit first layer)."""
    if padding not in (0, kernel // 2) or (padding and kernel % 2 == 0):
        raise ValueError(f"padding {padding} of a {kernel}x{kernel} kernel is neither "
                         f"'valid' nor 'same'")
    # LCE pads binary inputs with +1 (bit 0), its fast path; the pad value does not change
    # the time, and float inputs pad with 0 as uint8 pixels do.
    return lq.layers.QuantConv2D(
        filters, kernel, padding="same" if padding else "valid",
        pad_values=1.0 if binary_input and padding else 0.0,
        input_quantizer="ste_sign" if binary_input else None,
        kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)


def build_model(spec: dict, batch: int):
    """The Keras model of ``spec`` with a fixed batch size (one converted model per batch, so
    one invocation runs the whole batch)."""
    inputs = tf.keras.Input(shape=tuple(spec["input_shape"]), batch_size=batch)
    x = inputs
    weighted = [i for i, layer in enumerate(spec["layers"]) if layer["kind"] != "maxpool"]
    for index, layer in enumerate(spec["layers"]):
        if layer["kind"] == "maxpool":
            x = tf.keras.layers.MaxPool2D(layer["kernel"])(x)
            continue
        if layer["kind"] == "conv":
            x = binary_conv(layer["channels"], layer["kernel"], layer["padding"],
                            layer["binary_input"])(x)
        elif layer["kind"] == "dense":
            # A dense layer as a 1x1 binary convolution on one pixel of C channels: LCE has no
            # binary dense op (a larq QuantDense runs as a float matmul; compute-engine #53).
            if tuple(x.shape[1:3]) != (1, 1):
                x = tf.keras.layers.Reshape((1, 1, x.shape[1] * x.shape[2] * x.shape[3]))(x)
            x = binary_conv(layer["units"], 1, 0, layer["binary_input"])(x)
        else:
            raise ValueError(f"layer kind must be conv, dense or maxpool, not {layer['kind']!r}")
        if index != weighted[-1]:
            x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Flatten()(x)
    return tf.keras.Model(inputs, x)


def random_frames(spec: dict, batch: int):
    """A batch of float32 frames: +-1 for binary inputs, integers 0..255 for 8-bit pixels."""
    rng = np.random.default_rng(2017)
    shape = (batch, *spec["input_shape"])
    if spec["input_bits"] == 1:
        return rng.choice(np.float32([-1, 1]), size=shape)
    return rng.integers(0, 2 ** spec["input_bits"], size=shape).astype(np.float32)


def time_batch(spec: dict, batch: int) -> dict:
    """Convert the model at ``batch``, then time whole-batch invocations: one warm-up, then
    repetitions until ``min_time`` seconds passed and at least ``rounds`` were made."""
    flatbuffer = lce.convert_keras_model(build_model(spec, batch))
    interpreter = Interpreter(flatbuffer, num_threads=spec["threads"],
                              use_reference_bconv=False, use_indirect_bgemm=True)
    # Interpreter.predict feeds one frame per invocation; its wrapper takes the whole batch.
    run = interpreter.interpreter.predict
    frames = [random_frames(spec, batch)]
    run(frames)
    seconds = []
    start = time.perf_counter()
    while len(seconds) < spec.get("rounds", MIN_ROUNDS) or (
            time.perf_counter() - start < spec["min_time"]):
        begin = time.perf_counter()
        run(frames)
        seconds.append(time.perf_counter() - begin)
    return {"batch": batch, "best_s": min(seconds), "median_s": statistics.median(seconds),
            "repetitions": len(seconds)}


def main() -> None:
    spec = json.load(sys.stdin)
    # Whatever the libraries print while building and converting goes to stderr; only the
    # result goes to the real stdout.
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    batches = [time_batch(spec, batch) for batch in spec["batches"]]
    json.dump({"lce_version": lce.__version__, "tensorflow_version": tf.__version__,
               "setup": SETUP, "batches": batches}, result_out)
    result_out.write("\n")
    result_out.close()


if __name__ == "__main__":
    main()
