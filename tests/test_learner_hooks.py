"Learner and hook cleanup when training raises, reproducibility, and the progress widgets."
import contextlib, copy, pickle, threading
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from wscourse.data import get_dls
from wscourse.learner import (Callback, CancelBatchException, CancelEpochException, CancelFitException, Learner,
                              MetricsCB, ProgressCB, set_seed, simple_cnn)
from wscourse.hooks import ActivationStats, Hooks, HooksCallback

@pytest.fixture(scope='module')
def dls(): return get_dls('digits', bs=64, n_train=256, n_valid=128)

def n_hooks(model): return sum(len(m._forward_hooks) for m in model.modules())

class RaiseAt(Callback):
    "Raise `exc` at batch `at` of the first training pass."
    def __init__(self, exc, at=2): self.exc, self.at = exc, at
    def before_batch(self, learn):
        if learn.training and learn.iter == self.at: raise self.exc

@pytest.mark.parametrize('background', [False, True])
@pytest.mark.parametrize('exc', [RuntimeError('boom'), KeyboardInterrupt()])
def test_hooks_removed_when_fit_raises(dls, exc, background):
    model = simple_cnn()
    stats = ActivationStats(nn.ReLU, background=background)
    with pytest.raises(type(exc)):
        Learner(model, dls, cbs=[stats]).fit(2, cbs=[RaiseAt(exc)])
    assert n_hooks(model) == 0
    assert stats._pool is None and not stats._copies              # the worker is shut down and the copies are freed
    assert not [t for t in threading.enumerate() if t.name.startswith('ActivationStats')]
    assert len(stats.hooks[0].means) == 2

@contextlib.contextmanager
def linear_relu_with_background_stats():
    "A Linear + ReLU whose Linear is hooked by an ActivationStats recording on its worker, outside any Learner."
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU())
    stats = ActivationStats(nn.Linear, background=True)
    stats.before_fit(SimpleNamespace(model=model, training=True))
    try: yield model, stats
    finally: stats.remove()

def test_model_and_callback_can_be_copied_while_the_worker_runs():
    "Deep copies and pickles (as keep-best-model or EMA code makes) wait for the worker and carry none of it."
    with linear_relu_with_background_stats() as (model, stats):
        model(torch.randn(3, 5))
        model_copy, unpickled, stats_copy = copy.deepcopy(model), pickle.loads(pickle.dumps(model)), copy.deepcopy(stats)
        assert stats._pool is not None and stats_copy._pool is None and not stats_copy._copies
        assert len(stats_copy.hooks[0].means) == 1                   # the copy has the batch recorded so far
        x = torch.randn(2, 5)
        torch.testing.assert_close(model_copy(x), model(x)); torch.testing.assert_close(unpickled(x), model(x))

def test_worker_error_does_not_hide_an_interrupt(dls):
    stats = ActivationStats(nn.ReLU, background=True)
    def fail(hook, a): raise ValueError('worker broke')
    stats._compute = fail
    model = simple_cnn()
    with pytest.warns(UserWarning, match='worker failed too'), pytest.raises(KeyboardInterrupt):
        Learner(model, dls, cbs=[stats]).fit(1, cbs=[RaiseAt(KeyboardInterrupt(), at=1)])
    assert n_hooks(model) == 0
    with pytest.raises(ValueError, match='worker broke'):        # on its own, the worker's error is raised
        Learner(model, dls, cbs=[stats]).fit(1)

def test_background_copies_stay_on_the_output_device():
    "With another default device, the copy of a CPU output is still made on the CPU."
    with linear_relu_with_background_stats() as (model, stats):
        with torch.device('meta'): model(torch.randn(3, 5, device='cpu'))
        assert stats.means.shape == (1, 1) and torch.isfinite(stats.means).all()

def test_background_stats_equal_synchronous_in_a_fit():
    "Two identical fits, one recording on the worker thread: the same numbers, batch for batch."
    runs = []
    for background in (False, True):
        set_seed(0)
        stats = ActivationStats(nn.ReLU, background=background)
        Learner(simple_cnn(), get_dls('digits', bs=64, n_train=256, n_valid=128, seed=0), cbs=[stats]).fit(1)
        runs.append((stats.means, stats.stds, stats.deads, stats.hists))
    for a, b in zip(runs[0][:3], runs[1][:3]): assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(runs[0][3], runs[1][3]))

def test_hooks_removed_when_forward_raises(dls):
    class Broken(nn.Module):
        def forward(self, x): raise ValueError('bad forward')
    model = nn.Sequential(simple_cnn(), Broken())
    with pytest.raises(ValueError, match='bad forward'):
        Learner(model, dls, cbs=[ActivationStats()]).fit(1)
    assert n_hooks(model) == 0

