"Property tests of weight standardization (lesson 09): per-channel mean 0 and variance 1, finite at zero, exact gradients."
import copy

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.nn.utils import parametrize

from wscourse.standardization import WeightStandardization, ScaledWeightStandardization, StdConv2d, standardize
from wscourse.scaling import bake, reparametrize

@st.composite
def conv_weights(draw, dtype=torch.float64):
    out_, in_, k = draw(st.integers(1, 8)), draw(st.integers(1, 6)), draw(st.sampled_from([1, 3]))
    if in_ * k * k < 2: in_ = 2
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    scale = draw(st.floats(1e-2, 1e2))
    return torch.randn(out_, in_, k, k, generator=g, dtype=dtype) * scale

SETTINGS = settings(max_examples=40, deadline=None)

@given(conv_weights())
@SETTINGS
def test_per_channel_mean_zero_variance_one(w):
    s = WeightStandardization(eps=1e-12)(w)
    assert s.shape == w.shape and s.dtype == w.dtype
    torch.testing.assert_close(s.mean(dim=(1, 2, 3)), torch.zeros(w.shape[0], dtype=w.dtype), atol=1e-9, rtol=0)
    var = w.var(dim=(1, 2, 3), correction=0)              # eps sits inside the root: a row's variance is var / (var + eps), 1 unless var ~ eps
    torch.testing.assert_close(s.var(dim=(1, 2, 3), correction=0), var / (var + 1e-12), atol=1e-9, rtol=0)

@given(conv_weights(), st.floats(0.1, 3))
@SETTINGS
def test_scaled_form_has_variance_gamma_squared_over_fan(w, gamma):
    p = ScaledWeightStandardization(gamma=gamma, eps=1e-12)
    p.right_inverse(w)
    fan = w[0].numel()
    v = p(w).var(dim=(1, 2, 3), correction=0) * fan
    torch.testing.assert_close(v, torch.full_like(v, gamma ** 2), atol=1e-6, rtol=1e-6)

@settings(deadline=None)                     # a shared, loaded machine can take over 200 ms for one example
@given(st.integers(1, 6), st.integers(2, 6), st.sampled_from(['ws', 'sws']))
def test_zero_weights_finite_outputs_and_gradients(out_, in_, kind):
    conv = nn.Conv2d(in_, out_, 3)
    with torch.no_grad(): conv.weight.zero_()
    parametrize.register_parametrization(conv, 'weight', WeightStandardization() if kind == 'ws' else ScaledWeightStandardization())
    y = conv(torch.randn(2, in_, 5, 5))
    y.sum().backward()
    assert y.isfinite().all()
    assert all(p.grad.isfinite().all() for p in conv.parameters())

@given(conv_weights())
@settings(max_examples=15, deadline=None)
def test_gradcheck_float64(w):
    w = w.requires_grad_()
    assert torch.autograd.gradcheck(WeightStandardization(), (w,))
    p = ScaledWeightStandardization(gamma=1.7).double(); p.right_inverse(w.detach())
    assert torch.autograd.gradcheck(p, (w,))

def test_one_element_fan_refused():
    for make in (lambda: StdConv2d(1, 4, 1), lambda: reparametrize(nn.Sequential(nn.Conv2d(1, 3, 1)), ScaledWeightStandardization)):
        with pytest.raises(ValueError, match='fan is 1'): make()

def test_bake_state_dict_and_deepcopy():
    torch.manual_seed(0)
    model = nn.Sequential(StdConv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    x = torch.randn(2, 3, 9, 9)
    out = model(x)
    twin = copy.deepcopy(model)
    torch.testing.assert_close(twin(x), out)
    fresh = nn.Sequential(StdConv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(x), out)
    bake(model)
    assert not parametrize.is_parametrized(model[0])
    torch.testing.assert_close(model(x), out)

def test_bad_eps_and_dtype():
    with pytest.raises(ValueError, match="eps must be a positive finite number"): WeightStandardization(eps=0)
    with pytest.raises(TypeError, match='floating-point'): standardize(torch.ones(3, 3, dtype=torch.int64))

def test_scaled_gain_round_trips_through_state_dict():
    def build():
        torch.manual_seed(1)
        return reparametrize(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)), ScaledWeightStandardization)
    model = build()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith('gain'): p.mul_(torch.linspace(0.5, 2, p.numel()))
    x = torch.randn(2, 3, 9, 9)
    out = model(x)
    fresh = build()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(x), out)
    torch.testing.assert_close(copy.deepcopy(model)(x), out)
    torch.testing.assert_close(bake(model)(x), out)
