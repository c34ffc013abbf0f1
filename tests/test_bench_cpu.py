"""``hwbnn bench cpu``: figures consistent with each other and the model (no timing asserts)."""

import json

import numpy as np
import pytest
import torch

from hwbnn import cli, zoo
from hwbnn.bench import cpu
from hwbnn.bench.baseline import float_input, float_model
from hwbnn.ref import packed


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def mlp():
    return zoo.load("zoo:digits_mlp_w1a1")


def test_json_figures_are_consistent(capsys, mlp):
    code, out, _ = run_cli(capsys, "bench", "cpu", "zoo:digits_mlp_w1a1", "--batch", "1,3",
                           "--min-time", "0", "--golden-frames", "2", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["threads"] == 1 and result["cpu_clock_mhz"] > 100
    assert result["ceiling_macs_per_s"] > 1e9
    # 64-32-32-10, fan-ins 64 and 32 fit one word: (32 + 32 + 10) rows x 8 bytes
    assert result["float32_weight_bytes"] == 4 * (64 * 32 + 32 * 32 + 32 * 10)
    assert result["packed_weight_bytes"] == (32 + 32 + 10) * 8
    # uint5 pixels: 5 bit planes meet the first layer's weights
    assert result["bit_macs_per_frame"] == 5 * 64 * 32 + 32 * 32 + 32 * 10
    assert [row["batch"] for row in result["batches"]] == [1, 3]
    for row in result["batches"]:
        batch = row["batch"]
        assert row["exact"] is True
        assert row["golden"]["frames_timed"] == min(batch, 2)
        for name in cpu.ENGINES:
            figures = row[name]
            assert figures["repetitions"] >= 1
            assert figures["latency_s"] > 0
            assert figures["measured_frames_per_s"] * figures["latency_s"] == pytest.approx(
                batch)
        for name in ("onnxruntime", "torch"):
            assert row[name]["repetitions"] >= 3
            assert row[f"packed_over_{name}"] == pytest.approx(
                row["packed"]["measured_frames_per_s"] / row[name]["measured_frames_per_s"])
        assert row["packed"]["repetitions"] >= 3
        assert row["packed_macs_per_s"] == pytest.approx(
            result["bit_macs_per_frame"] * row["packed"]["measured_frames_per_s"])
        assert row["ceiling_fraction"] == pytest.approx(
            row["packed_macs_per_s"] / result["ceiling_macs_per_s"])


def test_text_report_names_every_engine(capsys):
    code, out, _ = run_cli(capsys, "bench", "cpu", "zoo:digits_cnn_w1a1", "--batch", "2",
                           "--min-time", "0", "--golden-frames", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("hwbnn bench cpu zoo:digits_cnn_w1a1: 1 thread")
    assert "weights: float32 85,120 B, packed" in out
    for engine in cpu.ENGINES:
        assert any(line.split()[:2] == ["2", engine] for line in lines), engine
    assert "(timed on 1 frames)" in out
    assert "packed == golden: yes" in out


def test_multithreaded_bench_runs(capsys):
    threads = packed.max_threads()
    code, out, _ = run_cli(capsys, "bench", "cpu", "zoo:digits_mlp_ternary", "--batch", "4",
                           "--min-time", "0", "--threads", str(threads), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["threads"] == threads and result["batches"][0]["exact"] is True


def test_relative_time_and_one_thread_come_from_the_same_run(capsys):
    """--relative-to times the other model's packed engine in the same rounds; more than one
    thread adds the packed engine on one thread (the acceptance ratios of the CPU issue)."""
    threads = packed.max_threads()
    code, out, _ = run_cli(capsys, "bench", "cpu", "zoo:digits_mlp_ternary", "--batch", "4",
                           "--min-time", "0", "--threads", str(threads), "--relative-to",
                           "zoo:digits_mlp_w1a1", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["relative_to"] == "digits_mlp_w1a1"
    row = result["batches"][0]
    assert row["reference"]["repetitions"] >= 3
    assert row["time_over_reference"] == pytest.approx(
        row["packed"]["latency_s"] / row["reference"]["latency_s"])
    assert ("threads_speedup" in row) == (threads > 1)
    assert ("ceiling_threads_speedup" in result) == (threads > 1)
    if threads > 1:
        assert row["threads_speedup"] == pytest.approx(
            row["packed_1_thread"]["latency_s"] / row["packed"]["latency_s"])
        assert result["ceiling_threads_speedup"] == pytest.approx(
            result["ceiling_macs_per_s"] / result["ceiling_1_thread_macs_per_s"])
        assert result["ceiling_1_thread_macs_per_s"] > 1e9
    report = cpu.format_report(result, "zoo:digits_mlp_ternary")
    if threads > 1:
        assert f"the ceiling loop: {result['ceiling_threads_speedup']:.2f}x" in report
    assert "x the time of digits_mlp_w1a1 packed" in report


@pytest.mark.parametrize("argv,message", [
    (["zoo:no_such_model"], "no zoo model"),
    (["zoo:digits_mlp_w1a1", "--relative-to", "zoo:no_such_model"], "no zoo model"),
    (["zoo:digits_mlp_w1a1", "--threads", "0"], "--threads: must be a positive integer"),
    (["zoo:digits_mlp_w1a1", "--batch", "0"], "batch"),
    (["zoo:digits_mlp_w1a1", "--batch", "x"], "batch"),
    (["zoo:digits_mlp_w1a1", "--golden-frames", "0"], "--golden-frames: must be"),
])
def test_bad_arguments_are_one_line_errors(capsys, argv, message):
    code, out, err = run_cli(capsys, "bench", "cpu", *argv, "--min-time", "0")
    assert code == 2
    assert err.startswith("hwbnn: error:") and message in err and len(err.splitlines()) == 1


def test_bit_macs_count_residual_bits_and_unsigned_planes():
    net = zoo.load("zoo:digits_mlp_mix14")
    first, *rest = net.weight_layers
    expected = 5 * int(first.weights.bitwidths().sum())
    expected += sum(int(layer.weights.bitwidths().sum()) for layer in rest)
    assert cpu.bit_macs_per_frame(net) == expected
    cnn = zoo.load("zoo:digits_cnn_w1a1")  # 8x8 uint5 -> 32ch 8x8 -> pool -> 64ch 4x4 -> 10
    assert cpu.bit_macs_per_frame(cnn) == 64 * 5 * 288 + 16 * 18432 + 2560


def test_float_baseline_has_the_architecture_of_the_ir():
    net = zoo.load("zoo:digits_cnn_w1a1")
    model = float_model(net)
    modules = list(model.modules())
    convs = [m for m in modules if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in modules if isinstance(m, torch.nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1))]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 10)]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in modules) == 2
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in modules) == 2
    assert not model.training
    images = cpu.random_frames(net, 3)
    with torch.no_grad():
        assert model(float_input(net, images)).shape == (3, 10)


