"Property tests of the weight parametrizations: MaxScale (lesson 06) and WeightNorm (lesson 07)."
import copy, io
from functools import partial

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as torch_weight_norm

from wscourse.scaling import MaxScale, Gain, bake, reparametrize, max_scale_with_gain
from wscourse.weight_norm import WeightNorm, weight_norm

dtypes = st.sampled_from([torch.float32, torch.float64])

@st.composite
def layers(draw):
    "A Linear or Conv2d of random size and dtype."
    out_, in_ = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    dtype = draw(dtypes)
    if draw(st.booleans()): return nn.Linear(in_, out_).to(dtype)
    return nn.Conv2d(in_, out_, draw(st.sampled_from([1, 3]))).to(dtype)

def inputs(layer, seed=0):
    g = torch.Generator().manual_seed(seed)
    if isinstance(layer, nn.Linear): return torch.randn(4, layer.in_features, generator=g, dtype=layer.weight.dtype)
    return torch.randn(2, layer.in_channels, 6, 6, generator=g, dtype=layer.weight.dtype)

def plain_weight(layer): return layer.parametrizations.weight.original

SETTINGS = settings(max_examples=30, deadline=None)

@given(layers(), st.sampled_from([None, 0]), st.booleans())
@SETTINGS
def test_max_scale_shape_dtype_and_unit_max(layer, dim, detach):
    shape, dtype = layer.weight.shape, layer.weight.dtype
    parametrize.register_parametrization(layer, 'weight', MaxScale(dim, detach))
    w = layer.weight
    assert w.shape == shape and w.dtype == dtype
    if dim is None: assert torch.isclose(w.abs().max(), torch.ones((), dtype=dtype))
    else:
        per_channel = w.abs().flatten(1).amax(dim=1)
        assert torch.allclose(per_channel, torch.ones_like(per_channel))

@given(layers(), st.sampled_from([None, 0, 1]))
@SETTINGS
def test_weight_norm_equals_torch(layer, dim):
    theirs = torch_weight_norm(copy.deepcopy(layer), dim=dim)
    ours = weight_norm(copy.deepcopy(layer), dim=dim)
    tol = dict(rtol=1e-5, atol=1e-6) if layer.weight.dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    assert ours.weight.shape == layer.weight.shape and ours.weight.dtype == layer.weight.dtype
    torch.testing.assert_close(ours.weight, theirs.weight, **tol)
    torch.testing.assert_close(ours.parametrizations.weight.original0, theirs.parametrizations.weight.original0, **tol)
    for m in (ours, theirs):                                   # identical SGD step on both
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        m(inputs(layer)).pow(2).mean().backward(); opt.step()
    torch.testing.assert_close(ours.weight, theirs.weight, **tol)

PARAMETRIZE = {'max/layer': lambda m: reparametrize(m, MaxScale), 'max/channel': lambda m: reparametrize(m, partial(MaxScale, dim=0)),
               'max+gain': lambda m: max_scale_with_gain(m), 'weight norm': lambda m: weight_norm(m),
               'weight norm/whole': lambda m: reparametrize(m, partial(WeightNorm, None))}

@pytest.mark.parametrize('kind', PARAMETRIZE)
@given(layer=layers())
@SETTINGS
def test_state_dict_round_trip_bake_and_deepcopy(kind, layer):
    apply = PARAMETRIZE[kind]
    model = apply(copy.deepcopy(layer))
    with torch.no_grad():                                       # move away from the initial state
        for p in model.parameters(): p.add_(0.01 * torch.randn_like(p))
    x = inputs(layer)
    out = model(x)
    # state_dict round trip into a fresh, identically parametrized layer
    other = apply(copy.deepcopy(layer))
    buf = io.BytesIO(); torch.save(model.state_dict(), buf); buf.seek(0)
    other.load_state_dict(torch.load(buf))
    torch.testing.assert_close(other(x), out)
    # deepcopy keeps the parametrization and the numbers, and is independent of the original
    twin = copy.deepcopy(model)
    assert parametrize.is_parametrized(twin, 'weight')
    torch.testing.assert_close(twin(x), out)
    with torch.no_grad():
        for p in twin.parameters(): p.mul_(2)
    torch.testing.assert_close(model(x), out)
    # bake keeps outputs and leaves a plain layer
    bake(model)
    assert not parametrize.is_parametrized(model)
    torch.testing.assert_close(model(x), out)

@given(layers(), st.sampled_from(['max/layer', 'max/channel', 'weight norm']))
@SETTINGS
def test_zero_weights_give_finite_outputs_and_gradients(layer, kind):
    with torch.no_grad(): layer.weight.zero_()
    model = PARAMETRIZE[kind](layer)
    out = model(inputs(layer))
    out.sum().backward()
    assert out.isfinite().all()
    assert all(p.grad is None or p.grad.isfinite().all() for p in model.parameters())

def test_bad_input():
    with pytest.raises(ValueError, match='out of range'): weight_norm(nn.Linear(2, 2), dim=3)
    with pytest.raises(ValueError, match='dim must be None or an int'): WeightNorm(dim=1.5)
    with pytest.raises(ValueError, match="no parameter named 'w'"): weight_norm(nn.Linear(2, 2), name='w')
    with pytest.raises(ValueError, match='out of range'): parametrize.register_parametrization(nn.Linear(2, 2), 'weight', MaxScale(dim=-3))
    with pytest.raises(TypeError, match='floating-point'): MaxScale()(torch.ones(2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="ReLU has no tensor named 'weight'"): reparametrize(nn.Sequential(nn.ReLU()), MaxScale, types=nn.ReLU)

def test_negative_dim_is_pythons_not_torchs():
    "dim=-1 means the last dimension here; torch's weight_norm treats -1 as 'whole tensor'."
    lin = nn.Linear(3, 4)
    last, one = weight_norm(copy.deepcopy(lin), dim=-1), weight_norm(copy.deepcopy(lin), dim=1)
    assert last.parametrizations.weight.original0.shape == (1, 3)
    torch.testing.assert_close(last.parametrizations.weight.original0, one.parametrizations.weight.original0)
    assert torch_weight_norm(copy.deepcopy(lin), dim=-1).parametrizations.weight.original0.shape == ()

@pytest.mark.parametrize('dim', [None, 0, 1, -1])
@pytest.mark.parametrize('make', [lambda: nn.Linear(7, 5), lambda: nn.Conv2d(3, 4, 3)], ids=['Linear', 'Conv2d'])
def test_max_scale_with_gain_starts_as_the_same_function(make, dim):
    "The gain starts at the max|w| MaxScale divides by (per slice along `dim`), so outputs before == outputs after."
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(2, 7) if isinstance(layer, nn.Linear) else torch.randn(2, 3, 6, 6)
    w0, before = layer.weight.detach().clone(), layer(x).detach()
    max_scale_with_gain(layer, dim=dim)
    torch.testing.assert_close(layer(x), before, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layer.weight, w0, rtol=1e-6, atol=1e-7)
    gain = layer.parametrizations.weight[1].gain
    expected = () if dim is None else tuple(s if d == dim % w0.ndim else 1 for d, s in enumerate(w0.shape))
    assert gain.shape == expected and gain.requires_grad
