# amaranth: UnusedElaboratable=no
# (The pipeline is built for its structure and cycle model only; nothing is elaborated.)
"""Folding: PE and SIMD of every weight layer, as one validated value (:class:`Folding`).

One parser for the three spellings (docs/design.md section 4, "One folding"):

* a JSON file ``{"layer": {"pe": P, "simd": S}, ...}``, also the ``folding`` key of a design's
  ``manifest.json`` or ``folding.json`` (a design folder works too), so ``build`` and
  ``verify`` take the folding ``gen`` wrote;
* an inline list ``P1xS1,P2xS2,...``, one pair per weight layer in layer order;
* ``auto`` with a target frame rate and a clock: balanced like FINN's SetFolding. Start fully
  folded (PE = SIMD = 1) and repeatedly give the slowest foldable layer its next larger SIMD
  (a divisor of MW), then its next larger PE (a divisor of MH), until every layer meets the
  cycle budget ``clock / target_fps`` or none can be unfolded further. In a graph a layer
  also answers for the threshold and add units that take its PE lanes (their next step is
  a larger PE).

The first two spellings may also say where a layer's constant memories go (weights with the
plane schedule, thresholds), as FINN's ``ram_style``: ``{"pe": P, "simd": S, "ram_style":
"block"}`` or ``P1xS1:block`` (``auto``, the default: synthesis chooses, and the estimate
with it; ``block``: block RAM; ``logic``: soft logic). The style travels to the estimate
(:func:`hwbnn.cost.memory.map_memory`) and to the generated Verilog (a ``ram_style``
attribute, which Yosys's ``memory_libmap`` obeys); docs/design.md section 4.

Without ``--fold`` every command uses the same default: ``auto`` when a target frame rate is
given, else the layers' own PE/SIMD from the model file, else PE = SIMD = 1 (the smallest
design). A target rate beside an explicit folding is checked against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import HwbnnError
from ..ir import fileformat
from ..ir.network import Add, NetworkIR, Threshold
from .plan import LayerPlan, check_folding, check_ram_style

DEFAULT_CLOCK_MHZ = 100.0
MAX_FILE_BYTES = 1 << 24  # a folding file (a manifest.json with its layer table)
_PAIR = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*(?::\s*([A-Za-z]+)\s*)?$")


def divisors(n: int) -> list[int]:
    """Every d that divides n, ascending (the legal PE or SIMD values for n rows/columns)."""
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@dataclass(frozen=True)
class LayerFold:
    """PE (output lanes) and SIMD (input lanes) of one weight layer, and where its constant
    memories go (:data:`~hwbnn.hw.plan.RAM_STYLES`)."""

    pe: int
    simd: int
    ram_style: str = "auto"

    def __post_init__(self):
        check_ram_style(self.ram_style)

    def __str__(self) -> str:
        style = "" if self.ram_style == "auto" else f":{self.ram_style}"
        return f"{self.pe}x{self.simd}{style}"


class Folding(Mapping):
    """PE and SIMD of every weight layer of ``net``, validated, in layer order.

    Parameters
    ----------
    net : NetworkIR
    layers : mapping
        ``{layer name: LayerFold | {"pe": P, "simd": S} | (P, S)}``; a missing layer takes its
        own PE/SIMD from the model file, else 1.
    target_fps, clock_mhz : float, optional
        What the folding was made for (``auto``), recorded in manifests.
    """

    def __init__(self, net: NetworkIR, layers: Mapping | None = None, *,
                 target_fps: float | None = None, clock_mhz: float | None = None):
        layers = dict(layers or {})
        names = [layer.name for layer in net.weight_layers]
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise HwbnnError(f"folding names unknown layer {unknown[0]!r}; weight layers: "
                             f"{', '.join(names)}")
        self._net = net
        self._folds: dict[str, LayerFold] = {}
        for layer in net.weight_layers:
            pe, simd, style = _entry(layer, layers.get(layer.name))
            check_folding(layer, pe, simd)
            self._folds[layer.name] = LayerFold(int(pe), int(simd), style)
        self.target_fps = target_fps
        self.clock_mhz = clock_mhz
        # How clock_mhz was chosen, where a command knows: "given", "predicted" (the
        # family's clock model, hwbnn.cost.clock) or "assumed".
        self.clock_source: str | None = None
        # Where the estimate is above what the open flow places and routes, what to expect
        # (cost.clock.route_note); recorded in the manifest.
        self.route_note: str | None = None

    # --- parsing ----------------------------------------------------------------------------
    @classmethod
    def parse(cls, spec, net: NetworkIR, *, target_fps: float | None = None,
              clock_mhz: float | None = None) -> Folding:
        """The folding a command asked for (see the module docstring).

        ``spec`` is None, ``"auto"``, ``"P1xS1,..."``, a path (JSON file or design folder), a
        mapping of layers or a :class:`Folding`. A ``target_fps`` beside an explicit folding
        is checked: HwbnnError when the folding is slower.
        """
        check_rate(target_fps, clock_mhz)
        if cls.asks_auto(spec, target_fps):
            if target_fps is None:
                raise HwbnnError("--fold auto needs --target-fps")
            folding = cls.auto(net, target_fps, clock_mhz or DEFAULT_CLOCK_MHZ)
            folding.clock_source = "given" if clock_mhz else "assumed"
            return folding
        if spec is None:
            folding = cls(net)
        elif isinstance(spec, Folding):
            folding = cls(net, {name: fold for name, fold in spec.items()},
                          target_fps=spec.target_fps, clock_mhz=spec.clock_mhz)
            folding.clock_source = spec.clock_source
            folding.route_note = spec.route_note
        elif isinstance(spec, Mapping):
            folding = cls(net, spec)
        elif isinstance(spec, str | Path) and (Path(spec).exists() or _looks_like_path(spec)):
            folding = cls(net, _read_file(Path(spec)))
        elif isinstance(spec, str):
            folding = cls(net, _inline(spec, net))
        else:
            raise HwbnnError(f"a folding must be 'auto', PExSIMD pairs or a JSON file, "
                             f"not {spec!r}")
        folding.clock_mhz = clock_mhz or folding.clock_mhz
        if target_fps is not None:
            folding.check_rate(target_fps, folding.clock_mhz or DEFAULT_CLOCK_MHZ)
            folding.target_fps = target_fps
        return folding

    @classmethod
    def unfolded(cls, net: NetworkIR) -> Folding:
        """Every layer fully parallel, PE = MH and SIMD = MW: the unrolled mode's shape, and
        the fastest a folded design gets."""
        return cls(net, {layer.name: LayerFold(layer.mh, layer.mw)
                         for layer in net.weight_layers})

    @staticmethod
    def asks_auto(spec, target_fps: float | None = None) -> bool:
        """Whether :meth:`parse` folds ``spec`` automatically: ``"auto"``, or no folding
        beside a target frame rate."""
        if spec is None:
            return target_fps is not None
        return isinstance(spec, str) and spec.strip().lower() == "auto"

    @classmethod
    def auto(cls, net: NetworkIR, target_fps: float, clock_mhz: float = DEFAULT_CLOCK_MHZ
             ) -> Folding:
        """Smallest balanced folding reaching ``target_fps`` at ``clock_mhz``; HwbnnError
        naming the bottleneck when the target cannot be met even fully unfolded.

        In a graph, threshold and add units take one beat of their producer's PE lanes per
        cycle, so a layer also stands for the elementwise stages it sets the lanes of
        (:meth:`~hwbnn.hw.network.NetworkTop.lane_layer`): when those are its slower part,
        its next step is a larger PE.
        """
        _positive(target_fps, "--target-fps")
        _positive(clock_mhz, "--clock-mhz")
        budget = int(clock_mhz * 1e6 // target_fps)
        if budget < 1:
            raise HwbnnError(f"{target_fps:g} frames/s needs more than one frame per clock "
                             f"cycle at {clock_mhz:g} MHz")
        layers = net.weight_layers
        lanes = lane_elements(net)
        folds = {layer.name: LayerFold(1, 1) for layer in layers}
        options = {layer.name: (divisors(layer.mw), divisors(layer.mh)) for layer in layers}

        plans: dict[tuple, LayerPlan] = {}  # the cycle model and the mask test share them

        def plan(layer, fold: LayerFold) -> LayerPlan:
            key = (layer.name, fold.pe, fold.simd)
            if key not in plans:
                plans[key] = LayerPlan(layer, fold.pe, fold.simd)
            return plans[key]

        def cycles(layer, fold: LayerFold) -> int:
            return max(plan(layer, fold).cycles_per_frame, lanes.get(layer.name, 0) // fold.pe)

        # With one plane a tile needs a mask where it holds a zero weight, whatever the
        # folding: both steps need masks alike, and only several planes can choose below.
        planes = {layer.name: LayerPlan(layer, 1, 1).planes for layer in layers}

        def pe_only(layer) -> bool:
            return lanes.get(layer.name, 0) // folds[layer.name].pe > budget

        def can_step(layer) -> bool:
            simd_options = [] if pe_only(layer) else options[layer.name][0]
            return _unfold(folds[layer.name], simd_options, options[layer.name][1]) is not None

        def step(layer) -> LayerFold | None:
            fold = folds[layer.name]
            if pe_only(layer):
                return _unfold(fold, [], options[layer.name][1])
            simd_step = _unfold(fold, options[layer.name][0], [])
            pe_step = _unfold(fold, [], options[layer.name][1])
            if simd_step is None or pe_step is None:
                return simd_step or pe_step
            # Larger SIMD first (a wider popcount is cheaper than another PE), unless a PE
            # step of the same lanes keeps every tile on one bitwidth where the SIMD step
            # does not: tiles inside a model's bitwidth groups skip absent planes and need no
            # masks (docs/design.md section 4).
            if (planes[layer.name] > 1
                    and pe_step.pe * pe_step.simd == simd_step.pe * simd_step.simd
                    and plan(layer, simd_step).needs_mask
                    and not plan(layer, pe_step).needs_mask):
                return pe_step
            return simd_step

        current = {layer.name: cycles(layer, folds[layer.name]) for layer in layers}
        while True:
            over = [layer for layer in layers if current[layer.name] > budget and can_step(layer)]
            if not over:
                break
            slowest = max(over, key=lambda layer: current[layer.name])
            folds[slowest.name] = step(slowest)
            current[slowest.name] = cycles(slowest, folds[slowest.name])
        folding = cls(net, folds, target_fps=target_fps, clock_mhz=clock_mhz)
        folding.clock_source = "given"
        folding.check_rate(target_fps, clock_mhz)
        return folding

    # --- the value --------------------------------------------------------------------------
    def __getitem__(self, name: str) -> LayerFold:
        return self._folds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._folds)

    def __len__(self) -> int:
        return len(self._folds)

    def __eq__(self, other) -> bool:
        if isinstance(other, Folding):
            return self._folds == other._folds
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._folds.items()))

    def __repr__(self) -> str:
        return f"Folding({self})"

    def __str__(self) -> str:
        """The inline spelling, ``P1xS1,P2xS2,...``."""
        return ",".join(str(fold) for fold in self._folds.values())

    @property
    def net(self) -> NetworkIR:
        return self._net

    def pairs(self) -> list[tuple[int, int]]:
        """(PE, SIMD) per weight layer, in layer order."""
        return [(fold.pe, fold.simd) for fold in self._folds.values()]

    def to_dict(self) -> dict[str, dict]:
        """``{layer: {"pe": P, "simd": S}}``, with ``"ram_style"`` where it is not ``auto``:
        the JSON file spelling."""
        return {name: {"pe": fold.pe, "simd": fold.simd,
                       **({"ram_style": fold.ram_style} if fold.ram_style != "auto" else {})}
                for name, fold in self._folds.items()}

    def plans(self) -> dict[str, LayerPlan]:
        """The :class:`LayerPlan` of every weight layer at this folding."""
        return {layer.name: LayerPlan(layer, fold.pe, fold.simd, ram_style=fold.ram_style)
                for layer, fold in zip(self._net.weight_layers, self._folds.values(),
                                       strict=True)}

    def stage_cycles(self) -> dict[str, int]:
        """Cycles per frame of every stage of the generated pipeline, in dataflow order: the
        hardware's cycle model (:meth:`~hwbnn.hw.network.NetworkTop.cycle_model`, which
        also counts the input beats)."""
        from .network import NetworkTop  # the pipeline is built from a folding

        return NetworkTop(self._net, self).cycle_model()["stages"]

    @property
    def cycles_per_frame(self) -> int:
        """Initiation interval of the pipeline: its slowest stage."""
        return max(self.stage_cycles().values())

    @property
    def bottleneck(self) -> str:
        stages = self.stage_cycles()
        return max(stages, key=stages.get)

    def check_rate(self, target_fps: float, clock_mhz: float) -> None:
        """HwbnnError unless the pipeline reaches ``target_fps`` at ``clock_mhz``."""
        stages = self.stage_cycles()
        worst = max(stages, key=stages.get)
        budget = int(clock_mhz * 1e6 // target_fps)
        if stages[worst] > budget:
            raise HwbnnError(f"target {target_fps:g} frames/s at {clock_mhz:g} MHz cannot be "
                             f"met: at most {clock_mhz * 1e6 / stages[worst]:.0f} frames/s, "
                             f"limited by {worst} ({stages[worst]} cycles per frame > "
                             f"{budget})")


def layer_cycles(layer, pe: int, simd: int) -> int:
    """Cycles per frame of a weight layer's MVTU at this folding."""
    return LayerPlan(layer, pe, simd).cycles_per_frame


