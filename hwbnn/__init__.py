"""hwbnn: low-bit neural networks from PyTorch training to integer models and streaming hardware.

The Python API (docs/design.md, "Python API"): :func:`load` a model (``.hwbnn``, ``zoo:NAME``
or QONNX ``.onnx``, Brevitas' exports included) or :func:`convert` a plain torch BNN, as a
:class:`Model` that predicts, traces, costs and generates a :class:`Design`, which verifies,
synthesizes and builds; :func:`explore` searches per-layer precision under a hardware
budget.
"""

__version__ = "0.1.0"

from .api import Design, Model, convert, explore, load  # noqa: E402
from .errors import HwbnnError  # noqa: E402

__all__ = ["Design", "HwbnnError", "Model", "__version__", "convert", "explore", "load"]
