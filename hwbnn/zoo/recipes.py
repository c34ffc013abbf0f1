"""Recipes of the trained zoo: model config, training settings and dataset per name.

Digits (8x8, embedded): the hidden width (32) is chosen where weight bits matter: at 3 seeds
the homogeneous 2-bit MLP beats the binary one by about 1.5 points (see README).
Fashion-MNIST (28x28, Debian's dataset-fashion-mnist): FINN's BNN-PYNQ shapes TFC (3x64) and SFC
(3x256) in W1A1, W1A2 and W2A2 (FINN's naming: weight bits, activation bits; W2 here is hwbnn's
homogeneous 2-bit residual binarization, A2 unsigned 2-bit activations) and LFC (3x1024) in
W1A1; TFC and SFC also as ternary, 2-bit residual and a 1.4-bit mix; a 3x32 MLP where weight
bits matter; a W1A1 CNN.
:data:`BASELINES` are float32 models of the same shapes, trained for the tables, never shipped.
A recipe without ``dataset`` trains on digits.
"""

MLP = {"arch": "mlp", "dense": [32, 32]}
CNN = {"arch": "cnn", "conv": [32, "M", 64, "M"], "dense": []}
RESNET = {"arch": "resnet", "stem": 16, "blocks": [[16, 1], [32, 2], [32, 1]],
          "edge_weights": "int8", "path": "int8", "path_step": 0.0625}
SETTINGS = {"epochs": 60, "batch_size": 64, "lr": 0.01}

RECIPES = {
    "digits_mlp_w1a1": {"config": {**MLP, "weights": "binary", "activations": "binary"},
                        "settings": SETTINGS},
    "digits_mlp_ternary": {"config": {**MLP, "weights": "ternary", "activations": "ternary"},
                           "settings": SETTINGS},
    "digits_mlp_w2": {"config": {**MLP, "weights": "w2", "activations": "binary"},
                      "settings": SETTINGS},
    "digits_mlp_mix14": {"config": {**MLP, "weights": "mix:1.4", "activations": "binary"},
                         "settings": SETTINGS},
    # The 1.4-bit mix with one bitwidth per 4 x 8 tile (4 outputs x 8 inputs): a folded unit
    # whose PE x SIMD tiles fit the groups skips absent planes, and unrolled its planes cover
    # whole runs of inputs (README, "Heterogeneous bitwidths in hardware").
    "digits_mlp_mix14_t4x8": {"config": {**MLP, "weights": "mix:1.4", "activations": "binary",
                                         "group": "4x8"}, "settings": SETTINGS},
    "digits_cnn_w1a1": {"config": {**CNN, "weights": "binary", "activations": "binary"},
                        "settings": SETTINGS},
    # Residual (hwbnn.quant.resnet): 8-bit stem, Bi-Real blocks of binary 3x3 convs on an int8
    # path (step 1/16), one stride-2 block with an avgpool + 8-bit 1x1 shortcut, global
    # average pooling, 8-bit last layer. Seed 0, 60 epochs: 18.7 s on one core.
    "digits_resnet_w1a1": {"config": {**RESNET, "weights": "binary", "activations": "binary"},
                           "settings": SETTINGS},
}

BASELINES = {
    "digits_mlp_float": {"config": {**MLP, "weights": "float", "activations": "float"},
                         "settings": SETTINGS},
}


def dataset_of(entry: dict) -> str:
    """The dataset a recipe trains on."""
    return entry.get("dataset", "digits")


# --- Fashion-MNIST --------------------------------------------------------------------------
FASHION = "fashion-mnist"
FC = {"tfc": [64, 64, 64], "sfc": [256, 256, 256], "lfc": [1024, 1024, 1024]}
# Adam with a cosine schedule, batch 64 (as the digits zoo). SFC W1A1, seed 0, 30 epochs:
# 88.48% at lr 0.003, 88.98% at 0.01, 89.04% at 0.02; 60 epochs at 0.01: 88.56%.
FASHION_SETTINGS = {"epochs": 30, "batch_size": 64, "lr": 0.02}
# LFC: 35 s per epoch for W1A1 on one core (SFC: 4 s), so fewer epochs.
LFC_SETTINGS = {**FASHION_SETTINGS, "epochs": 20}
# FINN's W/A pairs: weight spec, activation encoding.
PRECISIONS = {"w1a1": ("binary", "binary"), "w1a2": ("binary", "uint2"), "w2a2": ("w2", "uint2")}


