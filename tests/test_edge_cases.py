"Edge cases found by probing the library: stale caches, overflow, non-contiguous weights, empty layers, bad eps, callbacks."
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from wscourse.scaling import MaxScale, max_scale, reparametrize
from wscourse.weight_norm import WeightNorm, weight_norm
from wscourse.standardization import WeightStandardization, ScaledWeightStandardization, standardize, scaled_standardize, StdConv2d
from wscourse.max_norm import MaxNormCB
from wscourse.hooks import ActivationStats, bin_counts, floor_fraction
from wscourse.init import fans
from wscourse.activations import general_relu_stats
from wscourse.learner import Learner
from wscourse.data import DataLoaders, TensorBatches


def test_scaled_ws_cache_sees_its_gain():
    "In eval mode the cached weight must follow the parametrization's own gain, not only its input."
    m = parametrize.register_parametrization(nn.Linear(6, 4), 'weight', ScaledWeightStandardization()).eval()
    sws = m.parametrizations.weight[0]
    with torch.no_grad():
        before = m.weight.clone()
        assert m.weight is m.weight                                   # cached
        sws.gain.fill_(3.)
        torch.testing.assert_close(m.weight, 3 * before)
    m.load_state_dict({**m.state_dict(), 'parametrizations.weight.0.gain': torch.full((4,), 0.5)})
    with torch.no_grad(): torch.testing.assert_close(m.weight, 0.5 * before)


def test_no_cache_for_inference_tensors():
    "Inference tensors carry no version counter, so nothing may be cached from them."
    with torch.inference_mode():
        m = parametrize.register_parametrization(nn.Linear(5, 3), 'weight', MaxScale()).eval()
        w1 = m.weight.clone()
        m.parametrizations.weight.original.mul_(-1)
        torch.testing.assert_close(m.weight, -w1)


def test_weight_norm_channels_last_and_transposed():
    conv = weight_norm(nn.Conv2d(3, 8, 3)).to(memory_format=torch.channels_last)
    conv(torch.randn(2, 3, 8, 8)).sum().backward()
    ref = torch.nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 8, 3))
    ref.load_state_dict({'bias': conv.bias, 'parametrizations.weight.original0': conv.parametrizations.weight.original0,
                         'parametrizations.weight.original1': conv.parametrizations.weight.original1.contiguous()})
    ref(torch.zeros(1, 3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(conv(x), ref(x))
    g, v = torch.rand(4, 1), torch.randn(3, 4).t().requires_grad_()  # a transposed v
    WeightNorm(0)(g, v).sum().backward()
    assert v.grad.isfinite().all()


def test_empty_layers_refused_by_name():
    with pytest.raises(ValueError, match='is empty'): weight_norm(nn.Linear(4, 0))
    with pytest.raises(ValueError, match='no output channels'): StdConv2d(3, 0, 3)
    with pytest.raises(ValueError, match='no fan'): fans(torch.randn(3, 0))


@pytest.mark.parametrize('make', [lambda: MaxScale(eps=0), lambda: WeightNorm(eps=0), lambda: WeightStandardization(eps=-1),
                                  lambda: ScaledWeightStandardization(eps=0), lambda: weight_norm(nn.Linear(3, 2), eps=-1)])
def test_eps_must_be_positive(make):
    with pytest.raises(ValueError, match='eps must be a positive finite number'): make()


def test_eps_checked_in_formulas():
    with pytest.raises(ValueError, match='eps'): max_scale(torch.zeros(2, 3), eps=0)
    with pytest.raises(ValueError, match='eps'): standardize(torch.ones(2, 3), eps=0)
    with pytest.raises(ValueError, match='eps'): scaled_standardize(torch.ones(2, 3), torch.ones(2), eps=0)


def test_huge_entries_stay_finite():
    "Float32 weights with an entry near the top of the range: no NaN in outputs or gradients."
    w = torch.randn(4, 6); w[0, 1] = 3e19
    torch.testing.assert_close(WeightStandardization()(w), standardize(w), rtol=1e-5, atol=1e-5)
    w[0, 1] = 1e22
    assert WeightStandardization()(w).isfinite().all()
    w = torch.randn(4, 6); w[0, 1] = 1e20                            # the max squared overflows float32
    G = torch.randn(4, 6)
    for dim in (None, 0):
        x, x64 = w.clone().requires_grad_(), w.double().requires_grad_()
        (MaxScale(dim)(x) * G).sum().backward(); (max_scale(x64, dim) * G.double()).sum().backward()
        assert x.grad.isfinite().all(), dim
        torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-4, atol=1e-4 * x64.grad.abs().max().item())


def test_fit_leaves_no_callbacks_when_the_optimizer_fails():
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    dls = DataLoaders(TensorBatches(x, y, 8), TensorBatches(x, y, 8), 2, 0., 1.)
    model = nn.Sequential(nn.Linear(4, 2))
    stats = ActivationStats()
    learn = Learner(model, dls)
    with pytest.raises(ValueError, match='lr must be a positive finite number'): learn.fit(1, cbs=[stats], lr=-0.1)
    with pytest.raises(ValueError): learn.fit(1, cbs=[stats], lr=0)
    assert stats not in learn.cbs


def test_max_norm_cb_refuses_parametrized_weights():
    model = reparametrize(nn.Sequential(nn.Linear(4, 2)), WeightNorm)
    learn = Learner(model, None)
    with pytest.raises(ValueError, match="can't constrain a parametrized weight"): MaxNormCB(1.).before_fit(learn)


def test_small_input_checks():
    with pytest.raises(ValueError, match='bins must be an int'): bin_counts(torch.zeros(3), 2.5, 0., 1.)
    with pytest.raises(ValueError, match='bins must be an int'): ActivationStats(bins=2.5)
    assert floor_fraction(torch.tensor([-math.inf, 0., 1.])) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match='std must be a positive finite number'): general_relu_stats(maxv=1, std=0)


