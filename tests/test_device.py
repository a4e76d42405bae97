"The Learner on any device: default_device, refusals by name before anything moves, batches and datasets moved, few host syncs."
from collections import namedtuple

import pytest
import torch
from torch import nn

import wscourse.learner as L
from wscourse.data import get_dls
from wscourse.learner import (Callback, CancelFitException, Learner, MetricsCB, ProgressCB, default_device, set_seed,
                              simple_cnn, to_device)
from wscourse.scaling import Gain, MaxScale, max_scale_with_gain, reparametrize
from wscourse.standardization import ScaledWeightStandardization, WeightStandardization
from wscourse.weight_norm import WeightNorm

META = torch.device('meta')

@pytest.fixture(scope='module')
def dls(): return get_dls('digits', bs=64, n_train=256, n_valid=128)

class FirstBatch(Callback):
    "Note where the first training batch is, then stop (meta tensors have no numbers for metrics)."
    def before_batch(self, learn):
        self.devices = learn.xb.device, learn.yb.device
        raise CancelFitException()

def available(monkeypatch, cuda=False, n_cuda=0, mps=False):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: n_cuda)
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: mps)

@pytest.mark.parametrize('cuda, mps, expected', [(True, True, 'cuda'), (True, False, 'cuda'), (False, True, 'mps'), (False, False, 'cpu')])
def test_default_device_order(monkeypatch, cuda, mps, expected):
    available(monkeypatch, cuda=cuda, n_cuda=int(cuda), mps=mps)
    assert default_device() == torch.device(expected)

def test_learner_uses_default_device_and_moves_the_model(dls, monkeypatch):
    assert Learner(simple_cnn(), dls).device == default_device()
    monkeypatch.setattr(L, 'default_device', lambda: META)            # None means default_device(), whatever it says
    learn = Learner(simple_cnn(), dls)
    assert learn.device == META and all(p.is_meta for p in learn.model.parameters())

@pytest.mark.parametrize('device', ['cpu', torch.device('cpu'), 'meta', torch.device('meta')])
def test_device_as_str_or_torch_device(dls, device):
    learn = Learner(simple_cnn(), dls, device=device)
    assert learn.device == torch.device(device) and {p.device for p in learn.model.parameters()} == {torch.device(device)}

@pytest.mark.parametrize('device, setup, message', [
    ('gpu0', {}, "device='gpu0' is not a device name torch knows"),
    ('cuda', dict(cuda=False), "device='cuda' can't be used: no cuda device is available"),
    (torch.device('cuda', 0), dict(cuda=False), "device='cuda:0' can't be used"),
    ('mps', dict(mps=False), "device='mps' can't be used: no mps device is available"),
    ('mps:1', dict(mps=True), "device='mps:1' can't be used: this machine has 1 mps device: mps:0"),
    ('cuda:3', dict(cuda=True, n_cuda=2), "device='cuda:3' can't be used: this machine has 2 cuda devices: cuda:0, cuda:1"),
    ('cuda:1', dict(cuda=True, n_cuda=1), "device='cuda:1' can't be used: this machine has 1 cuda device: cuda:0"),
])
def test_unusable_devices_refused_by_name_before_anything_moves(dls, monkeypatch, device, setup, message):
    available(monkeypatch, **setup)
    model = simple_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    def no_move(*a, **k): raise AssertionError('the model was moved before the device was checked')
    monkeypatch.setattr(nn.Module, 'to', no_move)
    with pytest.raises(ValueError, match='^' + message.replace('(', r'\(').replace(')', r'\)')):
        Learner(model, dls, device=device)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

def test_other_backends_refused_when_unavailable(dls):
    if hasattr(torch, 'xpu') and not torch.xpu.is_available():
        with pytest.raises(ValueError, match="device='xpu' can't be used: no xpu device is available"): Learner(simple_cnn(), dls, device='xpu')
    if not hasattr(torch, 'hpu'):                                     # no torch.hpu: torch is asked to make a tensor there
        with pytest.raises(ValueError, match="device='hpu' can't be used: torch can't make a tensor there"): Learner(simple_cnn(), dls, device='hpu')

