"""Component benches: the table of sim/components.py in Verilator and Icarus.

One Verilog top holds every case, so each simulator builds once and runs the whole table
in one simulation (session fixture); each case is then checked as its own test.
"""

import pytest
from components import all_cases, case_config, write_farm
from runner import SIMULATORS, require_simulator

from hwbnn.verify.runner import build, run

CASES = all_cases()
TOP = "component_farm"


@pytest.fixture(scope="session")
def farm_verilog(tmp_path_factory):
    return write_farm(CASES, tmp_path_factory.mktemp("farm") / f"{TOP}.v", TOP)


@pytest.fixture(scope="session", params=SIMULATORS)
def table(request, farm_verilog, sim_cache, tmp_path_factory):
    """(simulator, result of every case) of one run of the whole table."""
    sim = request.param
    require_simulator(sim)
    # Dozens of small units: C++ optimization would cost more build time than it saves.
    built = build(farm_verilog, TOP, sim, sim_cache, optimize=False)
    config = {"cases": [case_config(case, gap=0.3, backpressure=0.3, seed=n)
                        for n, case in enumerate(CASES)]}
    outcome = run(built, config, tmp_path_factory.mktemp(f"table-{sim}"),
                  module="tb_components")
    return sim, outcome.result


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_component_equals_golden(table, case):
    sim, results = table
    result = results[case.name]
    assert not result["stalled"], f"{case.name} stalled in {sim}"
    assert [int(beat, 16) for beat in result["output"]] == case.expected


def test_table_covers_every_unit():
    kinds = {type(case.component).__name__ for case in CASES}
    assert kinds == {"MatrixVectorThresholdUnit", "UnrolledMatrixVectorUnit", "SlidingWindow",
                     "MaxPool", "LabelSelect", "StreamFifo", "WidthConverter"}
