"""Plain torch BNNs in: torch's ONNX export, then the QONNX importer (docs/design.md,
"Plain PyTorch in").

A BNN written with ``torch.nn`` alone (weights binarized by ``sign`` in forward, BatchNorm,
sign or hardtanh-then-sign activations with a straight-through estimator, max pooling) is
exported by torch's own (dynamo) ONNX exporter, which folds the weights' sign and eval-mode
BatchNorm into each Gemm/Conv as one float scale per output channel times -1/+1. The QONNX
importer reads that graph like any other: no second copy of threshold folding lives here.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

from ..errors import HwbnnError
from ..ir.network import NetworkIR
from .qonnx_import import import_qonnx


@contextlib.contextmanager
def _quiet():
    """torch's exporter logs and warns about things that do not concern the user (missing
    torchvision, deprecated pytree spellings); the library never prints."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(module, example_input):
    """``module`` in eval mode as an ONNX ``ModelProto`` (its training mode is restored)."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise HwbnnError(f"convert takes a torch.nn.Module, not {type(module).__name__}")
    if not isinstance(example_input, torch.Tensor):
        raise HwbnnError(f"example_input must be a torch.Tensor, not "
                         f"{type(example_input).__name__}")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's dynamo exporter writes through it)
    except ImportError:
        raise HwbnnError("converting a torch module needs 'onnx' and 'onnxscript': "
                         "pip install 'hwbnn[qonnx]'") from None
    training = module.training
    module.eval()
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(module, (example_input.float(),), None, dynamo=True,
                                        verbose=False)
    except Exception as error:  # torch raises many kinds; the first line says what failed
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(
            error).__name__
        raise HwbnnError(f"torch could not export the module to ONNX: {reason}") from None
    finally:
        module.train(training)
    return program.model_proto


def convert_module(module, example_input, *, input_encoding: str | None = None,
                   input_scale: float = 1.0, name: str | None = None) -> NetworkIR:
    """A validated NetworkIR from a plain torch module (see :func:`hwbnn.convert`)."""
    model = export_onnx(module, example_input)
    default = name or type(module).__name__
    net = import_qonnx(model, default, input_encoding=input_encoding, input_scale=input_scale)
    net.metadata = {**net.metadata, "imported_from": "torch", "module": type(module).__name__}
    return net
