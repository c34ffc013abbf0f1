"""Per-layer summary of a NetworkIR: encodings, bit mix, parameters, bits, operations.

Built from small :class:`LayerSummary` objects (the Larq ``summary`` way) and printed as a
table; ``as_dict`` gives the same figures for ``--json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .ir.encoding import encoding_bits, encoding_levels, encoding_range
from .ir.network import (
    Add,
    AvgPool,
    GlobalAvgPool,
    MaxPool,
    NetworkIR,
    Threshold,
    accumulator_width,
)

FLOAT_BITS = 32


@dataclass
class LayerSummary:
    """Figures of one layer."""

    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    in_encoding: str
    out_encoding: str
    weights: str
    bit_mix: str
    params: int
    weight_bits: int
    ops: dict
    acc_width: int | None
    thresholds: int
    threshold_bits: int
    inputs: tuple | None = None  # the layers it reads, in a graph


def _mix_text(mix: dict[int, float]) -> str:
    return "/".join(f"{round(100 * mix[b])}" for b in (1, 2, 3)) + "%"


def summarize_layer(layer) -> LayerSummary:
    """Profile one layer; operations are counted per frame."""
    out_encoding = layer.out_encoding or "scores"
    if isinstance(layer, MaxPool):
        h, w, c = layer.out_shape
        return LayerSummary(layer.name, "maxpool", tuple(layer.in_shape), layer.out_shape,
                            layer.in_encoding, out_encoding, "-", "-", 0, 0,
                            {"max compares": h * w * c * (layer.kernel ** 2 - 1)}, None, 0, 0,
                            layer.inputs)
    if isinstance(layer, Add | Threshold | AvgPool | GlobalAvgPool):
        return _summarize_unit(layer)
    weights = layer.weights
    params = layer.mh * layer.mw
    pixels = layer.output_pixels
    ops = {f"{layer.in_encoding} x {weights.kind} MAC": params * pixels}
    if weights.kind == "residual":
        ops["binary plane MAC"] = int(weights.bitwidths().sum()) * pixels
    thresholds = 0 if layer.thresholds is None else int(layer.thresholds.size)
    if thresholds:
        ops["threshold compares"] = thresholds * pixels
    mix = weights.mix()
    average = weights.bitwidths().mean()
    kind = weights.kind if weights.kind != "residual" else f"residual {average:.2f}b"
    return LayerSummary(
        layer.name, layer.kind, tuple(layer.in_shape), tuple(layer.out_shape),
        layer.in_encoding, out_encoding, kind, _mix_text(mix) if mix else "-", params,
        int(weights.bitwidths().sum()), ops, layer.acc_width,
        encoding_levels(layer.out_encoding) if thresholds else 0,
        thresholds * layer.acc_width, layer.inputs)


def _summarize_unit(layer) -> LayerSummary:
    """A layer without weights of a graph: an add, a threshold or an average pool."""
    elements = _size(layer.out_shape)
    in_encoding = "+".join(layer.in_encodings)
    if isinstance(layer, AvgPool | GlobalAvgPool):
        return LayerSummary(layer.name, layer.kind, tuple(layer.in_shape), layer.out_shape,
                            in_encoding, layer.out_encoding, "-", "-", 0, 0,
                            {"window sum adds": elements * (layer.window - 1)}, None, 0, 0,
                            layer.inputs)
    ops = {"adds": elements} if isinstance(layer, Add) else {}
    thresholds = layer.thresholds
    width = (layer.acc_width if isinstance(layer, Add)
             else accumulator_width(encoding_range(layer.in_encoding), thresholds))
    levels = 0 if thresholds is None else encoding_levels(layer.out_encoding)
    if levels:
        ops["threshold compares"] = elements * levels
    return LayerSummary(layer.name, layer.kind, tuple(layer.in_shape), tuple(layer.out_shape),
                        in_encoding, layer.out_encoding, "-", "-", 0, 0, ops,
                        width if isinstance(layer, Add) else None, levels,
                        0 if thresholds is None else int(thresholds.size) * width,
                        layer.inputs)


@dataclass
class NetworkSummary:
    """Figures of a network: its layers and the totals."""

    name: str
    input_shape: tuple
    input_encoding: str
    layers: list[LayerSummary]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def weight_bits(self) -> int:
        return sum(layer.weight_bits for layer in self.layers)

    @property
    def threshold_bits(self) -> int:
        return sum(layer.threshold_bits for layer in self.layers)

    @property
    def ops(self) -> dict:
        total: dict[str, int] = {}
        for layer in self.layers:
            for key, value in layer.ops.items():
                total[key] = total.get(key, 0) + value
        return total

    def as_dict(self) -> dict:
        return {
            "model": self.name,
            "input_shape": list(self.input_shape),
            "input_encoding": self.input_encoding,
            "input_bits_per_frame": encoding_bits(self.input_encoding) * _size(self.input_shape),
            "layers": [_layer_dict(layer) for layer in self.layers],
            "totals": {
                "params": self.params,
                "weight_bits": self.weight_bits,
                "threshold_bits": self.threshold_bits,
                "float32_bits": FLOAT_BITS * self.params,
                "weight_compression_vs_float32": FLOAT_BITS * self.params / self.weight_bits,
                "model_compression_vs_float32":
                    FLOAT_BITS * self.params / (self.weight_bits + self.threshold_bits),
                "ops": self.ops,
            },
        }


def _layer_dict(layer: LayerSummary) -> dict:
    """A layer's figures, its name under ``layer`` as in every per-layer list."""
    figures = asdict(layer)
    if figures["inputs"] is None:  # a chain's layers read the previous one
        del figures["inputs"]
    return {"layer": figures.pop("name"), **figures}


