"""hwbnn: low-bit neural networks from PyTorch training to integer models and streaming hardware."""

__version__ = "0.1.0"
