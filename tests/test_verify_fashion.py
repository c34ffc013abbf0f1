"""The hardware on real data: the Fashion-MNIST SFC's generated Verilog, in the compiled
Verilator harness with random input gaps and output backpressure, over all 10,000 test images."""

from pathlib import Path

from hwbnn import data, zoo
from hwbnn.verify.design import generate_design
from hwbnn.verify.flow import verify

ROOT = Path(__file__).resolve().parents[1]


def test_sfc_verilog_is_bit_exact_on_the_whole_fashion_mnist_test_split(tmp_path):
    net = zoo.load("zoo:fmnist_sfc_w1a1")
    # 100,000 frames/s at 100 MHz: 1,000 cycles per frame, about 10 M cycles in all.
    design = generate_design(net, tmp_path / "rtl", target_fps=1e5)
    images = data.model_frames(net, "fashion-mnist")
    assert len(images) == 10_000
    report = verify(design, images, sim="verilator", gap=0.1, backpressure=0.2, seed=1,
                    work=tmp_path / "work", cache=ROOT / "build" / "sim" / "cache")
    assert report.passed, report.difference
    assert report.frames == 10_000
