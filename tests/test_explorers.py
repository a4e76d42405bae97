"Drive every explorer like a learner would: set slider values, update, and check the returned numbers move as the lessons say."
import math

import pytest
import torch

from wscourse.matmul import matmul_explorer
from wscourse.init import init_explorer
from wscourse.activations import relu_explorer

def set_and_update(w, **values):
    "Set the named sliders of interactive `w`, run it, and return its result."
    by_name = {c.description: c for c in w.children[:-1]}
    for name, v in values.items(): by_name[name].value = v
    w.update()
    return w.result

@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    import matplotlib.pyplot as plt
    monkeypatch.setattr(plt, 'show', lambda *a, **k: plt.close('all'))

def test_matmul_explorer():
    w = matmul_explorer()
    lecun = set_and_update(w)
    assert len(lecun) == 50 and 0.2 < lecun[-1] < 5
    big = set_and_update(w, **{'× 1/√n': 2.0})
    assert big[-1] > 1e10 or big[-1].isnan()                       # ×2 per layer explodes
    small = set_and_update(w, **{'× 1/√n': 0.5})
    assert small[-1] < 1e-10                                        # ×0.5 per layer vanishes
    relu = set_and_update(w, **{'× 1/√n': 1.0, 'activation': 'relu'})
    assert relu[-1] < 1e-5
    kaiming = set_and_update(w, **{'× 1/√n': math.sqrt(2)})
    assert 0.1 < kaiming[-1] < 10
    assert len(set_and_update(w, depth=7)) == 7
    wide = set_and_update(w, **{'width n': 1000})
    assert 0.1 < wide[-1] < 10                                      # the 1/√n rule holds at any width

def test_init_explorer():
    w = init_explorer()
    default = set_and_update(w)
    assert default[-1] < 1e-5                                       # PyTorch's default shrinks ~0.41 per layer
    kaiming = set_and_update(w, scheme='kaiming')
    assert 0.2 < kaiming[-1] < 5
    glorot = set_and_update(w, scheme='glorot')
    assert glorot[-1] < kaiming[-1] / 100                           # Glorot halves the variance per ReLU layer
    boosted = set_and_update(w, scheme='default', **{'gain ×': math.sqrt(6)})
    assert 0.2 < boosted[-1] < 5                                    # default × √6 is Kaiming's variance
    shallow = set_and_update(w, depth=3)
    assert len(shallow) == 3

def test_relu_explorer():
    w = relu_explorer()
    r = set_and_update(w)
    assert abs(r['mean'] - r['derived_mean']) < 0.01 and abs(r['std'] - r['derived_std']) < 0.01
    shifted = set_and_update(w, sub=0.9)
    assert abs(shifted['mean'] - (r['mean'] - 0.5)) < 0.01          # sub moves the mean one for one
    assert shifted['std'] == pytest.approx(r['std'], abs=0.01)      # and leaves the std alone
    leaky = set_and_update(w, sub=0.0, leaky=0.5)
    assert torch.allclose(leaky['predicted_stds'], torch.ones(30), atol=1e-5)   # matched Kaiming gain, no shift
    capped = set_and_update(w, sub=0.4, leaky=0.1, maxv=0.5, **{'cap at maxv': True})
    assert capped['std'] < r['std'] * 0.75
    assert abs(capped['mean'] - capped['derived_mean']) < 0.01
