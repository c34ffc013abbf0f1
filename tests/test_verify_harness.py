"""The compiled stream harness on a hand-written top: wide ports, and every stream rule it
checks broken on purpose (hwbnn/verify/harness.cpp)."""

from pathlib import Path

import numpy as np
import pytest

from hwbnn.errors import HwbnnError
from hwbnn.verify import harness
from hwbnn.verify.runner import Build, build, build_key, harness_top

from .tooling import require_simulator

CACHE = Path(__file__).resolve().parents[1] / "build" / "sim" / "cache"
IN_WIDTH, OUT_WIDTH = 56, 200  # a QData input port and a VlWide<7> output port
DROP, FLEETING, TWICE, DEAD = 0xA1, 0xA2, 0xA3, 0xA4

# A one-beat register stage whose output is the input beat repeated to 200 bits. It keeps
# the stream rules until it takes a beat whose low byte is a marker; from then on it
# overwrites a stalled beat (DROP), lets tvalid fall while stalled (FLEETING), sends every
# beat twice (TWICE), or takes and sends nothing more (DEAD).
FAULTY_STAGE = """
module faulty_stage (
    input clk, input rst,
    input [55:0] s_axis_tdata, input s_axis_tvalid, output s_axis_tready,
    output reg [199:0] m_axis_tdata, output reg m_axis_tvalid, input m_axis_tready);
  reg drop, fleeting, twice, dead, again;
  wire take = s_axis_tvalid && s_axis_tready;
  assign s_axis_tready = !dead && (!m_axis_tvalid || (m_axis_tready && !again) || drop);
  always @(posedge clk) begin
    if (rst) begin
      m_axis_tvalid <= 0; drop <= 0; fleeting <= 0; twice <= 0; dead <= 0; again <= 0;
    end else begin
      if (take) begin
        m_axis_tvalid <= 1;
        m_axis_tdata <= {s_axis_tdata[31:0], s_axis_tdata, s_axis_tdata, s_axis_tdata};
        again <= twice;
        drop <= drop || s_axis_tdata[7:0] == 8'hA1;
        fleeting <= fleeting || s_axis_tdata[7:0] == 8'hA2;
        twice <= twice || s_axis_tdata[7:0] == 8'hA3;
        dead <= dead || s_axis_tdata[7:0] == 8'hA4;
      end else if (m_axis_tready && again) begin
        again <= 0;
      end else if (m_axis_tready || fleeting) begin
        m_axis_tvalid <= 0;
      end
    end
  end
endmodule
"""


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    require_simulator("verilator")
    source = tmp_path_factory.mktemp("faulty") / "faulty_stage.v"
    source.write_text(FAULTY_STAGE)
    return build(source, "faulty_stage", "verilator", CACHE, harness=True, widths=(56, 200))


def beats(count: int, marker: int | None = None, at: int = 0) -> list[int]:
    """Random 56-bit beats whose low byte is no marker, except beat ``at`` (``marker``)."""
    rng = np.random.default_rng(count)
    values = [int(v) << 8 | int(b) for v, b in zip(rng.integers(0, 1 << 48, count),
                                                    rng.integers(0, 0xA0, count), strict=True)]
    if marker is not None:
        values[at] = values[at] & ~0xFF | marker
    return values


def widened(beat: int) -> int:
    return (beat & 0xFFFFFFFF) << 168 | beat << 112 | beat << 56 | beat


def stream(built, work, sent, expected, **options):
    settings = {"gap": 0.3, "backpressure": 0.5, "seed": 4, "max_wait_cycles": 200,
                "tail_cycles": 20} | options
    return harness.run(built, sent, work, in_width=IN_WIDTH, out_width=OUT_WIDTH,
                       out_beats=expected, **settings)


def test_a_wide_stream_passes_whole_under_gaps_and_backpressure(faulty, tmp_path):
    sent = beats(400)
    run = stream(faulty, tmp_path, sent, len(sent))
    assert run.violation is None and not run.stalled
    assert run.output == [widened(beat) for beat in sent]
    assert run.in_beats == 400
    # Half the cycles refused and a third idle: far slower than a beat per cycle.
    assert run.cycles > run.busy_cycles > 2 * len(sent)
    assert run.wall_s > 0


def test_the_same_seed_gives_the_same_run(faulty, tmp_path):
    sent = beats(50)
    first = stream(faulty, tmp_path / "a", sent, 50)
    assert stream(faulty, tmp_path / "b", sent, 50).cycles == first.cycles
    assert stream(faulty, tmp_path / "c", sent, 50, seed=5).cycles != first.cycles


