"""The closed-form parametrizations equal the straightforward formulas (outputs and gradients, float64, within 1e-6
relative), on random shapes, including tied maxima, dead rows, zero gains and weights below eps; and the eval-mode
weight cache (`CachedInEval`) is used exactly when it is safe."""
import copy
from functools import partial
from types import SimpleNamespace

import math
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.nn.utils import parametrize

from wscourse.scaling import MaxScale, max_scale, reparametrize
from wscourse.weight_norm import WeightNorm, norm_except
from wscourse.standardization import (WeightStandardization, ScaledWeightStandardization, ScaledStandardizeFunction, standardize,
                                      scaled_standardize, RELU_GAMMA)
from wscourse.hooks import ActivationStats, bin_counts, floor_fraction, mean_std

SETTINGS = settings(max_examples=40, deadline=None)
TOL = 1e-6

@st.composite
def weights(draw, min_fan=1):
    "A float64 weight shaped like a Linear (out, in) or a conv (out, in, k, k), with some degenerate rows."
    out_, in_ = draw(st.integers(1, 7)), draw(st.integers(1, 6))
    shape = (out_, in_) if draw(st.booleans()) else (out_, in_, *[draw(st.sampled_from([1, 2, 3]))] * 2)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    w = torch.randn(shape, generator=g, dtype=torch.float64) * draw(st.sampled_from([1e-3, 1., 50.]))
    if w[0].numel() < min_fan: w = torch.randn(out_, min_fan, generator=g, dtype=torch.float64)
    kind = draw(st.sampled_from(['random', 'tied', 'zero row', 'constant row', 'tiny']))
    flat = w.view(out_, -1)
    if kind == 'tied' and flat.shape[1] > 1: flat[:, -1] = -flat.abs().amax(1); flat[:, 0] = flat[:, -1].abs()
    if kind == 'zero row': flat[0] = 0
    if kind == 'constant row': flat[-1] = 0.7
    if kind == 'tiny': w.mul_(1e-15)
    return w

def assert_rel_close(a, b, what, natural_scale=0.):
    "max|a - b| <= TOL times the larger of max|b| and `natural_scale` (the size a nonzero result would have)."
    scale = max(b.abs().max().item(), natural_scale, 1e-300)
    err = (a - b).abs().max().item() / scale
    assert err <= TOL, f"{what}: relative difference {err:.2e}"

def compare(fast, slow, *tensors):
    "Outputs and gradients (for one fixed random upstream gradient) of `fast` and `slow` on copies of `tensors`."
    a = [t.clone().requires_grad_() for t in tensors]
    b = [t.clone().requires_grad_() for t in tensors]
    ya, yb = fast(*a), slow(*b)
    G = torch.randn(yb.shape, dtype=yb.dtype, generator=torch.Generator().manual_seed(0))
    (ya * G).sum().backward(); (yb * G).sum().backward()
    assert ya.shape == yb.shape and ya.dtype == yb.dtype
    assert_rel_close(ya.detach(), yb.detach(), 'output', 1e-3)     # rounding in a row that should be exactly 0 is ~1e-14
    for i, (x, y) in enumerate(zip(a, b)):                       # a gradient's natural size: |G| · |y| / |x|
        natural = G.abs().max().item() * max(yb.abs().max().item(), 1e-3) / max(x.abs().max().item(), 1e-300)
        assert_rel_close(x.grad, y.grad, f'gradient {i}', natural)

@given(weights(), st.sampled_from([None, 0, 1]), st.booleans())
@SETTINGS
def test_max_scale_matches_formula(w, dim, detach):
    compare(MaxScale(dim, detach), lambda t: max_scale(t, dim, detach), w)

@given(weights(), st.sampled_from([None, 0, 1]), st.floats(0.1, 3.))
@SETTINGS
def test_weight_norm_matches_formula(v, dim, g_scale):
    g = norm_except(v, dim).detach() * g_scale
    compare(WeightNorm(dim), lambda g_, v_: g_ * (v_ / norm_except(v_, dim)), g, v)

@given(weights(min_fan=2))
@SETTINGS
def test_weight_standardization_matches_formula(w):
    compare(WeightStandardization(), standardize, w)

