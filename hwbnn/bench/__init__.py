"""Benchmarks: ``hwbnn bench cpu`` times the packed engine against golden and float32 torch.

This package may import torch (the float32 baseline lives here); nothing in ``ref``, ``hw``,
``cost`` or ``boards`` imports it.
"""
