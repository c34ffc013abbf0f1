"""A BNN in plain PyTorch (no hwbnn or Brevitas layers), trained on digits for a few seconds,
then converted to an integer hwbnn model whose labels equal torch's on the digits test split.

    python examples/plain_torch_bnn.py
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import hwbnn
from hwbnn import data

SCORE_SCALE = 0.125  # a temperature for the loss; one scale for all classes, so argmax keeps


class SignSTE(torch.autograd.Function):
    """sign with +1 at 0; the gradient passes where |x| <= 1 (Hubara et al.'s clipped STE)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1)


class BinaryLinear(nn.Linear):
    """A Linear layer whose weights are binarized by sign in forward (float latent weights)."""

    def forward(self, x):
        return F.linear(x, SignSTE.apply(self.weight))


class DigitsBNN(nn.Module):
    """64 pixels (scaled to [0, 1]) -> 128 -> 64 binary neurons -> 10 scores."""

    def __init__(self):
        super().__init__()
        self.fc1, self.bn1 = BinaryLinear(64, 128, bias=False), nn.BatchNorm1d(128)
        self.fc2, self.bn2 = BinaryLinear(128, 64, bias=False), nn.BatchNorm1d(64)
        self.fc3 = BinaryLinear(64, 10, bias=False)

    def forward(self, x):
        x = SignSTE.apply(self.bn1(self.fc1(x)))
        x = SignSTE.apply(self.bn2(self.fc2(x)))
        return self.fc3(x) * SCORE_SCALE


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 30) -> None:
    """Adam on seeded mini-batches (a few seconds); latent weights clipped to [-1, 1]."""
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            F.cross_entropy(net(x[batch]), y[batch]).backward()
            optimizer.step()
            for module in net.modules():
                if isinstance(module, BinaryLinear):
                    module.weight.data.clamp_(-1, 1)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    digits = data.load("digits")
    train_x = torch.from_numpy(digits.train_x.reshape(len(digits.train_x), -1) / 16).float()
    net = DigitsBNN()
    train(net, train_x, torch.from_numpy(digits.train_y))

    # The module takes pixels / 16: integer uint5 frames times 1/16.
    model = hwbnn.convert(net.eval(), train_x[:1], input_encoding="uint5", input_scale=1 / 16,
                          name="plain_torch_bnn")
    print(model)
    frames = model.frames("digits")  # the test split, flattened to the model's 64 inputs
    labels = model.predict(frames)
    with torch.no_grad():
        torch_labels = net(torch.from_numpy(frames / 16).float()).argmax(1).numpy()
    agreement = float(np.mean(labels == torch_labels))
    print(f"torch accuracy {np.mean(torch_labels == digits.test_y):.4f}, hwbnn accuracy "
          f"{model.accuracy('digits'):.4f}, labels equal on {agreement:.2%} of "
          f"{len(frames)} test frames")
    assert agreement == 1.0


if __name__ == "__main__":
    main()