def lane_elements(net: NetworkIR) -> dict[str, int]:
    """Per weight layer, the most elements per frame of the threshold and add units whose
    lanes its PE sets (their cycles per frame are these elements / PE); empty for a chain."""
    from .network import NetworkTop  # the pipeline is built from a folding

    if not any(isinstance(layer, Add | Threshold) for layer in net.layers):
        return {}
    elementwise = {layer.name for layer in net.layers if isinstance(layer, Add | Threshold)}
    top = NetworkTop(net, Folding(net, {layer.name: (1, 1) for layer in net.weight_layers}))
    found: dict[str, int] = {}
    for stage in top.stages:
        layer = top.lane_layer(stage) if stage.layer in elementwise else None
        if layer is not None:
            found[layer] = max(found.get(layer, 0), stage.elements_in)
    return found


def _unfold(fold: LayerFold, simd_options: list[int], pe_options: list[int]
            ) -> LayerFold | None:
    """Next folding step for a layer: larger SIMD first, then larger PE; None at the end."""
    larger = [d for d in simd_options if d > fold.simd]
    if larger:
        return LayerFold(fold.pe, larger[0])
    larger = [d for d in pe_options if d > fold.pe]
    if larger:
        return LayerFold(larger[0], fold.simd)
    return None


def check_rate(target_fps: float | None, clock_mhz: float | None) -> None:
    """HwbnnError unless each of the frame rate and the clock is absent or positive."""
    if target_fps is not None:
        _positive(target_fps, "--target-fps")
    if clock_mhz is not None:
        _positive(clock_mhz, "--clock-mhz")