def test_data_arguments_named_in_errors():
    from wscourse.data import get_dls, read_digits
    with pytest.raises(ValueError, match='valid_pct'): read_digits(valid_pct=-0.2)
    with pytest.raises(ValueError, match='valid_pct'): read_digits(valid_pct=1.5)
    with pytest.raises(ValueError, match='size must be a positive int'): get_dls('digits', size=0)
    with pytest.raises(ValueError, match='n_train'): get_dls('digits', n_train=0)
    with pytest.raises(ValueError, match='n_valid'): get_dls('digits', n_valid=-3)


def test_learner_lr_and_general_relu_arguments_named():
    with pytest.raises(ValueError, match='lr must be a positive finite number'): Learner(nn.Linear(2, 2), None, lr=None)
    from wscourse.activations import centring_sub, general_relu_gain
    with pytest.raises(ValueError, match='leaky'): general_relu_stats(leaky=1.5)
    with pytest.raises(ValueError, match='leaky'): centring_sub(leaky=1.5)
    with pytest.raises(ValueError, match='maxv'): general_relu_gain(sub=0.5, maxv=-1.)
    with pytest.raises(ValueError, match='std must be positive'): centring_sub(std=-1.)

def test_activation_stats_record_with_nan_and_inf():
    "A NaN or ±inf output makes the mean non-finite, and the histogram still counts only the finite values in range."
    from types import SimpleNamespace
    for bins in (4, 100):                                              # byte-sized and int32 bin indices
        stats = ActivationStats(bins=bins, hist_range=(0., 4.))
        for t in (torch.tensor([math.nan, 0.5, 1.5, 3.5, 9.]), torch.tensor([math.inf, 0.5, 1.5, 3.5, -math.inf])):
            h = SimpleNamespace(means=[], stds=[], deads=[], hists=[])
            stats._record(h, None, None, t)
            assert not math.isfinite(h.means[0])
            torch.testing.assert_close(h.hists[0], torch.histc(torch.tensor([0.5, 1.5, 3.5]), bins, 0., 4.))