@given(weights(min_fan=2), st.booleans())
@SETTINGS
def test_scaled_weight_standardization_matches_formula(w, zero_gain):
    gain = torch.rand(w.shape[0], dtype=torch.float64) + 0.5
    if zero_gain: gain[0] = 0
    rows = lambda t: t.reshape(t.shape[0], -1)
    compare(lambda w_, g_: ScaledStandardizeFunction.apply(rows(w_), g_, RELU_GAMMA, 1e-4).view(w_.shape),
            lambda w_, g_: scaled_standardize(w_, g_, RELU_GAMMA, 1e-4), w, gain)
    sws = ScaledWeightStandardization(RELU_GAMMA, n_out=w.shape[0]).double()
    with torch.no_grad(): sws.gain.copy_(gain)
    compare(sws, lambda w_: scaled_standardize(w_, gain, RELU_GAMMA, 1e-4), w)      # the parametrization itself

def test_second_derivative_is_an_error_not_a_wrong_answer():
    for p, args in ((MaxScale(), (torch.randn(3, 4, requires_grad=True),)),
                    (WeightNorm(None), (torch.rand((), requires_grad=True), torch.randn(3, 4, requires_grad=True))),  # dim=0 runs torch's kernel
                    (ScaledWeightStandardization(n_out=3), (torch.zeros(3, 4).index_fill_(0, torch.tensor([1]), 1.)  # σ² below eps:
                                                            .requires_grad_(),))):                                  # the closed form
        y = p(*args)
        g = torch.autograd.grad(y.pow(2).sum(), args[-1], create_graph=True)[0]
        with pytest.raises(RuntimeError, match='once_differentiable'): g.sum().backward()

def test_scaled_ws_second_derivative_through_group_norm():
    "Away from the eps floor scaled WS runs torch's group norm, whose second derivative is the formula's."
    torch.manual_seed(0)
    w = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    sws = ScaledWeightStandardization(RELU_GAMMA, n_out=4).double()
    with torch.no_grad(): sws.gain.uniform_(0.5, 1.5)
    assert torch.autograd.gradgradcheck(sws, (w,))
    assert torch.autograd.gradgradcheck(lambda w_: scaled_standardize(w_, sws.gain, RELU_GAMMA, 1e-4), (w,))
    G = torch.randn_like(w)
    def hvp(f):
        g, = torch.autograd.grad((f(w) * G).sum(), w, create_graph=True)
        return torch.autograd.grad(g.pow(2).sum(), w)[0]
    torch.testing.assert_close(hvp(sws), hvp(lambda w_: scaled_standardize(w_, sws.gain, RELU_GAMMA, 1e-4)), rtol=1e-9, atol=1e-12)

PARAMETRIZATIONS = [MaxScale, WeightNorm, WeightStandardization, lambda: ScaledWeightStandardization(RELU_GAMMA)]

@pytest.mark.parametrize('make', PARAMETRIZATIONS)
def test_eval_cache_is_used_only_when_safe(make):
    torch.manual_seed(0)
    model = reparametrize(nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)), make, types=nn.Conv2d)
    conv, x = model[0], torch.randn(5, 2, 6, 6)
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert conv.weight is conv.weight                         # computed once
    assert conv.weight is not conv.weight                         # gradients on: never cached
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(x).square().mean().backward(); opt.step()               # an in-place update of the stored tensors
    assert conv.parametrizations.weight[0]._cache is None         # training dropped it
    model.eval()
    with torch.no_grad():
        cached = model(x)
        fresh = copy.deepcopy(model)                              # the same model, weights recomputed from scratch
        for m in fresh.modules():
            if hasattr(m, 'clear_cache'): m.clear_cache()
        torch.testing.assert_close(cached, fresh(x))
        assert not torch.allclose(cached, out)                    # the step was seen
    with torch.inference_mode():
        torch.testing.assert_close(model(x), cached)