def test_float_baseline_and_bit_macs_of_a_residual_graph(capsys):
    """A graph model: strided convs, the shortcut's average pool, adds, global pooling; the
    MACs of the 8-bit stem (5 pixel planes x 8 weight bits), the binary convs and the
    integer shortcut and head (their inputs' bit planes x 8 weight bits)."""
    net = zoo.load("zoo:digits_resnet_w1a1")
    model = float_model(net)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (16, 3, 1), (16, 3, 1), (32, 3, 2), (32, 1, 1), (32, 3, 1)]
    assert sum(isinstance(m, torch.nn.AvgPool2d) for m in model.modules()) == 1
    with torch.no_grad():
        assert model(float_input(net, cpu.random_frames(net, 2))).shape == (2, 10)
    expected = (64 * 5 * 16 * 9 * 8 + 64 * 16 * 144 + 16 * 32 * 144 + 16 * 10 * 32 * 16 * 8
                + 16 * 32 * 288 + 12 * 10 * 32 * 8)
    assert cpu.bit_macs_per_frame(net) == expected
    code, out, _ = run_cli(capsys, "bench", "cpu", "zoo:digits_resnet_w1a1", "--batch", "2",
                           "--min-time", "0", "--golden-frames", "2", "--json")
    assert code == 0 and json.loads(out)["batches"][0]["exact"] is True


