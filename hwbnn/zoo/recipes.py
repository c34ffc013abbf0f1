"""Recipes of the trained digits zoo: model config and training settings per name.

The hidden width (32) is chosen where weight bits matter on digits: at 3 seeds the
homogeneous 2-bit MLP beats the binary one by about 1.5 points (see README).
``export: False`` marks a float32 baseline that is trained for comparison, never shipped.
"""

MLP = {"arch": "mlp", "dense": [32, 32]}
CNN = {"arch": "cnn", "conv": [32, "M", 64, "M"], "dense": []}
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
    "digits_cnn_w1a1": {"config": {**CNN, "weights": "binary", "activations": "binary"},
                        "settings": SETTINGS},
}

BASELINES = {
    "digits_mlp_float": {"config": {**MLP, "weights": "float", "activations": "float"},
                         "settings": SETTINGS},
}
