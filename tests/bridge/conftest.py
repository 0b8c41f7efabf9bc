"""The small program the bridge tests of single rules edit: a linear layer, a dynamic batch."""

import pytest
import torch


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x).relu() * x.shape[0]


@pytest.fixture(scope="module")
def small():
    x = torch.randn(5, 4)
    ep = torch.export.export(Small(), (x,), dynamic_shapes={"x": {0: torch.export.Dim("n", min=2, max=64)}})
    return ep, x
