"The torchvision loading paths of wscourse.data, on small raw files written in each dataset's own format."
import gzip, pickle, struct
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
import torchvision.datasets.cifar

from wscourse.data import DownloadError, get_dls, read_torchvision, TensorBatches, DATASETS

def write_idx(path, arr):
    "Write `arr` (uint8) in the IDX format FashionMNIST ships in (magic 0x08 = unsigned byte)."
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack('>BBBB', 0, 0, 0x08, arr.ndim) + struct.pack(f'>{arr.ndim}I', *arr.shape)
    path.write_bytes(header + arr.tobytes())

def fake_fashion_mnist(root, n_train=60, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / 'FashionMNIST' / 'raw'; raw.mkdir(parents=True)
    data = {}
    for split, n in (('train', n_train), ('t10k', n_test)):
        x, y = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
        write_idx(raw / f'{split}-images-idx3-ubyte', x); write_idx(raw / f'{split}-labels-idx1-ubyte', y)
        data[split] = x, y
    return data

def test_fashion_mnist_from_raw_files(tmp_path):
    data = fake_fashion_mnist(tmp_path)
    xt, yt, xv, yv = read_torchvision('fashion_mnist', root=tmp_path, download=False)
    assert xt.shape == (60, 1, 28, 28) and xv.shape == (20, 1, 28, 28)
    assert xt.dtype == torch.float32 and yt.dtype == torch.int64
    np.testing.assert_allclose(xt[:, 0].numpy(), data['train'][0] / 255, rtol=1e-6)
    assert yv.tolist() == data['t10k'][1].tolist()

def test_get_dls_fashion_mnist_normalizes_with_train_stats(tmp_path):
    fake_fashion_mnist(tmp_path)
    dls = get_dls('fashion_mnist', root=tmp_path, download=False, bs=16)
    assert dls.name == 'fashion_mnist' and dls.n_classes == 10 and dls.shape == (1, 28, 28)
    assert abs(dls.train.x.mean()) < 1e-5 and abs(dls.train.x.std() - 1) < 1e-5
    xb, yb = next(iter(dls.train))
    assert xb.shape == (16, 1, 28, 28) and yb.dtype == torch.int64
    sub = get_dls('fashion_mnist', root=tmp_path, download=False, n_train=10, n_valid=5)
    assert (len(sub.train.x), len(sub.valid.x)) == (10, 5)

def test_data_root_env_variable(tmp_path, monkeypatch):
    fake_fashion_mnist(tmp_path)
    monkeypatch.setenv('WSCOURSE_DATA', str(tmp_path))
    assert len(get_dls('fashion_mnist', download=False).train.x) == 60

def test_cifar10_from_pickled_batches(tmp_path, monkeypatch):
    folder = tmp_path / 'cifar-10-batches-py'; folder.mkdir()
    rng = np.random.default_rng(0)
    def batch(name, n):
        d = {'data': rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8), 'labels': list(np.arange(n) % 10)}
        (folder / name).write_bytes(pickle.dumps(d))
        return d
    first = batch('data_batch_1', 10)
    for i in range(2, 6): batch(f'data_batch_{i}', 10)
    batch('test_batch', 8)
    (folder / 'batches.meta').write_bytes(pickle.dumps({'label_names': [f'c{i}' for i in range(10)]}))
    # our files are not the real ones, so their md5 sums cannot match: skip only that check
    monkeypatch.setattr(torchvision.datasets.cifar, 'check_integrity', lambda path, md5=None: True)
    xt, yt, xv, yv = read_torchvision('cifar10', root=tmp_path, download=False)
    assert xt.shape == (50, 3, 32, 32) and xv.shape == (8, 3, 32, 32)
    # channel-first layout: pixel (0, 0) of image 0 in channel c is byte c*1024 of its row
    np.testing.assert_allclose(xt[0, :, 0, 0].numpy(), first['data'][0, [0, 1024, 2048]] / 255, rtol=1e-6)
    dls = get_dls('cifar10', root=tmp_path, download=False)
    assert dls.shape == (3, 32, 32) and dls.mean.shape == (3,)

def test_failed_download_says_how_to_go_offline(tmp_path, monkeypatch):
    def no_network(self): raise URLError('no route to host')
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, 'download', no_network)
    with pytest.raises(DownloadError, match=r"get_dls\('digits'\)") as e:
        get_dls('fashion_mnist', root=tmp_path, download=True)
    assert 'WSCOURSE_DATASET=digits' in str(e.value)

def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match='name must be one of fashion_mnist, cifar10, digits'):
        get_dls('imagenet')
    assert DATASETS == ('fashion_mnist', 'cifar10', 'digits')

def test_env_variable_picks_default(monkeypatch):
    monkeypatch.setenv('WSCOURSE_DATASET', 'digits')
    assert get_dls().name == 'digits'

def test_batches_cover_each_item_once_per_epoch():
    x = torch.arange(103.)
    tb = TensorBatches(x, x.long(), bs=10, shuffle=True, seed=3)
    for _ in range(3):
        seen = torch.cat([yb for _, yb in tb])
        assert sorted(seen.tolist()) == list(range(103))

def test_corrupt_file_is_a_download_error(tmp_path):
    "A raw file with a wrong header (torchvision asserts on it) raises DownloadError with the offline hint, not a bare AssertionError."
    fake_fashion_mnist(tmp_path)
    images = tmp_path / 'FashionMNIST' / 'raw' / 'train-images-idx3-ubyte'
    images.write_bytes(b'\x00\x00\x09\x07' + images.read_bytes()[4:])          # not the IDX magic for bytes
    with pytest.raises(DownloadError, match=r"get_dls\('digits'\)"): get_dls('fashion_mnist', root=tmp_path, download=False)

def test_blank_images_normalize_without_nan(tmp_path):
    "Training images with no spread (all black) are only centred: no 0/0."
    raw = tmp_path / 'FashionMNIST' / 'raw'; raw.mkdir(parents=True)
    for split, n in (('train', 12), ('t10k', 4)):
        write_idx(raw / f'{split}-images-idx3-ubyte', np.zeros((n, 28, 28))); write_idx(raw / f'{split}-labels-idx1-ubyte', np.arange(n) % 10)
    dls = get_dls('fashion_mnist', root=tmp_path, download=False)
    assert torch.isfinite(dls.train.x).all() and torch.isfinite(dls.valid.x).all() and dls.std.tolist() == [1.]
    assert (dls.train.x == 0).all()