def test_after_fit_runs_every_callback_even_if_one_fails(dls):
    class FailingCleanup(Callback):
        order = -5
        def after_fit(self, learn): raise RuntimeError('cleanup failed')
    model = simple_cnn()
    with pytest.raises(RuntimeError, match='cleanup failed'):
        Learner(model, dls, cbs=[FailingCleanup(), ActivationStats()]).fit(1)
    assert n_hooks(model) == 0

def test_refitting_does_not_stack_hooks(dls):
    model, seen = simple_cnn(), []
    class Count(Callback):
        def before_batch(self, learn): seen.append(n_hooks(learn.model))
    hooks = HooksCallback(lambda *a: None, nn.ReLU)
    learn = Learner(model, dls, cbs=[hooks, Count()])
    learn.fit(1); learn.fit(1)
    assert set(seen) == {3}
    assert n_hooks(model) == 0
    hooks.before_fit(learn); hooks.before_fit(learn)        # started again before the last fit ended
    assert n_hooks(model) == 3
    hooks.after_fit(learn)
    assert n_hooks(model) == 0

def test_hooks_context_manager_and_delete():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with Hooks(model, lambda h, m, i, o: None) as hs:
        assert n_hooks(model) == 2
        del hs[0]
        assert n_hooks(model) == 1
    assert n_hooks(model) == 0

def test_cancel_exceptions(dls):
    class SkipAllBatches(Callback):
        def before_batch(self, learn): raise CancelBatchException()
    class SkipEpochs(Callback):
        def before_epoch(self, learn): raise CancelEpochException()
    class StopNow(Callback):
        def before_fit(self, learn): raise CancelFitException()
    m = simple_cnn()
    before = [p.clone() for p in m.parameters()]
    Learner(m, dls, cbs=[SkipAllBatches()]).fit(1)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    assert Learner(simple_cnn(), dls, cbs=[SkipEpochs()]).fit(3).history == []
    assert Learner(simple_cnn(), dls, cbs=[StopNow()]).fit(3).history == []

def test_same_seed_same_history(dls):
    def run(seed):
        set_seed(seed)
        h = Learner(simple_cnn(), get_dls('digits', bs=64, n_train=256, n_valid=128, seed=seed), lr=0.05).fit(2).history
        return [{k: v for k, v in r.items() if k != 'seconds'} for r in h]
    assert run(3) == run(3)
    assert run(3) != run(4)

def test_history_rows(dls):
    h = Learner(simple_cnn(), dls).fit(2).history
    assert [r['epoch'] for r in h] == [0, 1]
    assert {'epoch', 'train_loss', 'valid_loss', 'valid_acc'} <= set(h[0])
    assert all(0 <= r['valid_acc'] <= 1 for r in h)

def test_bad_arguments():
    with pytest.raises(ValueError, match='lr'): Learner(simple_cnn(), None, lr=0)
    with pytest.raises(ValueError, match='n_epochs'): Learner(simple_cnn(), None).fit(-1)
    with pytest.raises(TypeError, match='seed'): set_seed('1')

def test_progress_widgets_when_forced(dls):
    p = ProgressCB(widgets=True, min_interval=0)
    Learner(simple_cnn(), dls, cbs=[p]).fit(2)
    assert p.bar.value == p.bar.max == 2 * len(dls.train)
    assert p.label.value.startswith('epoch 1')
    assert len(p.fig.axes[0].lines) == 2          # train and valid curves

def test_progress_quiet_outside_jupyter(dls):
    p = ProgressCB()
    Learner(simple_cnn(), dls, cbs=[p]).fit(1)
    assert p.active is False and p.fig is None and not hasattr(p, 'bar')
    assert len(p.train_losses) == len(dls.train)

def test_progress_plot_is_shown_as_a_png_in_one_place_at_most_every_min_interval(dls, monkeypatch):
    "The live plot goes into the one Output widget as a PNG image (a bare Figure shows as '<Figure size …>' text), redrawn at most every min_interval seconds."
    import IPython.display
    shown, clock = [], [0.]
    monkeypatch.setattr(IPython.display, 'display', lambda *objs, **kw: shown.extend(objs))
    monkeypatch.setattr(IPython.display, 'clear_output', lambda *a, **kw: None)
    import wscourse.learner as L
    monkeypatch.setattr(L.time, 'perf_counter', lambda: clock[0])
    class Tick(Callback):
        def after_batch(self, learn): clock[0] += 0.1          # each batch "takes" 0.1 s
    p = ProgressCB(widgets=True, min_interval=0.35)
    Learner(simple_cnn(), dls, cbs=[Tick(), p]).fit(1)
    images = [o for o in shown if isinstance(o, IPython.display.Image)]
    assert not any(type(o).__name__ == 'Figure' for o in shown)
    assert images and all(i.data[:8] == b'\x89PNG\r\n\x1a\n' for i in images)
    n = len(dls.train)
    assert len(images) <= n * 0.1 / 0.35 + 3                   # the interval's redraws, plus epoch end and fit end
    assert p.png()[:4] == b'\x89PNG'