def _size(shape) -> int:
    size = 1
    for extent in shape:
        size *= extent
    return size


def summarize(net: NetworkIR) -> NetworkSummary:
    """Profile every layer of a network (a chain or a graph)."""
    return NetworkSummary(net.name, tuple(net.input_shape), net.input_encoding,
                          [summarize_layer(layer) for layer in net.layers])


def format_table(prof: NetworkSummary) -> str:
    """The summary as a fixed-width text table."""
    # A graph's layers name what they read (an add two layers); a chain's read the previous.
    graph = any(layer.inputs is not None for layer in prof.layers)
    header = ("layer", "kind", *(("inputs",) if graph else ()), "in -> out", "encoding",
              "weights", "mix 1/2/3b", "params", "w bits", "acc", "thr", "MACs")
    rows = []
    for layer in prof.layers:
        shape = "x".join(map(str, layer.in_shape)) + " -> " + "x".join(map(str, layer.out_shape))
        macs = next(iter(layer.ops.values()), 0)
        inputs = (",".join(layer.inputs or ("previous",)),) if graph else ()
        rows.append((layer.name, layer.kind, *inputs, shape,
                     f"{layer.in_encoding}->{layer.out_encoding}",
                     layer.weights, layer.bit_mix, f"{layer.params:,}", f"{layer.weight_bits:,}",
                     "-" if layer.acc_width is None else f"{layer.acc_width}b",
                     str(layer.thresholds), f"{macs:,}"))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width)
                       for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    totals = prof.as_dict()["totals"]
    lines += [
        "",
        f"model {prof.name}: input {'x'.join(map(str, prof.input_shape))} {prof.input_encoding}",
        f"parameters {totals['params']:,}; weight bits {totals['weight_bits']:,} "
        f"({totals['weight_bits'] / 8 / 1024:.1f} KiB); threshold bits "
        f"{totals['threshold_bits']:,}",
        f"compression vs float32: weights {totals['weight_compression_vs_float32']:.1f}x, "
        f"weights+thresholds {totals['model_compression_vs_float32']:.1f}x",
        "operations per frame: " + ", ".join(f"{k} {v:,}" for k, v in totals["ops"].items()),
    ]
    return "\n".join(lines)
