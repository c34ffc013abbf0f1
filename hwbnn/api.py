"""The Python API: a model object and a design object over the whole flow (docs/design.md,
"Python API").

>>> import hwbnn
>>> model = hwbnn.load("zoo:digits_mlp_w1a1")          # .hwbnn file, zoo:NAME or QONNX .onnx
>>> model = hwbnn.convert(torch_module, example_input)  # or a plain torch BNN
>>> model.accuracy("digits")                           # golden integer model
>>> model.cost("ice40", target_fps=1e5).totals()       # estimate before building
>>> design = model.generate("build/rtl", target_fps=1e5)
>>> design.verify(gap=0.1, backpressure=0.2).passed    # compiled Verilator, bit-exact

The command line is a thin shell over these objects: each CLI handler parses its arguments,
calls one method and prints the result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import HwbnnError
from .ir.network import NetworkIR


def load(source, *, name: str | None = None) -> Model:
    """A :class:`Model` from a ``.hwbnn`` file, ``zoo:NAME``, a QONNX ``.onnx`` file, a
    :class:`~hwbnn.ir.network.NetworkIR` or a Model."""
    if isinstance(source, Model):
        return source
    if isinstance(source, NetworkIR):
        return Model(source.validate())
    if not isinstance(source, str | Path):
        hint = ("; convert a torch module with hwbnn.convert(module, example_input)"
                if hasattr(source, "state_dict") else "")
        raise HwbnnError(f"a model source is a path, zoo:NAME, a NetworkIR or a Model, not "
                         f"{type(source).__name__}{hint}")
    if str(source).lower().endswith(".onnx"):
        from .interop.qonnx_import import import_qonnx

        return Model(import_qonnx(source, name), str(source))
    from . import zoo

    return Model(zoo.load(source), str(source))


def convert(module, example_input, *, input_encoding: str | None = None,
            input_scale: float = 1.0, name: str | None = None) -> Model:
    """A :class:`Model` from a plain torch BNN (docs/design.md, "Plain PyTorch in").

    ``module`` (a ``torch.nn.Module``, exported in eval mode by torch's ONNX exporter; its
    mode is restored) may use Linear/Conv2d whose weights are binarized by ``sign`` in
    forward, BatchNorm, activations ``torch.sign`` or ``torch.where(y >= 0, 1, -1)`` (after a
    hardtanh or not, with the straight-through estimator in an autograd Function or as
    ``y + (q - y).detach()``), max pooling and flattening; the last layer must give the
    scores up to one scale and offset shared by all classes. ``example_input`` fixes the
    input shape. A module whose first layer takes the float input itself needs
    ``input_encoding``: its input is then ``input_scale`` times integer frames of that
    encoding (e.g. ``"uint5"`` and ``1 / 16`` for digits pixels scaled to [0, 1]). Anything
    else is one HwbnnError naming the torch layer.
    """
    from .interop.torch_import import convert_module

    net = convert_module(module, example_input, input_encoding=input_encoding,
                         input_scale=input_scale, name=name)
    return Model(net, f"torch:{type(module).__name__}")


def explore(source: str, trials: int = 40, out: str | Path = "explore", *,
            board: str | None = None, target_fps: float | None = None,
            clock_mhz: float | None = None, objectives=("accuracy", "lut"),
            jobs: int = 2, cluster: str | None = None, storage: str | None = None,
            study: str | None = None, **space):
    """Search per-layer precision (and widths, folding) of ``source`` (``mlp:32,32``,
    ``cnn:..`` or ``zoo:NAME``) under a board budget, as ``hwbnn explore`` does: run or
    continue the study to ``trials`` finished trials on ``jobs`` local workers or the Dask
    ``cluster``; returns an :class:`hwbnn.exploration.ExploreResult` (``trials``, ``front``,
    ``references``). ``space`` takes the other fields of
    :class:`hwbnn.exploration.ExploreSettings` (``weights``, ``activations``, ``widths``,
    ``epochs``, ``seed``, ``sampler``, ``family``, ``dataset``, ...)."""
    from .dist import Executor
    from .exploration import ExploreSettings, run_explore

    settings = ExploreSettings(source, board=board, target_fps=target_fps,
                               clock_mhz=clock_mhz, objectives=tuple(objectives), **space)
    return run_explore(settings, trials, Path(out), Executor(jobs=jobs, cluster=cluster),
                       storage, study)


class Model:
    """An integer model (:class:`~hwbnn.ir.network.NetworkIR`) with what can be done with it.

    Parameters
    ----------
    net : NetworkIR
    source : str, optional
        Where it came from (a path or ``zoo:NAME``), for reports.
    """

    def __init__(self, net: NetworkIR, source: str | None = None):
        if not isinstance(net, NetworkIR):
            raise HwbnnError(f"Model needs a NetworkIR, not {type(net).__name__}")
        self._net = net
        self._source = source or net.name

    def __repr__(self) -> str:
        shape = "x".join(map(str, self._net.input_shape))
        return (f"Model({self._net.name!r}: {shape} {self._net.input_encoding} -> "
                f"{self._net.num_classes} classes, {len(self._net.layers)} layers)")

    @property
    def net(self) -> NetworkIR:
        return self._net

    @property
    def name(self) -> str:
        return self._net.name

    @property
    def source(self) -> str:
        return self._source

    # --- running it ---------------------------------------------------------------------------
    def scores(self, frames, *, engine: str = "golden") -> np.ndarray:
        """Integer scores ``(N, classes)`` of frames in the model's input encoding, from the
        golden model or the packed CPU engine (``engine="packed"``; equal, faster)."""
        return _engine(engine).scores(self._net, frames)

    def predict(self, frames, *, engine: str = "golden") -> np.ndarray:
        """Labels (argmax of the scores, ties to the lowest class)."""
        return _engine(engine).predict(self._net, frames)

    def trace(self, frames) -> list:
        """Every layer's accumulators and outputs (:class:`~hwbnn.ref.golden.LayerTrace`)."""
        from .ref import golden

        return golden.run(self._net, frames)

    def quantize_input(self, x) -> np.ndarray:
        """Integer frames from the float inputs the source graph takes (``(N, C, H, W)`` or
        ``(N, F)``, as in torch), through the input quantizer recorded at import (Brevitas'
        ``2x - 1`` and its sign or n-bit quantizer; a converted module's ``input_scale``);
        without one, the inputs must be the frames themselves."""
        from .data import input_quantizer
        from .ref.golden import check_input

        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 4:
            x = x.transpose(0, 2, 3, 1)
        if tuple(x.shape[1:]) != tuple(self._net.input_shape):
            raise HwbnnError(f"inputs of shape {x.shape} do not give frames of shape "
                             f"{tuple(self._net.input_shape)}")
        quantizer = input_quantizer(self._net)
        if quantizer is None:  # the float input is the integer frame itself
            if not np.array_equal(x, np.round(x)):
                raise HwbnnError(f"model {self.name} takes integer frames "
                                 f"({self._net.input_encoding}); no input quantizer was "
                                 f"recorded for float inputs")
            return check_input(self._net, x)
        return quantizer.values(x, self._net.input_encoding)

    def frames(self, dataset: str = "digits", data_path: str | Path | None = None,
               count: int | None = None, seed: int = 0) -> np.ndarray:
        """Test frames in this model's own input shape and encoding (pixels through the
        input quantizer an import recorded, else binarized for a binary-input model; flattened
        for a flat input; ``synthetic``: seeded random frames); see
        :func:`hwbnn.data.model_frames`."""
        from .data import model_frames

        return model_frames(self._net, dataset, data_path, count, seed)

    def accuracy(self, dataset: str = "digits", data_path: str | Path | None = None, *,
                 engine: str = "golden") -> float:
        """Test-split accuracy of the integer model on ``dataset``."""
        from .data import SYNTHETIC, load

        if dataset == SYNTHETIC:
            raise HwbnnError("synthetic frames have no labels: accuracy needs a dataset")
        labels = load(dataset, data_path).test_y
        frames = self.frames(dataset, data_path)
        return float(np.mean(self.predict(frames, engine=engine) == labels))

    def check_against_torch(self, checkpoint: str | Path, dataset: str = "digits",
                            data_path: str | Path | None = None) -> dict:
        """Run a torch checkpoint in integer mode on the test split and compare every layer
        with the golden model; also the float model's accuracy and agreement."""
        import torch

        from .data import load as load_dataset
        from .ir.export import three_way_mismatch
        from .train import load_checkpoint

        data = load_dataset(dataset, data_path)
        model = load_checkpoint(checkpoint)
        mismatch = three_way_mismatch(model, self._net, data.test_x)
        with torch.no_grad():
            float_labels = model(model.prepare_input(data.test_x)).argmax(1).numpy()
        golden_labels = self.predict(data.test_x)
        return {
            "exact": mismatch is None,
            "exactness": ("bit-exact on every layer (integer torch, golden, packed)"
                          if mismatch is None else f"MISMATCH {mismatch}"),
            "torch_float_accuracy": float(np.mean(float_labels == data.test_y)),
            "float_agreement": float(np.mean(float_labels == golden_labels)),
        }

    def summary(self):
        """Per-layer encodings, bit mix, parameters, bits and operations
        (:class:`~hwbnn.summary.NetworkSummary`)."""
        from .summary import summarize

        return summarize(self._net)

    def save(self, path: str | Path) -> Path:
        """Write the model file (``.hwbnn``)."""
        from .cli import output_path
        from .ir import save

        path = output_path(str(path), ".hwbnn")
        save(self._net, path)
        return path

    # --- hardware -------------------------------------------------------------------------------
    def folding(self, fold=None, *, target_fps: float | None = None,
                clock_mhz: float | None = None):
        """The :class:`~hwbnn.hw.fold.Folding` asked for: a JSON file or design folder,
        ``"P1xS1,..."``, ``"auto"``, a mapping; None: ``auto`` when a rate is given, else the
        layers' own PE/SIMD."""
        from .hw.fold import Folding

        return Folding.parse(fold, self._net, target_fps=target_fps, clock_mhz=clock_mhz)

    def cost(self, family: str, fold=None, *, target_fps: float | None = None,
             clock_mhz: float | None = None, node: int = 45, mode: str = "folded",
             adders: str = "trees"):
        """Estimated FPGA resources (``ice40``, ``ecp5``, ``xc7``) or ASIC area and energy per
        frame (``asic``) at a folding (:class:`~hwbnn.cost.estimate.CostReport`), at the
        clock the design will run at: ``clock_mhz`` when given, else the family's predicted
        Fmax where it has a clock model (auto-folding then aims at that clock), else an
        assumed 100 MHz; the report's ``clock_source`` says which
        (:func:`hwbnn.cost.clock.estimate_at_clock`). ``mode="unrolled"``: the unrolled
        design (no folding; the given or assumed clock), its sums built with ``adders``
        (``"trees"`` or ``"da4ml"``, :class:`hwbnn.hw.unrolled.UnrolledMatrixVectorUnit`)."""
        from .cost.clock import estimate_at_clock

        return estimate_at_clock(self._net, family, fold, target_fps=target_fps,
                                 clock_mhz=clock_mhz, node=node, mode=mode, adders=adders)

    def generate(self, out_dir: str | Path, fold=None, *, target_fps: float | None = None,
                 clock_mhz: float | None = None, output: str = "scores",
                 mode: str = "folded", name: str | None = None,
                 family: str | None = None, adders: str = "trees") -> Design:
        """Streaming Verilog, ``manifest.json`` and the model file in ``out_dir``; the
        :class:`Design` that opens them (:func:`hwbnn.verify.design.generate_design`).

        With ``family`` (and no ``clock_mhz``) auto-folding aims at the clock the family's
        model predicts for the folded design, less its error margin
        (:func:`hwbnn.cost.clock.folding_for`). ``adders``: the unrolled mode's sums, as in
        :meth:`cost`."""
        from .verify.design import generate_design

        if family is not None and mode == "folded":
            from .cost.clock import folding_for

            fold = folding_for(self._net, family, fold, target_fps=target_fps,
                               clock_mhz=clock_mhz)
            target_fps = clock_mhz = None
        rtl = generate_design(self._net, out_dir, folding=fold, target_fps=target_fps,
                              clock_mhz=clock_mhz, output=output, mode=mode, name=name,
                              adders=adders)
        return Design(rtl, self)

    def build(self, board: str, out_dir: str | Path, fold=None, **options):
        """A bitstream for ``board`` (:func:`hwbnn.boards.build.build` takes the options)."""
        from .boards.build import build

        return build(self._source, board, out_dir, fold=fold, net=self._net, **options)