def test_bin_counts_and_activation_stats_record_match_torch():
    torch.manual_seed(0)
    x = torch.randn(4000) * 4 + 1
    torch.testing.assert_close(bin_counts(x, 25, -3., 5.), torch.histc(x[x < 5], 25, -3., 5.))
    x64 = x.double()
    torch.testing.assert_close(bin_counts(x64, 25, -3., 5.), torch.histc(x64[x64 < 5], 25, -3., 5.).float())
    stats = ActivationStats(bins=25, hist_range=(-3., 5.))
    for t in (torch.relu(x).view(40, 100), torch.relu(x).view(40, 100)[:, :50], torch.tensor([3.])):   # incl. non-contiguous
        h = SimpleNamespace(means=[], stds=[], deads=[], hists=[])
        stats._record(h, None, None, t)
        assert abs(h.means[0] - t.mean().item()) < 1e-5
        if t.numel() > 1: assert abs(h.stds[0] - t.std().item()) < 1e-5
        else: assert h.stds[0] != h.stds[0]                       # NaN, like torch.std of one value
        assert h.deads[0] == floor_fraction(t)
        torch.testing.assert_close(h.hists[0], torch.histc(t, 25, -3., 5.))

@given(st.lists(st.floats(-10, 10, width=32), min_size=1, max_size=300), st.one_of(st.integers(1, 12), st.integers(60, 80)))
@SETTINGS
def test_bin_counts_lanes_match_histc(values, bins):
    "Lane-split counting gives torch.histc's counts below `high`, whatever the length and the number of bins (byte or int32 counters)."
    x = torch.tensor(values)
    pos = (x.double() + 2) * bins / 5                   # values within rounding of a bin edge may land either side
    x = x[(pos - pos.round()).abs() > 1e-5]
    torch.testing.assert_close(bin_counts(x, bins, -2., 3.), torch.histc(x[x < 3], bins, -2., 3.))

def test_activation_stats_buffers_per_dtype_shared_across_hooks():
    stats = ActivationStats(bins=10, hist_range=(0., 1.))
    for t in (torch.rand(50), torch.rand(7, dtype=torch.float64), torch.rand(20), torch.rand(80, dtype=torch.float64)):
        h = SimpleNamespace(means=[], stds=[], deads=[], hists=[])
        stats._record(h, None, None, t)
        torch.testing.assert_close(h.hists[0], torch.histc(t, 10, 0., 1.).float())
    assert {k[0]: b[0].numel() for k, b in stats._buffers.items()} == {torch.float32: 50, torch.float64: 80}

@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=2, max_size=700), st.floats(-1e4, 1e4), st.sampled_from([torch.float32, torch.float64]))
@SETTINGS
def test_mean_std_matches_float64_two_pass(values, shift, dtype):
    "One-pass chunked moments agree with float64 two-pass mean and std, however large the mean is next to the spread."
    x = (torch.tensor(values, dtype=torch.float64) + shift).to(dtype)
    ref = x.double()
    mean, std = mean_std(x)
    assert abs(mean - ref.mean().item()) <= 1e-6 * ref.abs().max().item()
    assert abs(std - ref.std().item()) <= 1e-6 * ref.std().item() + 1e-12 * ref.abs().max().item()

@pytest.mark.parametrize('low, high', [(-2., 8.), (-0.5, 3.), (-1.3, 7.7), (0.1, 0.7)])
@pytest.mark.parametrize('bins', [4, 8, 12, 37, 40, 61, 62, 63, 64, 100])
def test_bin_counts_edges_and_counter_widths(low, high, bins):
    "A value exactly at `low` lands in the first bin, values far below `high` in the last, NaN nowhere, for byte and int32 counters."
    at_low = torch.full((7,), low)
    assert bin_counts(at_low, bins, low, high)[0] == 7
    near_top = torch.full((9,), high - (high - low) / bins / 2)       # mid last bin, in every lane
    assert bin_counts(near_top, bins, low, high)[-1] == 9
    assert bin_counts(torch.tensor([math.nan] * 5 + [low - 1.]), bins, low, high).sum() == 0

def test_mean_std_two_pass_cases():
    "Where one pass would lose digits (a spread of a few float32 steps; mean 90 std), the two-pass path agrees with float64."
    torch.manual_seed(0)
    for x in (1000. + torch.randint(0, 4, (10000,)).float() * 2 ** -14, torch.randn(100000) + 90.):
        ref = x.double().std().item()
        assert abs(mean_std(x)[1] - ref) <= 1e-6 * ref

