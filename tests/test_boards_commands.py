import pytest

from hwbnn.boards.commands import programmer_command
from hwbnn.cli import main
from hwbnn.errors import HwbnnError


def fake_which(*available):
    return lambda tool: f"/usr/bin/{tool}" if tool in available else None


@pytest.fixture
def bitstreams(tmp_path):
    (tmp_path / "net_icebreaker.bin").write_bytes(b"\xff\x00")
    (tmp_path / "net_ulx3s-85f.bit").write_bytes(b"\xff\x00")
    return tmp_path


def test_icebreaker_prefers_iceprog_then_openfpgaloader(bitstreams):
    path = str(bitstreams / "net_icebreaker.bin")
    assert programmer_command(path, "icebreaker", which=fake_which("iceprog", "openFPGALoader")
                              ) == ["/usr/bin/iceprog", "-S", path]
    assert programmer_command(path, "icebreaker", flash=True,
                              which=fake_which("openFPGALoader")) == [
        "/usr/bin/openFPGALoader", "-b", "icebreaker", "-f", path]


def test_build_folder_finds_its_bitstream(bitstreams):
    assert programmer_command(str(bitstreams), "ulx3s-85f", which=fake_which("openFPGALoader")
                              ) == ["/usr/bin/openFPGALoader", "-b", "ulx3s",
                                    str(bitstreams / "net_ulx3s-85f.bit")]


def test_no_programmer_says_what_to_install_and_run(bitstreams):
    path = str(bitstreams / "net_ulx3s-85f.bit")
    with pytest.raises(HwbnnError, match=r"no programmer found: install openFPGALoader .*"
                                         r"then run: openFPGALoader -b ulx3s .*\.bit"):
        programmer_command(path, "ulx3s-85f", which=fake_which())


def test_program_cli_dry_run_and_missing_tool(bitstreams, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(bitstreams))
    assert main(["program", str(bitstreams), "--board", "icebreaker", "--dry-run"]) == 2
    assert "no programmer found: install iceprog or openFPGALoader" in capsys.readouterr().err
    tool = bitstreams / "iceprog"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    assert main(["program", str(bitstreams), "--board", "icebreaker", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{tool} -S {bitstreams / 'net_icebreaker.bin'}")


@pytest.mark.parametrize("args, message", [
    (["missing.bin", "--board", "icebreaker"], "does not exist"),
    (["{dir}/net_ulx3s-85f.bit", "--board", "icebreaker"],
     "icebreaker takes a .bin bitstream, not net_ulx3s-85f.bit"),
    (["{dir}/empty", "--board", "arty-a7-35"], "make the .bit with Vivado")])
def test_program_errors(bitstreams, args, message):
    (bitstreams / "empty").mkdir()
    args = [arg.format(dir=bitstreams) for arg in args]
    with pytest.raises(HwbnnError, match=message):
        programmer_command(args[0], args[2], which=fake_which("openFPGALoader"))
