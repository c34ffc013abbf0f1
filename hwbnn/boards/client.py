"""Host client of a board: one driver for a real board (serial port) and its simulation.

The client speaks :mod:`hwbnn.boards.protocol` over a *transport*: any object with
``write(data: bytes)``, ``read(count: int) -> bytes`` (fewer bytes, possibly none, when
nothing more arrives in time) and ``close()``. :class:`SerialTransport` wraps pyserial;
:class:`hwbnn.boards.simulation.SimulationTransport` wraps the simulated board top.
"""

from __future__ import annotations

import numpy as np

from ..errors import HwbnnError
from . import protocol


class SerialTransport:
    """A serial port through pyserial (8N1). ``port`` is a device (``/dev/ttyUSB1``,
    ``COM3``) or a pyserial URL (``socket://host:port``, ``loop://``)."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 2.0):
        try:
            import serial
        except ImportError:
            raise HwbnnError("the board client needs pyserial: pip install pyserial") from None
        try:
            self._serial = serial.serial_for_url(port, baud, timeout=timeout)
        except (serial.SerialException, ValueError) as error:
            raise HwbnnError(f"cannot open serial port {port}: {error}") from None
        self._serial.reset_input_buffer()

    def write(self, data: bytes) -> None:
        self._serial.write(data)
        self._serial.flush()

    def read(self, count: int) -> bytes:
        return self._serial.read(count)

    def close(self) -> None:
        self._serial.close()


class Client:
    """Classifies images on a board (or its simulation) through a byte transport.

    Parameters
    ----------
    transport
        ``write``/``read``/``close`` object (see the module docstring).

    Use :meth:`serial` for a board on a serial port. The first request asks the board for
    its :class:`~hwbnn.boards.protocol.DesignInfo` (input packing, classes, scores).
    """

    def __init__(self, transport):
        for method in ("write", "read", "close"):
            if not callable(getattr(transport, method, None)):
                raise HwbnnError(f"a transport needs a {method}() method, "
                                 f"{type(transport).__name__} has none")
        self._transport = transport
        self._info = None

    @classmethod
    def serial(cls, port: str, baud: int = 115200, timeout: float = 2.0) -> Client:
        return cls(SerialTransport(port, baud, timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._transport.close()

    @property
    def info(self) -> protocol.DesignInfo:
        """What the board reports about its design (asked once, then kept)."""
        if self._info is None:
            payload = self.request(protocol.CMD_INFO)
            self._info = protocol.DesignInfo.from_bytes(payload)
        return self._info

    def request(self, command: int, payload: bytes = b"") -> bytes:
        """Send one request; return the payload of its response (HwbnnError on any error)."""
        self._transport.write(protocol.encode_request(command, payload))
        frame = self._read_frame()
        if not frame.crc_ok:
            raise HwbnnError("the board's response has a bad checksum (noise on the line?)")
        if frame.kind != protocol.STATUS_OK:
            text = protocol.STATUS_TEXT.get(frame.kind, f"unknown status {frame.kind}")
            raise HwbnnError(f"board error: {text}")
        return frame.payload

    def _read_frame(self) -> protocol.Frame:
        decoder = protocol.FrameDecoder(protocol.RESPONSE_SYNC)
        while True:
            data = self._transport.read(decoder.missing)
            if not data:
                raise HwbnnError("no response from the board (is it programmed with an hwbnn "
                                 "design, and is the baud rate right?)")
            frames = decoder.feed(data)
            if frames:
                return frames[0]

    def classify(self, images, scores: bool = False):
        """Labels of ``images`` (N frames of the network's input shape), int64 array (N,).

        With ``scores=True`` returns ``(labels, scores)``, scores an int64 array
        ``(N, classes)``; the board must have been built with scores.
        """
        images = np.asarray(images)
        info = self.info
        if scores and not info.has_scores:
            raise HwbnnError("this board answers labels only; build it with --scores to read "
                             "scores")
        command = protocol.CMD_CLASSIFY_SCORES if scores else protocol.CMD_CLASSIFY
        labels, all_scores = [], []
        for image in images:
            response = self.request(command, protocol.classify_payload(image, info))
            label, values = protocol.parse_classify_response(response, info, scores)
            labels.append(label)
            all_scores.append(values)
        labels = np.array(labels, dtype=np.int64)
        if scores:
            return labels, np.array(all_scores, dtype=np.int64).reshape(len(images), info.classes)
        return labels

