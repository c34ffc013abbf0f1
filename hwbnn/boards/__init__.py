"""Real FPGA boards: UART bridge to the network, board tops, bitstreams, host client.

:class:`~.client.Client` speaks the framing protocol of :mod:`.protocol` to a board over a
serial port, or to the simulated board top (:mod:`.simulation`) through the same methods.
Nothing here imports torch.
"""

from .client import Client

__all__ = ["Client"]