@pytest.mark.parametrize('device', [0, 1.5, ['cpu']])
def test_device_of_the_wrong_type(dls, device):
    with pytest.raises(TypeError, match='device must be a str, a torch.device or None'): Learner(simple_cnn(), dls, device=device)

def test_cuda_accepted_when_present(dls, monkeypatch):
    "With CUDA reported (patched), 'cuda' and an existing index pass and the model is sent there."
    available(monkeypatch, cuda=True, n_cuda=2)
    assert L._check_device('cuda') == torch.device('cuda') and L._check_device('cuda:1') == torch.device('cuda', 1)
    assert default_device() == torch.device('cuda')
    model, sent = simple_cnn(), []
    monkeypatch.setattr(model, 'to', lambda d: sent.append(d) or model)
    learn = Learner(model, dls)
    assert learn.device == torch.device('cuda') and sent == [torch.device('cuda')]

def test_batches_and_dataset_moved(dls):
    first = FirstBatch()
    learn = Learner(simple_cnn(), dls, device='meta').fit(1, cbs=[first])
    assert first.devices == (META, META)
    for training, src in ((True, dls.train), (False, dls.valid)):
        view = learn._batches(training)
        assert view is not src and view.x.is_meta and view.y.is_meta and view.gen is src.gen and view.bs == src.bs
        assert learn._batches(training).x is view.x                          # copied once
    assert dls.train.x.device.type == dls.valid.x.device.type == 'cpu'        # the DataLoaders are left alone

def test_no_copy_on_the_cpu(dls):
    learn = Learner(simple_cnn(), dls, device='cpu')
    assert learn._batches(True) is dls.train and learn._batches(False) is dls.valid

def test_device_copy_gives_the_same_batches_in_the_same_order(dls, monkeypatch):
    "The view over the copy draws its order from the DataLoaders' own generator: batch for batch what they would give."
    monkeypatch.setattr(L, '_copy_if_fits', lambda ts, device: tuple(t.clone() for t in ts))   # a 'device' copy we can read
    learn = Learner(simple_cnn(), dls, device='meta')
    state = dls.train.gen.get_state()
    from_copy = list(learn._batches(True))
    dls.train.gen.set_state(state)
    for (a, b), (c, d) in zip(from_copy, dls.train, strict=True): assert torch.equal(a, c) and torch.equal(b, d)

def test_a_dataset_that_does_not_fit_moves_batch_by_batch(dls, monkeypatch):
    monkeypatch.setattr(L, '_fits', lambda nbytes, device: False)
    first = FirstBatch()
    learn = Learner(simple_cnn(), dls, device='meta').fit(1, cbs=[first])
    assert learn._batches(True) is dls.train and first.devices == (META, META)

def test_fits_at_most_half_the_free_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'mem_get_info', lambda device=None: (1000, 4000))
    assert L._fits(500, torch.device('cuda')) and not L._fits(501, torch.device('cuda'))
    assert L._fits(10**15, META)

def test_out_of_memory_while_copying_falls_back(monkeypatch):
    def oom(*a, **k): raise torch.cuda.OutOfMemoryError('CUDA out of memory')
    monkeypatch.setattr(torch.Tensor, 'to', oom)
    assert L._copy_if_fits((torch.zeros(3),), META) is None

def test_says_once_where_it_trains_and_nothing_on_the_cpu(dls, monkeypatch, capsys):
    monkeypatch.setattr(L, '_announced', set())
    for device, expected in (('meta', 'Learner: training on meta\n'), ('meta', ''), ('cpu', '')):
        Learner(simple_cnn(), dls, device=device).fit(1, cbs=[FirstBatch()])
        assert capsys.readouterr().out == expected

def test_set_seed_seeds_every_gpu(monkeypatch):
    seeded = []
    monkeypatch.setattr(torch.cuda, 'manual_seed_all', seeded.append)
    set_seed(7)
    assert seeded and seeded[-1] == 7

