"""cocotb bench of the component table: every case of sim/components.py in one simulation.

Cases run one after the other, each with its own random input gaps and backpressure; the
bench fails naming every case whose output beats differ from the expected ones.
"""

import cocotb

from hwbnn.verify.bench import check_output, read_config, run_bench


@cocotb.test()
async def component_table(dut):
    """Drive every configured case through its component and compare its output beats."""
    config = read_config()
    result = await run_bench(dut)
    failures = []
    for case in config["cases"]:
        try:
            check_output(case, result[case["name"]])
        except AssertionError as error:
            failures.append(f"{case['name']}: {error}")
    assert not failures, "; ".join(failures)
