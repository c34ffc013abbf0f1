"""Interchange with other tools of the quantized-network world (QONNX).

Torch-free like the IR: these modules read and write model files and ONNX graphs only.
"""
