"""The torch importer's graphs compute what the module computes (float64), and refuse what
they cannot express with a ModelError naming the module path or operation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from verify.errors import ModelError
from verify.ir.evaluate import run_flat
from verify.ir.torch_import import graph_from_module


def _bn(cls: type[nn.Module], channels: int) -> nn.Module:
    bn = cls(channels)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    return bn


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.a = nn.Conv2d(3, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 1)
        self.head = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return self.head(self.a(h) + self.b(h) - h)


class Functional(nn.Module):
    """Functional and method calls, with shapes from x.size(0) and x.shape[0]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(54, 3)
        self.register_buffer("offset", torch.randn(1, 2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x) * 2.0 + self.offset)
        h = F.leaky_relu(1.5 - h, 0.2) / 4
        h = torch.cat([h, torch.sigmoid(h), h.tanh()], dim=1)  # [N, 6, 3, 3]
        h = h.permute(0, 2, 3, 1).transpose(1, 2).contiguous()
        h = h.view(h.size(0), -1)
        h = torch.tanh(h.reshape(x.shape[0], 6, 9)).flatten(1)
        h = torch.flatten(h.reshape(-1, 2, 27), 1) + 0.5
        return self.fc(-h)


class SoftmaxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Dropout(0.3), nn.Linear(5, 3), nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.body(x), dim=-1)


MODULES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "linear": (lambda: nn.Linear(5, 3), (5,)),
    "linear_3d": (lambda: nn.Linear(4, 2), (3, 4)),
    "conv1d": (lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1, dilation=2), (2, 9)),
    "conv1d_same": (lambda: nn.Conv1d(2, 4, 4, padding="same", groups=2), (2, 7)),
    "conv2d": (lambda: nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), bias=False), (2, 5, 5)),
    "conv2d_groups_dilation": (lambda: nn.Conv2d(4, 6, 2, groups=2, dilation=2, padding="valid"), (4, 5, 5)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), (2, 3, 3)),
    "conv_transpose2d_groups": (lambda: nn.ConvTranspose2d(4, 2, 2, groups=2, dilation=2), (4, 3, 3)),
    "conv_transpose1d": (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2), (2, 4)),
    "batchnorm1d": (lambda: _bn(nn.BatchNorm1d, 5), (5,)),
    "batchnorm1d_3d": (lambda: _bn(nn.BatchNorm1d, 3), (3, 4)),
    "batchnorm2d": (lambda: _bn(nn.BatchNorm2d, 3), (3, 2, 2)),
    "relu": (nn.ReLU, (6,)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.3), (6,)),
    "sigmoid": (nn.Sigmoid, (2, 3)),
    "tanh": (nn.Tanh, (2, 3)),
    "maxpool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 9)),
    "maxpool2d": (lambda: nn.MaxPool2d(2), (2, 4, 4)),
    "maxpool2d_pads_dilation": (lambda: nn.MaxPool2d(3, stride=2, padding=1, dilation=(1, 2)), (2, 7, 7)),
    "maxpool2d_ceil_noop": (lambda: nn.MaxPool2d(2, ceil_mode=True), (2, 4, 4)),
    "avgpool1d": (lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (2, 8)),
    "avgpool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 6, 6)),
    "avgpool2d_exclude_pad": (lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), (1, 4, 4)),
    "adaptive_avgpool2d": (lambda: nn.AdaptiveAvgPool2d((1, 1)), (3, 4, 5)),
    "adaptive_avgpool2d_divides": (lambda: nn.AdaptiveAvgPool2d((2, 1)), (3, 4, 5)),
    "flatten": (nn.Flatten, (2, 3, 4)),
    "flatten_partial": (lambda: nn.Flatten(2, 3), (2, 3, 4)),
    "dropout_identity": (lambda: nn.Sequential(nn.Dropout(0.5), nn.Identity(), nn.Linear(3, 2)), (3,)),
    "softmax": (lambda: nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)), (4,)),
    "cnn": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), _bn(nn.BatchNorm2d, 2), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Flatten(), nn.Linear(8, 3)), (1, 6, 6)),
    "residual": (Residual, (2, 4, 4)),
    "functional": (Functional, (1, 5, 5)),
    "softmax_head": (SoftmaxHead, (4,)),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_agrees_with_the_module(name: str) -> None:
    torch.manual_seed(0)
    build, shape = MODULES[name]
    module = build()
    graph = graph_from_module(module, shape)
    assert graph.input_shape == shape and len({n.name for n in graph.nodes}) == len(graph.nodes)
    x = torch.randn(5, *shape, dtype=torch.float64)
    with torch.no_grad():
        ref = module.double().eval()(x).reshape(5, -1).numpy()
    np.testing.assert_allclose(run_flat(graph, x.reshape(5, -1).numpy()), ref, rtol=1e-6, atol=1e-6)


def test_names_origins_and_aliases() -> None:
    torch.manual_seed(0)
    graph = graph_from_module(SoftmaxHead(), (4,))
    assert [(n.op, n.name, n.origin) for n in graph.nodes] == [
        ("linear", "body_0", ("body.0",)), ("relu", "body_1", ("body.1",)), ("linear", "body_3", ("body.3",)),
        ("softmax", "softmax", ("softmax",))]
    assert graph.nodes[2].inputs == ("body_1",) and graph.output == "softmax" and graph.input.name == "x"
    assert graph.nodes[0].attrs["W"].dtype == np.float64


def test_the_callers_module_is_not_changed() -> None:
    module = nn.Sequential(nn.Linear(3, 3), _bn(nn.BatchNorm1d, 3)).train()
    before = module[1].running_mean.clone()
    graph_from_module(module, (3,))
    assert module.training and torch.equal(module[1].running_mean, before)


class _Exp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)


class _ViewOne(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(1, -1)


class _SoftmaxMiddle(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(F.softmax(x, dim=1))


class _CatBatch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x])


class _Product(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.relu(x)


class _TwoOutputs(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, torch.relu(x)


REFUSALS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], tuple[str, ...]]] = {
    "unsupported_module": (lambda: nn.Sequential(nn.Linear(3, 3), nn.GELU()), (3,), ("'1'", "GELU", "supported")),
    "unsupported_function": (_Exp, (3,), ("'exp'", "torch.exp", "not supported")),
    "view_without_batch": (_ViewOne, (3,), ("'view'", "batch")),
    "softmax_not_last": (_SoftmaxMiddle, (3,), ("softmax", "last")),
    "cat_batch": (_CatBatch, (3,), ("'cat'", "batch")),
    "product_of_variables": (_Product, (3,), ("'mul'", "product")),
    "two_outputs": (_TwoOutputs, (3,), ("2 values",)),
    "reflect_padding": (lambda: nn.Conv1d(1, 1, 3, padding=1, padding_mode="reflect"), (1, 5), ("reflect",)),
    "ceil_mode": (lambda: nn.MaxPool1d(2, ceil_mode=True), (1, 5), ("ceil_mode",)),
    "flatten_batch": (lambda: nn.Flatten(0), (3,), ("batch",)),
    "wrong_input_shape": (lambda: nn.Linear(3, 2), (4,), ("does not run",)),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_name_the_module_or_op(case: str) -> None:
    build, shape, parts = REFUSALS[case]
    module = build()
    with pytest.raises(ModelError) as info:
        graph_from_module(module, shape)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{type(module).__name__}: "), message
    for part in parts:
        assert part in message, message
