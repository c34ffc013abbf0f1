"""cocotb bench of a generated design: frames in, output beats (and taps) recorded and checked.

Loaded by the simulator (``COCOTB_TEST_MODULES=hwbnn.verify.tb_network``); everything it does
is set by the JSON config described in :mod:`hwbnn.verify.bench`.
"""

import cocotb

from hwbnn.verify.bench import check_output, read_config, run_bench


@cocotb.test()
async def stream_frames(dut):
    """Drive the configured frames through the design; compare the output beats."""
    result = await run_bench(dut)
    config = read_config()
    if config.get("expected") is not None:
        check_output(config, result)