def _fashion(config: dict, settings: dict | None = None) -> dict:
    return {"config": config, "settings": settings or FASHION_SETTINGS, "dataset": FASHION}


for _shape, _widths in FC.items():
    for _precision, (_weights, _activations) in PRECISIONS.items():
        RECIPES[f"fmnist_{_shape}_{_precision}"] = _fashion(
            {"arch": "mlp", "dense": _widths, "weights": _weights,
             "activations": _activations}, LFC_SETTINGS if _shape == "lfc" else None)
    BASELINES[f"fmnist_{_shape}_float"] = _fashion(
        {"arch": "mlp", "dense": _widths, "weights": "float", "activations": "float"},
        LFC_SETTINGS if _shape == "lfc" else None)
for _name, _weights, _activations in (("ternary", "ternary", "ternary"),
                                      ("w2", "w2", "binary"), ("mix14", "mix:1.4", "binary")):
    for _shape in ("tfc", "sfc"):
        RECIPES[f"fmnist_{_shape}_{_name}"] = _fashion(
            {"arch": "mlp", "dense": FC[_shape], "weights": _weights,
             "activations": _activations})


def expected_work(name: str) -> float:
    """A rough training cost of a recipe (for ordering jobs longest first): weights x epochs x
    the weight quantizer's relative cost (residual binarization with middle-out selection
    costs most)."""
    entry = {**RECIPES, **BASELINES}[name]
    config = entry["config"]
    pixels = 784 if dataset_of(entry) == FASHION else 64
    if config["arch"] == "resnet":  # 3x3 convs (a stride-2 block quarters the pixels)
        size, channels = pixels * 9 * config["stem"], config["stem"]
        for width, stride in config["blocks"]:
            pixels //= stride * stride
            size, channels = size + pixels * 9 * channels * width, width
        return size * entry["settings"]["epochs"]
    size, channels = 0, 1
    for item in config.get("conv", []):  # 3x3 convolutions at every pixel; pools quarter
        if item == "M":
            pixels //= 4
        else:
            size, channels = size + pixels * 9 * channels * item, item
    widths = [pixels * channels, *config["dense"], 10]
    size += sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    spec = config["weights"]
    factor = 3 if str(spec).startswith("mix") else 2 if spec in ("w2", "w3", "ternary") else 1
    return size * entry["settings"]["epochs"] * factor

# A small W1A1 CNN: conv3x3(32)-pool-conv3x3(64)-pool-dense(256)-dense(10), 8-bit pixels into
# the first convolution. Seed 0: 90.63% (1,217 s on one core); without the hidden dense layer,
# 10 epochs gave 90.46%. No data augmentation.
RECIPES["fmnist_cnn_w1a1"] = _fashion({"arch": "cnn", "conv": [32, "M", 64, "M"], "dense": [256],
                                       "weights": "binary", "activations": "binary"})
BASELINES["fmnist_cnn_float"] = _fashion({"arch": "cnn", "conv": [32, "M", 64, "M"],
                                          "dense": [256], "weights": "float",
                                          "activations": "float"})
# Where weight bits matter on Fashion-MNIST with binary activations: 3x32 (seed 0 / 1: 2-bit
# weights beat binary by 0.81 / 1.70 points; at TFC's 3x64 by 0.47, at SFC's 3x256 by 0.18).
for _name, _weights in (("w1a1", "binary"), ("w2", "w2"), ("mix14", "mix:1.4")):
    RECIPES[f"fmnist_mlp32_{_name}"] = _fashion({"arch": "mlp", "dense": [32, 32, 32],
                                                 "weights": _weights, "activations": "binary"})
BASELINES["fmnist_mlp32_float"] = _fashion({"arch": "mlp", "dense": [32, 32, 32],
                                            "weights": "float", "activations": "float"})