def _positive(value, what: str) -> None:
    if (isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
            or value == float("inf")):
        raise HwbnnError(f"{what} must be a positive number, not {value!r}")


def _entry(layer, entry) -> tuple:
    """(PE, SIMD, ram_style) of one entry; missing fields take the layer's own, else 1 (and
    ``auto``)."""
    own = (layer.pe or 1, layer.simd or 1, "auto")
    if entry is None:
        return own
    if isinstance(entry, LayerFold):
        return entry.pe, entry.simd, entry.ram_style
    if isinstance(entry, tuple | list) and len(entry) in (2, 3):
        return (*entry, "auto")[:3]
    if isinstance(entry, Mapping) and not set(entry) - {"pe", "simd", "ram_style"}:
        style = entry.get("ram_style", "auto")
        check_ram_style(style)
        return entry.get("pe", own[0]), entry.get("simd", own[1]), style
    raise HwbnnError(f"folding of layer {layer.name!r} must be {{\"pe\": P, \"simd\": S}} "
                     f"(and optionally \"ram_style\"), not {entry!r}")


def _looks_like_path(spec) -> bool:
    return isinstance(spec, Path) or str(spec).endswith(".json") or "/" in str(spec)


def _read_file(path: Path) -> dict:
    """Layers of a folding JSON file, a ``manifest.json`` or a design folder."""
    if path.is_dir():
        path = path / "manifest.json"
    what = f"folding file {str(path)!r}"
    content = fileformat.parse_json(fileformat.read_file(path, "folding file", MAX_FILE_BYTES),
                                    what)
    if isinstance(content, dict) and isinstance(content.get("folding"), dict):
        content = content["folding"]
    if not isinstance(content, dict):
        raise HwbnnError(f"folding file {str(path)!r} must hold an object of layers")
    return content


def _inline(text: str, net: NetworkIR) -> dict:
    """``"P1xS1,P2xS2,..."`` -> layers, one pair per weight layer in order."""
    parts = [part for part in text.split(",") if part.strip()]
    layers = net.weight_layers
    if len(parts) != len(layers):
        raise HwbnnError(f"--fold needs {len(layers)} PExSIMD pairs (one per matvec/conv "
                         f"layer), not {len(parts)}")
    folds = {}
    for part, layer in zip(parts, layers, strict=True):
        match = _PAIR.match(part)
        if not match:
            raise HwbnnError(f"--fold entries look like 4x16 (PE x SIMD) or 4x16:block, not "
                             f"{part.strip()!r}")
        style = (match.group(3) or "auto").lower()
        check_ram_style(style)
        folds[layer.name] = (int(match.group(1)), int(match.group(2)), style)
    return folds
