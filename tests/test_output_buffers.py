"""MaxScale writes its weight into a buffer it reuses from step to step, and its backward writes the gradient into the
incoming one: only when nothing else can see that memory. These tests hold a reference, a view, a second forward, a
retained graph or a gradient hook across the reuse, and check that every value seen anywhere is still the right one."""
import copy, pickle

import pytest
import torch
from torch import nn

from wscourse.scaling import MaxScale, MaxScaleFunction, max_scale, _sole_owner, _writable_grad

def test_sole_owner_sees_views_aliases_and_graphs():
    t = torch.randn(6)
    assert _sole_owner(t)
    v = t.view(2, 3); assert not _sole_owner(t)
    del v; assert _sole_owner(t)
    d = t.detach(); assert not _sole_owner(t)                     # an alias with its own TensorImpl
    del d; assert _sole_owner(t)
    w = torch.randn(6, requires_grad=True)
    y = w * t                                                     # the graph saves t for w's gradient
    assert not _sole_owner(t)
    y.sum().backward(); del y
    assert _sole_owner(t)
    g = torch.randn(3, 4)
    assert _writable_grad(g) is g
    assert _writable_grad(g.t()) is not g                         # not contiguous: a new tensor
    g2 = torch.randn(3, requires_grad=True) * 1
    assert _writable_grad(g2) is not g2                           # part of a graph (create_graph): never overwritten

def layer(dim=None):
    torch.manual_seed(0)
    lin = nn.Linear(7, 5)
    torch.nn.utils.parametrize.register_parametrization(lin, 'weight', MaxScale(dim))
    return lin, lin.parametrizations.weight

@pytest.mark.parametrize('dim', [None, 0])
def test_buffer_is_reused_across_steps(dim):
    lin, pw = layer(dim)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    ptrs = []
    for _ in range(3):
        lin(torch.randn(4, 7)).square().sum().backward(); opt.step(); opt.zero_grad()
        ptrs.append(pw[0]._buffer.data_ptr())
    assert len(set(ptrs)) == 1                                   # one buffer for all steps
    torch.testing.assert_close(lin.weight, max_scale(pw.original, dim))

@pytest.mark.parametrize('dim', [None, 0])
def test_a_held_weight_keeps_its_values(dim):
    lin, pw = layer(dim)
    opt = torch.optim.SGD(lin.parameters(), lr=0.5)
    held = lin.weight.detach()                                   # an alias of this step's weight
    before = held.clone()
    lin(torch.randn(4, 7)).square().sum().backward(); opt.step()
    lin(torch.randn(4, 7)).square().sum().backward()              # a new weight is computed; it must not land in `held`
    torch.testing.assert_close(held, before, rtol=0, atol=0)
    assert not torch.equal(lin.weight, before)

@pytest.mark.parametrize('dim', [None, 0])
def test_two_forwards_before_one_backward(dim):
    lin, pw = layer(dim)
    ref = copy.deepcopy(lin)
    x1, x2 = torch.randn(4, 7), torch.randn(3, 7)
    (lin(x1).square().sum() + lin(x2).pow(3).sum()).backward()
    w = ref.parametrizations.weight.original.detach().clone().requires_grad_()
    f = lambda x: nn.functional.linear(x, max_scale(w, dim), ref.bias)
    (f(x1).square().sum() + f(x2).pow(3).sum()).backward()
    torch.testing.assert_close(pw.original.grad, w.grad)

@pytest.mark.parametrize('dim', [None, 0])
def test_retained_graph_and_gradient_hook(dim):
    lin, pw = layer(dim)
    seen = []
    weight = lin.weight
    weight.register_hook(lambda g: seen.append(g))               # someone keeps the incoming gradient
    loss = (nn.functional.linear(torch.randn(4, 7), weight, lin.bias)).square().sum()
    loss.backward(retain_graph=True)
    first, g_seen = pw.original.grad.clone(), seen[0].clone()
    loss.backward()                                               # the same graph again: same gradient, and the hook's copy intact
    torch.testing.assert_close(pw.original.grad, 2 * first)
    torch.testing.assert_close(seen[0], g_seen, rtol=0, atol=0)
    w = pw.original.detach().clone().requires_grad_()
    torch.autograd.backward(max_scale(w, dim), g_seen)
    torch.testing.assert_close(first, w.grad)

def test_eval_cache_then_training_then_eval():
    lin, pw = layer()
    opt = torch.optim.SGD(lin.parameters(), lr=0.5)
    lin.eval()
    with torch.no_grad(): cached = lin.weight; kept = cached.clone()
    lin.train()
    lin(torch.randn(4, 7)).square().sum().backward(); opt.step()
    torch.testing.assert_close(cached, kept, rtol=0, atol=0)      # the eval result someone kept is untouched
    lin.eval()
    with torch.no_grad(): torch.testing.assert_close(lin.weight, max_scale(pw.original))

def test_copies_and_pickles_carry_no_buffer():
    lin, pw = layer()
    lin(torch.randn(2, 7)).sum().backward()
    assert pw[0]._buffer is not None
    clone = copy.deepcopy(lin)
    assert clone.parametrizations.weight[0]._buffer is None
    torch.testing.assert_close(clone.weight, lin.weight)
    assert pickle.loads(pickle.dumps(pw[0]))._buffer is None      # (torch pickles parametrized modules only via state_dict)

def test_in_place_backward_leaves_a_shared_gradient_alone():
    w = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    G = torch.randn(4, 6, dtype=torch.float64)
    for per_row in (False, True):
        w.grad = None
        torch.autograd.backward(MaxScaleFunction.apply(w, per_row, False, 1e-12), G)     # G is held here: not overwritten
        ref = w.detach().clone().requires_grad_()
        torch.autograd.backward(max_scale(ref, 0 if per_row else None), G)
        torch.testing.assert_close(w.grad, ref.grad)
    torch.testing.assert_close(G, G.clone())
