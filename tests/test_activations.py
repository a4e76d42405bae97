"Property tests of GeneralRelu: valid arguments behave, invalid ones are refused, the derived stats match samples."
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from wscourse.activations import GeneralRelu, general_relu_stats, centring_sub

leakies = st.one_of(st.none(), st.floats(0, 0.95))
subs = st.one_of(st.none(), st.floats(-1, 2))

@st.composite
def valid_args(draw):
    leaky, sub = draw(leakies), draw(subs)
    maxv = draw(st.one_of(st.none(), st.floats(-(sub or 0) + 0.05, 6)))
    return leaky, sub, maxv

@given(valid_args(), st.floats(0.2, 3))
@settings(max_examples=40, deadline=None)
def test_derived_stats_match_samples(args, sigma):
    torch.manual_seed(0)
    y = GeneralRelu(*args)(torch.randn(400_000, dtype=torch.float64) * sigma)
    mean, std = general_relu_stats(*args, std=sigma)
    assert abs(y.mean().item() - mean) < 0.01 * sigma + 1e-9
    assert abs(y.std().item() - std) < 0.01 * sigma + 1e-9

@given(valid_args())
@settings(max_examples=40, deadline=None)
def test_forward_matches_definition_and_gradient_flows(args):
    leaky, sub, maxv = args
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    y = GeneralRelu(*args)(x)
    expected = torch.where(x > 0, x, x * (leaky or 0.)) - (sub or 0.)
    if maxv is not None: expected = expected.clamp(max=maxv)
    assert torch.allclose(y, expected)
    y.sum().backward()
    assert x.grad.isfinite().all()
    assert y.dtype == x.dtype and y.shape == x.shape

@given(st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0)).filter(math.isfinite))
def test_leaky_outside_unit_interval_refused(leaky):
    with pytest.raises(ValueError, match='leaky'): GeneralRelu(leaky=leaky)

@given(st.floats(-2, 2), st.floats(0, 3))
def test_maxv_not_above_minus_sub_refused(sub, gap):
    with pytest.raises(ValueError, match='maxv'): GeneralRelu(sub=sub, maxv=-sub - gap)

@pytest.mark.parametrize('bad', ['0.1', True, [0.1]])
def test_non_numbers_refused(bad):
    with pytest.raises(TypeError, match='leaky'): GeneralRelu(leaky=bad)

@given(leakies, st.one_of(st.none(), st.floats(0.2, 6)), st.floats(0.5, 2))
@settings(max_examples=30, deadline=None)
def test_centring_sub_centres(leaky, maxv, sigma):
    if maxv is not None and maxv <= (leaky or 0) * sigma / math.sqrt(2 * math.pi):
        with pytest.raises(ValueError, match='no sub centres'): centring_sub(leaky, maxv, sigma)
        return
    s = centring_sub(leaky, maxv, sigma)
    assert abs(general_relu_stats(leaky, s, maxv, sigma)[0]) < 1e-6
    if maxv is not None: assert maxv > -s                          # a valid GeneralRelu
    GeneralRelu(leaky, s, maxv)