class ReadEveryBatch(Callback):
    "MetricsCB's and ProgressCB's old bookkeeping: `.item()` on every batch."
    order = 20
    def before_fit(self, learn): self.rows, self.losses = [], []
    def before_epoch(self, learn): self.sums = {True: [0., 0, 0], False: [0., 0, 0]}
    def after_batch(self, learn):
        s, n = self.sums[learn.training], len(learn.yb)
        s[0] += learn.loss.item() * n; s[1] += (learn.preds.argmax(dim=1) == learn.yb).sum().item(); s[2] += n
        if learn.training: self.losses.append(learn.loss.item())
    def after_epoch(self, learn):
        (tl, tc, tn), (vl, vc, vn) = self.sums[True], self.sums[False]
        self.rows.append((tl / tn, tc / tn, vl / vn, vc / vn))

def test_metrics_and_losses_identical_to_reading_every_batch(dls):
    reader, progress = ReadEveryBatch(), ProgressCB(widgets=False)
    learn = Learner(simple_cnn(), dls, cbs=[reader, progress]).fit(2)
    assert [(r['train_loss'], r['train_acc'], r['valid_loss'], r['valid_acc']) for r in learn.history] == reader.rows
    assert progress.train_losses == reader.losses and all(type(l) is float for l in progress.train_losses)

def test_a_few_reads_per_epoch_and_no_item(dls, monkeypatch):
    "Per epoch: MetricsCB reads losses and counts once per pass, ProgressCB its losses once; never `.item()`."
    reads, tolist = [], torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, 'tolist', lambda t: reads.append(t.numel()) or tolist(t))
    def item(t): raise AssertionError('.item() in a fit: a host sync per batch')
    monkeypatch.setattr(torch.Tensor, 'item', item)
    Learner(simple_cnn(), dls, cbs=[ProgressCB(widgets=False)]).fit(2)
    assert len(reads) == 2 * 5                                                # 2 epochs × (4 for MetricsCB + 1 for ProgressCB)

def test_to_device_nested():
    Pair = namedtuple('Pair', 'x y')
    b = to_device({'a': [torch.zeros(1), (torch.ones(2), 'label')], 'p': Pair(torch.zeros(1), 3), 'n': None}, 'meta')
    assert b['a'][0].is_meta and b['a'][1][0].is_meta and b['a'][1][1] == 'label' and type(b['a'][1]) is tuple
    assert type(b['p']) is Pair and b['p'].x.is_meta and b['p'].y == 3 and b['n'] is None
    t = torch.zeros(2)
    assert to_device(t, 'cpu') is t

@pytest.mark.parametrize('make', [MaxScale, WeightNorm, WeightStandardization, ScaledWeightStandardization,
                                  lambda: ScaledWeightStandardization(n_out=8)], ids=['MaxScale', 'WeightNorm', 'WS', 'sWS', 'sWS(n_out)'])
def test_parametrized_models_move_whole(dls, make):
    "Every tensor a parametrization owns (original, g and v, gain) is a registered Parameter: it moves with the model."
    model = simple_cnn(widths=(8,)) if make.__name__ == '<lambda>' else simple_cnn()
    types = nn.Conv2d if make.__name__ == '<lambda>' else (nn.Conv2d, nn.Linear)
    learn = Learner(reparametrize(model, make, types=types), dls, device='meta')
    tensors = list(learn.model.parameters()) + list(learn.model.buffers())
    assert tensors and all(t.is_meta for t in tensors)

def test_gain_moves_with_the_model(dls):
    model = simple_cnn()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)): max_scale_with_gain(m)
    learn = Learner(model, dls, device='meta')
    gains = [m for m in learn.model.modules() if isinstance(m, Gain)]
    assert gains and all(g.gain.is_meta for g in gains) and all(p.is_meta for p in learn.model.parameters())

@pytest.mark.parametrize('device, expected', [('cuda', True), (torch.device('cuda', 1), True), ('mps', False), ('meta', False), ('cpu', False)])
def test_non_blocking_only_to_cuda(monkeypatch, device, expected):
    "Asynchronous copies to CUDA; to MPS a non-blocking copy from pageable memory can corrupt the data (pytorch#139550)."
    calls = []
    monkeypatch.setattr(torch.Tensor, 'to', lambda t, d, non_blocking=False: calls.append(non_blocking) or t)
    to_device((torch.zeros(1), [torch.ones(1)]), device)
    assert calls == [expected, expected]
    to_device(torch.zeros(1), device, non_blocking=False)
    assert calls[-1] is False