def test_random_frames_cover_the_input_encoding():
    net = zoo.load("zoo:lfc_w1a1")
    frames = cpu.random_frames(net, 2)
    assert frames.shape == (2, 28, 28, 1) and set(np.unique(frames)) == {-1, 1}
    assert np.array_equal(frames, cpu.random_frames(net, 2))


def test_onnxruntime_baseline_is_the_float_model_with_batchnorm_folded():
    """The onnxruntime session computes what the fused torch model computes."""
    from hwbnn.bench.baseline import onnxruntime_session

    net = zoo.load("zoo:digits_cnn_w1a1")
    fused = float_model(net, fused=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)
                   for m in fused.modules())
    x = float_input(net, cpu.random_frames(net, 3))
    with torch.no_grad():
        expected = fused(x).numpy()
    assert np.allclose(onnxruntime_session(net, 1)(x.numpy()), expected, rtol=1e-4, atol=1e-4)


def test_ceiling_measures_a_clock_and_a_popcount_rate():
    from hwbnn.bench import ceiling

    limits = ceiling.measure(threads=1, repetitions=1)
    assert 100 < limits["clock_mhz"] < 10_000
    # At least one 64-bit popcount every 4 cycles, at most 64 512-bit popcounts a cycle.
    assert 16 * limits["clock_mhz"] * 1e6 < limits["popcount_macs_per_s"] < (
        64 * 512 * limits["clock_mhz"] * 1e6)


def test_round_robin_alternates_and_repeats():
    calls = []
    timings = cpu.time_round_robin({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                   {"a": 4, "b": 2}, min_time=0, min_repetitions=3, block=0)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up, then rounds
    assert len(timings["a"].seconds) == 3
    assert timings["b"].as_dict(4)["frames_timed"] == 2
    assert timings["b"].as_dict(4)["latency_s"] == pytest.approx(2 * timings["b"].best)


def test_round_robin_runs_each_engine_in_blocks():
    """Within a round an engine runs calls in a row until the block's time has passed."""
    import time

    calls = []

    def engine(name):
        def run():
            calls.append(name)
            time.sleep(0.002)
        return run

    timings = cpu.time_round_robin({"a": engine("a"), "b": engine("b")}, {"a": 1, "b": 1},
                                   min_time=0, min_repetitions=1, block=0.01)
    rounds = calls[2:]  # after the warm-up calls
    assert rounds[0] == "a" and "b" in rounds
    first_b = rounds.index("b")
    assert 2 <= first_b <= 6 and set(rounds[:first_b]) == {"a"}
    assert len(timings["a"].seconds) == first_b


def test_lce_without_its_venv_or_on_other_weights_is_one_line(capsys, monkeypatch, tmp_path):
    """`--lce` checks the peer's venv and the model before any timing."""
    from hwbnn.bench import lce

    monkeypatch.setattr(lce, "LCE_VENV", tmp_path / "no-venv")
    code, _, err = run_cli(capsys, "bench", "cpu", "zoo:lfc_w1a1", "--lce", "--min-time", "0")
    assert code == 2 and len(err.splitlines()) == 1 and "run `make lce`" in err
    code, _, err = run_cli(capsys, "bench", "cpu", "zoo:lfc_ternary", "--lce", "--min-time", "0")
    assert code == 2 and len(err.splitlines()) == 1 and "binary weights only" in err
