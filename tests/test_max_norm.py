"Property tests of max_norm_ (lesson 08): the bound holds, in-bound units are untouched, torch.renorm agrees."
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from wscourse.max_norm import max_norm_

@st.composite
def weights(draw):
    ndim = draw(st.integers(2, 4))
    shape = [draw(st.integers(1, 6)) for _ in range(ndim)]
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    scale = torch.exp(torch.randn(shape[0], generator=g, dtype=dtype) * 2).view(-1, *[1] * (ndim - 1))
    return torch.randn(shape, generator=g, dtype=dtype) * scale

bounds = st.floats(1e-3, 1e3)

@given(weights(), bounds, st.data())
@settings(max_examples=60, deadline=None)
def test_bound_holds_and_in_bound_untouched(w, c, data):
    dim = data.draw(st.integers(-w.ndim, w.ndim - 1))
    d = dim % w.ndim
    others = [i for i in range(w.ndim) if i != d]
    before = w.clone()
    out = max_norm_(w, c, dim=dim)
    assert out is w and w.dtype == before.dtype and w.shape == before.shape
    n_before = torch.linalg.vector_norm(before, dim=others)
    n_after = torch.linalg.vector_norm(w, dim=others)
    tol = 1e-5 if w.dtype == torch.float32 else 1e-12
    assert (n_after <= c * (1 + tol)).all()
    inside = n_before <= c
    assert torch.equal(w.movedim(d, 0)[inside], before.movedim(d, 0)[inside])       # bit-identical
    torch.testing.assert_close(n_after[~inside], torch.full_like(n_after[~inside], c), rtol=tol * 10, atol=0)

@given(weights(), bounds)
@settings(max_examples=60, deadline=None)
def test_matches_torch_renorm(w, c):
    expected = torch.renorm(w, 2, 0, c)          # renorm divides by (norm + 1e-7): equal up to that
    torch.testing.assert_close(max_norm_(w.clone(), c), expected, rtol=1e-5, atol=1e-6)

@given(st.integers(1, 5), st.integers(1, 5), bounds)
def test_zero_weights_stay_zero_and_finite(a, b, c):
    w = torch.zeros(a, b)
    assert torch.equal(max_norm_(w, c), torch.zeros(a, b))

@pytest.mark.parametrize('bad', [0, -1.0, float('nan'), float('inf'), '1', None])
def test_bad_bound_refused(bad):
    with pytest.raises(ValueError, match='max_norm must be a positive'): max_norm_(torch.randn(2, 2), bad)

def test_bad_dim_and_dtype():
    with pytest.raises(ValueError, match='out of range'): max_norm_(torch.randn(2, 2), 1., dim=-3)
    with pytest.raises(TypeError, match='floating-point'): max_norm_(torch.ones(2, 2, dtype=torch.int32), 1.)