@pytest.mark.parametrize('make', ['max_scale', 'weight_norm', 'ws', 'std_conv', 'gain'])
def test_bake_a_deep_copy_leaves_the_original_working(make):
    "Deep copies of parametrized modules share torch's injected class: baking the copy must not strip the original."
    import copy
    from wscourse.scaling import bake, max_scale_with_gain
    torch.manual_seed(0)
    if make == 'std_conv': model = nn.Sequential(StdConv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    else:
        model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
        if make == 'max_scale': reparametrize(model, MaxScale)
        if make == 'weight_norm': weight_norm(model[0]); weight_norm(model[2])
        if make == 'ws': reparametrize(model, WeightStandardization, types=nn.Conv2d)
        if make == 'gain': max_scale_with_gain(model[0])
    x = torch.randn(4, 2, 6, 6)
    before = model(x)
    deployed = bake(copy.deepcopy(model))
    assert not any(parametrize.is_parametrized(m) for m in deployed.modules())
    torch.testing.assert_close(deployed(x), before)
    torch.testing.assert_close(model(x), before)                      # the original still computes its weights
    assert parametrize.is_parametrized(model[0])
    model(x).square().mean().backward()                               # and still trains
    assert all(p.grad is not None for p in model.parameters())
    again = bake(copy.deepcopy(model))                                # a second copy from the same original
    torch.testing.assert_close(again(x), before)

@pytest.mark.parametrize('how', ['reparametrize', 'weight_norm', 'max_scale_with_gain'])
def test_parametrizing_a_new_tensor_of_a_deep_copy_leaves_the_original_alone(how):
    "Registering on a tensor the copy had not parametrized adds a property to the class: the original must not get it."
    import copy
    from wscourse.scaling import max_scale_with_gain
    original = reparametrize(nn.Sequential(nn.Linear(3, 4)), MaxScale)
    twin = copy.deepcopy(original)
    if how == 'reparametrize': reparametrize(twin, MaxScale, name='bias')
    if how == 'weight_norm': weight_norm(twin[0], dim=None, name='bias')
    if how == 'max_scale_with_gain': max_scale_with_gain(twin[0], name='bias')
    assert list(twin[0].parametrizations.keys()) == ['weight', 'bias']
    assert list(original[0].parametrizations.keys()) == ['weight']
    assert isinstance(original[0].bias, nn.Parameter)                 # a plain parameter still, not a broken property
    original(torch.randn(2, 3)).sum().backward()


HALF_PRECISION_CASES = [(make, dtype, kind) for make in (MaxScale, lambda: MaxScale(dim=0), WeightNorm, WeightStandardization, ScaledWeightStandardization)
                        for dtype in (torch.float16, torch.bfloat16) for kind in ('kaiming', 'one zero row', 'all zero')]

@pytest.mark.parametrize('make, dtype, kind', HALF_PRECISION_CASES)
def test_half_precision_weights_give_no_nan(make, dtype, kind):
    "In float16/bfloat16 the parametrizations compute in float32 (eps 1e-12 is 0 in float16; closed-form row sums overflow): no NaN, and the float32 weight to a few units of the dtype."
    torch.manual_seed(0)
    lin = nn.Linear(4096, 16)
    with torch.no_grad():
        if kind == 'one zero row': lin.weight[0] = 0
        if kind == 'all zero': lin.weight.zero_()
    reference = reparametrize(nn.Sequential(lin), make)[0]
    half = reparametrize(nn.Sequential(nn.Linear(4096, 16)), make)[0]
    half.load_state_dict(reference.state_dict()); half.to(dtype)
    x = torch.randn(8, 4096)
    out = half(x.to(dtype)); out.float().sum().backward()
    assert not out.isnan().any() and not any(p.grad.isnan().any() for p in half.parameters())
    with torch.no_grad(): expected = reference.weight
    tol = 4 * torch.finfo(dtype).eps                                       # the originals are rounded too: a few units of the dtype
    torch.testing.assert_close(half.weight.detach().float(), expected, rtol=tol, atol=tol * expected.abs().max().item())
