"""Off the CPU the parametrizations and max-norm skip shortcuts that read a value in Python (a device sync every step).

There is no GPU here, so two checks stand in for one: (1) the off-CPU code path, forced on the CPU, gives the same
weights and gradients as the CPU path; (2) forward and backward run on the 'meta' device, where any read of a value
(`.item()`, `bool(t)`, `.tolist()`) raises, and any tensor made on the wrong device would clash.
"""
import pytest
import torch
from torch import nn

import wscourse.max_norm, wscourse.scaling, wscourse.standardization, wscourse.weight_norm
from wscourse.max_norm import max_norm_, MaxNormCB
from wscourse.scaling import MaxScale, reparametrize, max_scale_with_gain, bake
from wscourse.standardization import WeightStandardization, ScaledWeightStandardization
from wscourse.weight_norm import WeightNorm

MODULES = (wscourse.scaling, wscourse.weight_norm, wscourse.standardization, wscourse.max_norm)

def gain_model():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    for layer in (m[0], m[3]): max_scale_with_gain(layer)
    return m

MAKERS = {
    'MaxScale (layer)': lambda: reparametrize(small(), MaxScale),
    'MaxScale (channel)': lambda: reparametrize(small(), lambda: MaxScale(dim=0)),
    'MaxScale + gain': gain_model,
    'WeightNorm': lambda: reparametrize(small(), WeightNorm),
    'WS': lambda: reparametrize(small(), WeightStandardization, types=nn.Conv2d),
    'scaled WS': lambda: reparametrize(small(), lambda: ScaledWeightStandardization(gamma=1.7), types=nn.Conv2d),
}

def small(): return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))

def weights_and_grads(make, zero_row=False):
    torch.manual_seed(0)
    model = make()
    if zero_row:                                             # a degenerate row: the fallbacks' edge case
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim > 1: p[0].zero_()
    x = torch.randn(8, 3, 6, 6)
    model(x).square().mean().backward()
    weights = [m.weight.detach().clone() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return weights, [p.grad.clone() for p in model.parameters()]

@pytest.mark.parametrize('name', list(MAKERS))
@pytest.mark.parametrize('zero_row', [False, True])
def test_off_cpu_path_equals_cpu_path(name, zero_row, monkeypatch):
    cpu_w, cpu_g = weights_and_grads(MAKERS[name], zero_row)
    for mod in MODULES: monkeypatch.setattr(mod, '_reads_are_free', lambda t: False)
    off_w, off_g = weights_and_grads(MAKERS[name], zero_row)
    for a, b in zip(cpu_w + cpu_g, off_w + off_g):
        assert a.isfinite().all() and b.isfinite().all()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

@pytest.mark.parametrize('name', list(MAKERS))
def test_parametrizations_run_on_meta_without_reading_values(name):
    "Built on the CPU, moved to 'meta', trained one step: no value is read back, nothing is left on the CPU."
    model = MAKERS[name]().to('meta')
    model(torch.randn(8, 3, 6, 6, device='meta')).sum().backward()
    assert all(p.device.type == 'meta' and p.grad.device.type == 'meta' for p in model.parameters())

def test_parametrizations_registered_on_a_meta_model():
    "Scaled WS's learnable gain lives on the weight's device, also when built first with n_out (on the CPU)."
    conv = nn.Conv2d(3, 4, 3, device='meta')
    torch.nn.utils.parametrize.register_parametrization(conv, 'weight', ScaledWeightStandardization(n_out=4))
    assert {p.device.type for p in conv.parameters()} == {'meta'}
    conv(torch.randn(1, 3, 5, 5, device='meta')).sum().backward()

def test_max_norm_off_cpu_path_is_bit_identical(monkeypatch):
    torch.manual_seed(0)
    w = torch.randn(6, 10) * torch.tensor([0.1, 3., 0.5, 10., 0.2, 1.]).unsqueeze(1)
    cpu = max_norm_(w.clone(), 1.5)
    for mod in MODULES: monkeypatch.setattr(mod, '_reads_are_free', lambda t: False)
    assert torch.equal(max_norm_(w.clone(), 1.5), cpu)
    inside = torch.randn(6, 10) * 0.01                     # nothing over the bound: multiplied by exactly 1
    assert torch.equal(max_norm_(inside.clone(), 1.5), inside)
    max_norm_(torch.randn(6, 10, device='meta'), 1.5)      # and no value read on another device

@pytest.mark.parametrize('dim', [0, 1])
def test_per_slice_gain_is_made_on_the_weights_device(dim):
    "max_scale_with_gain(dim=...) makes its per-slice gain where the weight lives (here 'meta'), and runs there."
    layer = max_scale_with_gain(nn.Conv2d(3, 4, 3, device='meta'), dim=dim)
    assert layer.parametrizations.weight[1].gain.is_meta
    layer(torch.randn(2, 3, 6, 6, device='meta')).sum().backward()