class Design:
    """A generated design folder (Verilog + ``manifest.json``) and the model it implements.

    Open one with :meth:`Design.open` or get one from :meth:`Model.generate`.
    """

    def __init__(self, rtl, model: Model):
        self._rtl = rtl
        self._model = model

    @classmethod
    def open(cls, directory: str | Path, model=None) -> Design:
        """The design in ``directory``; its model is ``model`` or found by the manifest's
        digest (the model file beside it, or the zoo)."""
        from .verify.design import open_design

        model = None if model is None else load(model)
        rtl = open_design(Path(directory), None if model is None else model.net)
        return cls(rtl, model or Model(rtl.net))

    def __repr__(self) -> str:
        return (f"Design({self.top!r} in {self.directory}: {self.folding}, "
                f"{self.cycles_per_frame} cycles/frame)")

    @property
    def model(self) -> Model:
        return self._model

    @property
    def rtl(self):
        """The :class:`~hwbnn.verify.design.RtlDesign` (manifest, Verilog, taps)."""
        return self._rtl

    @property
    def directory(self) -> Path:
        return self._rtl.directory

    @property
    def top(self) -> str:
        return self._rtl.top

    @property
    def manifest(self) -> dict:
        return self._rtl.manifest

    @property
    def mode(self) -> str:
        """``folded`` or ``unrolled``, as generated."""
        return self._rtl.manifest.get("mode", "folded")

    def require_folded(self, what: str) -> None:
        """HwbnnError naming ``what`` for an unrolled design (one that has no folding to
        show: stage budgets, PE/SIMD balance)."""
        if self.mode != "folded":
            raise HwbnnError(f"{what} shows a folded design's folding (stage budgets, PE x "
                             f"SIMD), and this one is {self.mode}: use hwbnn cost --mode "
                             f"{self.mode} and hwbnn synth --blocks instead")

    @property
    def folding(self):
        return self._rtl.folding

    @property
    def cycles_per_frame(self) -> int:
        return self._rtl.cycles_per_frame

    def verify(self, frames=None, *, dataset: str = "digits",
               data_path: str | Path | None = None, count: int | None = None,
               sim: str = "verilator", gap: float = 0.0, backpressure: float = 0.0,
               seed: int = 0, work: str | Path | None = None,
               cache: str | Path | None = None):
        """Simulate the Verilog on ``frames`` (default: the model's frames of ``dataset``)
        with random input gaps and output backpressure; compare with the golden model
        (:class:`~hwbnn.verify.flow.VerifyReport`)."""
        from .verify.flow import verify

        if frames is None:
            frames = self._model.frames(dataset, data_path, count, seed)
        work = Path(work) if work is not None else Path("build/verify") / self.top
        return verify(self._rtl, frames, sim=sim, gap=gap, backpressure=backpressure,
                      seed=seed, work=work, cache=cache)

    def synthesize(self, family: str, device: str | None = None, seeds: int = 3,
                   target_mhz: float | None = None, work: str | Path | None = None,
                   **options):
        """Yosys (and nextpnr) counts and Fmax (:class:`~hwbnn.synth.flow.SynthResult`)."""
        from .synth.design import read_design
        from .synth.flow import synthesize

        return synthesize(read_design(self.directory), family, device, seeds, target_mhz,
                          work, **options)

    def cost(self, family: str, *, node: int = 45):
        """The cost estimate of this design as generated (its folding, or unrolled) at the
        clock it was folded for (:meth:`Model.cost`)."""
        from .hw.fold import DEFAULT_CLOCK_MHZ

        if self.mode == "unrolled":
            return self._model.cost(family, node=node, mode="unrolled")
        folding = self.folding
        return self._model.cost(family, folding, node=node,
                                clock_mhz=folding.clock_mhz or DEFAULT_CLOCK_MHZ)

    def compare_blocks(self, synthesis) -> list[dict]:
        """Each block's estimate beside its count in ``synthesis`` (a
        :class:`~hwbnn.synth.flow.SynthResult` made with ``blocks=True``), estimated for
        the synthesis' family at this design's folding."""
        if not synthesis.blocks:
            raise HwbnnError("the synthesis has no per-block counts: synthesize with "
                             "blocks=True (hwbnn synth --blocks)")
        report = self.cost(synthesis.family)
        return report.compare_blocks(synthesis.blocks)

    def closure(self, synthesis) -> dict:
        """Frames/s at ``synthesis``' measured Fmax against the rate the design was folded
        for, and the folding that would meet it when short
        (:func:`hwbnn.cost.clock.throughput_closure`)."""
        from .cost.clock import throughput_closure

        if synthesis.fmax_mhz is None:
            raise HwbnnError("the synthesis has no Fmax (no place and route): closure needs "
                             "one (ice40 or ecp5, seeds >= 1)")
        folding = self.folding
        return throughput_closure(folding, self.cycles_per_frame, synthesis.fmax_mhz,
                                  folding.target_fps)

    def build(self, board: str, out_dir: str | Path, **options):
        """A bitstream for ``board`` at this design's folding."""
        return self._model.build(board, out_dir, fold=str(self.directory), **options)

    def report(self, path: str | Path | None = None, *, family: str = "ice40",
               synth: bool = False, verify: bool = False, frames: int | None = None,
               seeds: int = 1, work: str | Path | None = None,
               cache: str | Path | None = None):
        """Write one self-contained HTML page (default ``DIRECTORY/report.html``): summary,
        folding, cost estimate for ``family``; with ``synth`` synthesis (``seeds`` place and
        route runs; every block also synthesized apart beside its estimate), with ``verify``
        the Verilator harness on ``frames`` digits test frames (default all). Returns the
        :class:`~hwbnn.report.DesignReport`."""
        from .progress import step
        from .report import write_report

        self.require_folded("a design report")  # before any synthesis or simulation
        synthesis = verification = None
        if synth:
            with step(f"report: synthesis of {self.top} for {family}"):
                synthesis = self.synthesize(family, seeds=seeds, blocks=True)
        if verify:
            with step(f"report: verification of {self.top} in Verilator"):
                verification = self.verify(count=frames, work=work, cache=cache)
        return write_report(self, path or self.directory / "report.html", family=family,
                            synthesis=synthesis, verification=verification)


def _engine(name: str):
    if name == "golden":
        from .ref import golden

        return golden
    if name == "packed":
        from .ref import packed

        return packed
    raise HwbnnError(f"engine must be 'golden' or 'packed', not {name!r}")
