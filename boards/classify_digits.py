"""Classify digits test images on a board running an hwbnn design, and compare with golden.

    hwbnn build zoo:digits_mlp_w1a1 --board icebreaker --out build/icebreaker
    hwbnn program build/icebreaker --board icebreaker
    python boards/classify_digits.py /dev/ttyUSB1 --count 100

The same :class:`hwbnn.boards.Client` drives the simulated board top in the tests
(``tests/test_boards_top.py``); only the transport differs.
"""

import argparse
import time

import numpy as np

from hwbnn import data, zoo
from hwbnn.boards import Client
from hwbnn.ref import golden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", help="serial port of the board, e.g. /dev/ttyUSB1 or COM3")
    parser.add_argument("--model", default="zoo:digits_mlp_w1a1",
                        help="the model the board was built with (for the golden labels)")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()

    net = zoo.load(args.model)
    digits = data.load("digits")
    images = digits.test_x[:args.count]
    with Client.serial(args.port, args.baud) as client:
        print(f"board: {client.info}")
        start = time.monotonic()
        labels = client.classify(images)
        seconds = time.monotonic() - start
    expected = golden.predict(net, images)
    print(f"{len(images)} images in {seconds:.2f} s ({len(images) / seconds:.0f} frames/s over "
          f"the UART); equal to golden: {int(np.sum(labels == expected))}/{len(images)}; "
          f"accuracy {100 * np.mean(labels == digits.test_y[:args.count]):.1f}%")


if __name__ == "__main__":
    main()
