"""The board top in simulation, driven through its UART pins by the host client."""

import numpy as np
import pytest

from hwbnn import zoo
from hwbnn.boards import Client, protocol
from hwbnn.boards.build import selftest_data
from hwbnn.boards.client import SerialTransport
from hwbnn.boards.simulation import SimulationTransport
from hwbnn.boards.top import BoardTop, NetworkCore, network_core
from hwbnn.errors import HwbnnError
from hwbnn.ref import golden

DIVISOR = 4  # the fastest UART the receiver allows: keeps the simulation short

# Folding of zoo:digits_mlp_w1a1 for the simulation: compute hides behind the UART.
MLP_FOLDING = {"dense0": {"pe": 4, "simd": 8}, "dense1": {"pe": 4, "simd": 8},
               "dense2": {"pe": 2, "simd": 8}}


def tiny_inputs(count, seed=0):
    return np.random.default_rng(seed).integers(0, 4, size=(count, 4))


def test_client_classifies_10_digits_like_golden(digits):
    """Acceptance: the client, through the simulated UART pins, gives the golden labels."""
    net = zoo.load("zoo:digits_mlp_w1a1")
    images = digits.test_x[:10]
    transport = SimulationTransport(BoardTop(network_core(net, MLP_FOLDING), DIVISOR))
    with Client(transport) as client:
        labels = client.classify(images)
        np.testing.assert_array_equal(labels, golden.predict(net, images))
        assert transport.outputs["label"] == labels[-1]
        assert transport.outputs["passed"] == transport.outputs["failed"] == 0


def test_scores_mode_gives_golden_scores_and_labels(tiny_net):
    x = tiny_inputs(6, seed=1)
    core = network_core(tiny_net, scores=True)
    with Client(SimulationTransport(BoardTop(core, DIVISOR))) as client:
        assert client.info == core.info
        labels, scores = client.classify(x, scores=True)
        np.testing.assert_array_equal(scores, golden.scores(tiny_net, x))
        np.testing.assert_array_equal(labels, golden.predict(tiny_net, x))
        np.testing.assert_array_equal(client.classify(x[:2]), golden.predict(tiny_net, x[:2]))


def test_protocol_errors_then_recovery(tiny_net):
    core = network_core(tiny_net)
    transport = SimulationTransport(BoardTop(core, DIVISOR))
    client = Client(transport)
    payload = protocol.classify_payload(np.array([1, 2, 3, 0]), client.info)
    bad_crc = bytearray(protocol.encode_request(protocol.CMD_CLASSIFY, payload))
    bad_crc[-1] ^= 0xFF
    frames = [
        bytes(bad_crc),
        protocol.encode_request(protocol.CMD_CLASSIFY, payload + b"\x00"),
        protocol.encode_request(0x7E),
        protocol.encode_request(protocol.CMD_CLASSIFY_SCORES, payload),
    ]
    expected = [protocol.STATUS_BAD_CRC, protocol.STATUS_BAD_LENGTH,
                protocol.STATUS_BAD_COMMAND, protocol.STATUS_BAD_COMMAND]
    for frame, status in zip(frames, expected, strict=True):
        transport.write(b"\x00\x13" + frame)  # noise before the frame is skipped
        (reply,) = protocol.FrameDecoder(protocol.RESPONSE_SYNC).feed(transport.read(5))
        assert (reply.kind, reply.payload, reply.crc_ok) == (status, b"", True)
    x = tiny_inputs(3, seed=2)
    np.testing.assert_array_equal(client.classify(x), golden.predict(tiny_net, x))
    with pytest.raises(HwbnnError, match="labels only; build it with --scores"):
        client.classify(x, scores=True)
    client.close()


@pytest.mark.parametrize("wrong", [False, True])
def test_selftest_lights_pass_or_fail(digits, wrong):
    """The board's self-test ROM: 10 digits frames through the real network, no host."""
    net = zoo.load("zoo:digits_mlp_w1a1")
    core = network_core(net)
    frames, labels = selftest_data(net, core, 10)
    assert labels == golden.predict(net, digits.test_x[:10]).tolist()
    if wrong:
        labels[4] = (labels[4] + 1) % net.num_classes
    top = BoardTop(core, DIVISOR, selftest=(frames, labels))
    transport = SimulationTransport(top)
    transport.run(10 * core.cycles_per_frame + 2000)
    assert transport.outputs["passed"] == (not wrong)
    assert transport.outputs["failed"] == wrong
    assert top.selftest_frames == 10
    # After the self-test the host has the network.
    with Client(transport) as client:
        images = digits.test_x[20:22]
        np.testing.assert_array_equal(client.classify(images), golden.predict(net, images))


def test_no_response_is_a_clear_error(tiny_net):
    class Silent:
        def write(self, data):
            pass

        def read(self, count):
            return b""

        def close(self):
            pass

    with pytest.raises(HwbnnError, match="no response from the board"):
        Client(Silent()).classify(tiny_inputs(1))


@pytest.mark.parametrize("call, message", [
    (lambda net: Client(object()), "a transport needs a write"),
    (lambda net: BoardTop("core", DIVISOR), "core must be a NetworkCore"),
    (lambda net: BoardTop(network_core(net), 2), "UART divisor must be an integer"),
    (lambda net: NetworkCore(network_core(net).component, network_core(net).info, "x"),
     "no port 'x'"),
    (lambda net: SimulationTransport("top"), "top must be a BoardTop")])
def test_errors(tiny_net, call, message):
    with pytest.raises(HwbnnError, match=message):
        call(tiny_net)


def test_serial_transport_through_pyserial_loopback():
    transport = SerialTransport("loop://", timeout=0.05)
    transport.write(b"\xa5\x01")
    assert transport.read(2) == b"\xa5\x01"
    assert transport.read(1) == b""
    # The loop echoes the request, which is no response frame: a clear error, not a hang.
    with Client(transport) as client, pytest.raises(HwbnnError, match="no response"):
        client.request(protocol.CMD_INFO)


def test_serial_port_that_does_not_exist():
    with pytest.raises(HwbnnError, match="cannot open serial port /dev/hwbnn-none"):
        Client.serial("/dev/hwbnn-none")