@pytest.mark.parametrize(("marker", "message"), [
    (DROP, "m_axis_tdata changed while beat"),
    (FLEETING, "m_axis_tvalid fell while beat"),
    (TWICE, "beat 100 beyond the expected 100"),
])
def test_a_broken_stream_rule_is_named(faulty, tmp_path, marker, message):
    sent = beats(100, marker, at=10)
    run = stream(faulty, tmp_path, sent, len(sent))
    assert run.violation is not None and message in run.violation
    assert run.violation.endswith(")") and "(cycle " in run.violation
    assert not run.stalled
    # Every beat before the fault came out right.
    assert run.output[:10] == [widened(beat) for beat in sent[:10]]


def test_a_dead_design_stalls_after_its_last_beat(faulty, tmp_path):
    sent = beats(30, DEAD, at=7)
    run = stream(faulty, tmp_path, sent, len(sent))
    assert run.stalled and run.violation is None
    assert run.output == [widened(beat) for beat in sent[:8]]
    assert run.in_beats == 8


def test_a_prelude_and_a_reset_leave_no_trace(faulty, tmp_path):
    sent = beats(40)
    run = stream(faulty, tmp_path, sent[10:], 30, prelude=sent[:10])
    assert run.violation is None
    assert run.output == [widened(beat) for beat in sent[10:]]
    assert run.in_beats == 30


def test_a_design_dead_in_the_prelude_stalls_there(faulty, tmp_path):
    sent = beats(20, DEAD, at=3)
    run = stream(faulty, tmp_path, sent[10:], 10, prelude=sent[:10])
    assert run.stalled and run.output == [] and run.in_beats == 0


def test_a_port_width_the_design_lacks_is_refused(faulty, tmp_path):
    with pytest.raises(HwbnnError, match="--in-bytes 16 does not fit s_axis_tdata"):
        harness.run(faulty, [1], tmp_path, in_width=128, out_width=OUT_WIDTH, out_beats=1,
                    max_wait_cycles=10)


def test_beat_files_are_little_endian_bytes(tmp_path):
    values = [0, 1, (1 << 200) - 1, 0x1234 << 150]
    harness.write_beats(tmp_path / "beats.bin", values, 200)
    raw = (tmp_path / "beats.bin").read_bytes()
    assert len(raw) == 4 * 25 and raw[25] == 1 and raw[26:50] == bytes(24)
    assert harness.read_beats(tmp_path / "beats.bin", 200) == values


def test_only_a_harness_build_runs_in_the_harness(tmp_path):
    cocotb = Build("verilator", "top", tmp_path, 0.0, True, False)
    with pytest.raises(HwbnnError, match="is a cocotb build, not the compiled harness"):
        harness.run(cocotb, [1], tmp_path, in_width=8, out_width=8, out_beats=1,
                    max_wait_cycles=10)
    with pytest.raises(HwbnnError, match="the compiled harness is built by Verilator"):
        build(tmp_path / "x.v", "top", "icarus", tmp_path, harness=True, widths=(8, 8))


def test_the_harness_source_is_part_of_the_cache_key():
    require_simulator("verilator")
    wrapper = harness_top("m", 8, 8)
    assert build_key("module m; endmodule", "verilator", False, wrapper) != build_key(
        "module m; endmodule", "verilator", False)
    assert build_key("module m; endmodule", "verilator", False, wrapper) != build_key(
        "module m; endmodule", "verilator", False, harness_top("m", 8, 16))


def test_builders_sharing_the_run_time_folder_never_see_half_a_file(tmp_path):
    """Builds of different designs (jobs of a multi-target verify, threads of one worker)
    copy Verilator's run-time objects into one shared folder at once: each file appears
    whole, once, and nothing is left aside."""
    import threading

    from hwbnn.verify.runner import RUNTIME_OBJECTS, _copy_runtime

    source = tmp_path / "build"
    source.mkdir()
    contents = {}
    for n, name in enumerate(RUNTIME_OBJECTS):
        for suffix in (".d", ".o"):
            contents[name + suffix] = bytes([n]) * (2 << 20) + suffix.encode()
            (source / (name + suffix)).write_bytes(contents[name + suffix])
    shared = tmp_path / "verilator-runtime"
    start, errors = threading.Barrier(8), []

    def builder():
        start.wait()
        try:
            _copy_runtime(source, shared)
        except Exception as error:  # collected, asserted below
            errors.append(error)

    threads = [threading.Thread(target=builder) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {path.name: path.read_bytes() for path in shared.iterdir()} == contents
