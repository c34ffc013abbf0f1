"""The design report: its pictures and its HTML page, opened in headless Chromium."""

import base64
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import hwbnn
from hwbnn.cli import main
from hwbnn.errors import HwbnnError
from hwbnn.report import plots, write_report
from hwbnn.synth.flow import SynthResult

from .tooling import require_chromium, require_simulator

CACHE = Path(__file__).resolve().parents[1] / "build" / "sim" / "cache"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = ("overview", "model", "folding", "cost", "synthesis", "verification")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")
# Run once the page has loaded: records how wide each picture decoded, for --dump-dom.
RECORD_IMAGES = ("<script>window.addEventListener('load', () => {document.body.dataset.widths ="
                 " [...document.images].map(i => i.naturalWidth).join(',')})</script>")


class Page(HTMLParser):
    """Section ids, tables, pictures and the body's attributes of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.sections, self.tables, self.images, self.body, self.scripts = [], 0, [], {}, 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        elif tag == "table":
            self.tables += 1
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "body":
            self.body = attrs
        elif tag in ("script", "link"):
            self.scripts += 1


def png_of(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    return base64.b64decode(src[len(prefix):], validate=True)


def chromium(*arguments, profile: Path) -> str:
    done = subprocess.run([require_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           *arguments], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """A CNN design (sliding windows and pools), folded for a target rate."""
    out = tmp_path_factory.mktemp("report") / "cnn"
    return hwbnn.load("zoo:digits_cnn_w1a1").generate(out, target_fps=1e5)


def test_folding_balance_follows_the_dataflow(cnn):
    folding = cnn.folding
    assert plots.stage_order(folding) == ["conv0_window", "conv0", "pool1", "conv1_window",
                                          "conv1", "pool3", "dense2"]
    assert plots.cycle_budget(folding, 100.0) == 1000
    assert plots.plot_folding_balance(folding, 100.0)[:8] == PNG_MAGIC


def test_report_shows_synthesis_and_escapes_text(cnn, tmp_path):
    """Estimate vs synthesis from a given result (no Yosys here); free text is escaped."""
    synthesis = SynthResult(cnn.top, "ice40", "up5k", {"lut": 5000, "ff": 5500, "carry": 700,
                                                       "bram": 6}, {}, {}, 0, fmax_mhz=40.0,
                            seeds=[1], notes=["<script>alert('x')</script> & more"])
    report = write_report(cnn, tmp_path / "cnn", synthesis=synthesis)
    assert report.path == tmp_path / "cnn.html" and report.passed
    text = report.path.read_text()
    page = Page(text)
    assert page.sections == list(SECTIONS) and page.scripts == 0
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in text
    assert "estimate vs synthesis" in text and "Fmax (MHz, median of seeds)" in text
    assert len(page.images) == 2 and all(png_of(src)[:8] == PNG_MAGIC for src in page.images)
    with pytest.raises(HwbnnError, match="must be of one family"):
        write_report(cnn, tmp_path / "x.html", family="ecp5", synthesis=synthesis)


def test_report_shows_each_block_beside_its_estimate(cnn, tmp_path):
    """A synthesis with per-block counts adds the block table and its bar chart."""
    blocks = {row["block"]: {"lut": 10 * n, "ff": 5, "bram": 0}
              for n, row in enumerate(cnn.model.cost("ice40", cnn.folding).block_rows())}
    synthesis = SynthResult(cnn.top, "ice40", "up5k", {"lut": 5000, "ff": 5500, "bram": 6},
                            {}, {}, 0, blocks={**blocks, "(top)": {"lut": 3}})
    report = write_report(cnn, tmp_path / "cnn", synthesis=synthesis)
    text = report.path.read_text()
    assert "every block kept apart" in text and "resources per block" in text
    assert "conv1_window" in text and "(top)" in text
    assert len(Page(text).images) == 3


def test_report_cli(cnn, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["report", str(cnn.directory), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.is_file()
    assert main(["report", str(cnn.directory), "--family", "asic", "--synth"]) == 2
    assert "family must be one of" in capsys.readouterr().err


def test_report_renders_in_chromium(tmp_path):
    """The verified report, as Chromium renders it: every section, table and picture."""
    require_chromium()
    require_simulator("verilator")
    model = hwbnn.load("zoo:digits_mlp_w1a1")
    design = model.generate(tmp_path / "rtl", target_fps=1e6)
    report = design.report(tmp_path / "report.html", verify=True, frames=16,
                           work=tmp_path / "work", cache=CACHE)
    assert report.verification.passed and report.verification.frames == 16
    probe = tmp_path / "probe.html"
    text = report.path.read_text()
    probe.write_text(text.replace("</body>", RECORD_IMAGES + "</body>"))
    dom = Page(chromium("--dump-dom", probe.as_uri(), profile=tmp_path / "profile"))
    assert dom.sections == list(SECTIONS)
    assert dom.tables == 5  # overview, model, folding, cost, verification
    assert len(dom.images) == 2 and all(len(png_of(src)) > 1000 for src in dom.images)
    assert [int(width) for width in dom.body["data-widths"].split(",")] == [
        int.from_bytes(png_of(src)[16:20], "big") for src in dom.images]
    assert "PASS: bit-exact with the golden model" in text

    from PIL import Image

    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,2400", report.path.as_uri(),
             profile=tmp_path / "profile")
    pixels = Image.open(shot).convert("L")
    dark = sum(pixels.histogram()[:200])
    assert dark > 0.02 * pixels.width * pixels.height  # text, tables and bars, not a blank page


def test_folding_section_names_a_memory_style():
    from hwbnn.hw.fold import Folding
    from hwbnn.report.page import _folding_section

    net = hwbnn.load("zoo:digits_mlp_w1a1").net
    html = _folding_section(Folding.parse("1x1,1x1:block,1x1", net), 100.0)
    assert html.count("(memories: block)") == 1 and "(memories: auto)" not in html
