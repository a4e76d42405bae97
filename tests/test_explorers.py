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

def test_where_values_end_names_the_layer_and_the_cause():
    from wscourse.matmul import where_values_end
    assert where_values_end([1., 2., 3.]) == (None, '')
    assert where_values_end([]) == (None, '')
    assert where_values_end([1e30, float('inf'), float('nan')]) == (2, 'overflow: values reached inf')
    assert where_values_end([1., float('nan')]) == (2, 'overflow: values reached inf')   # inf - inf in a later sum
    assert where_values_end(torch.tensor([1e-30, 0., 0.])) == (2, 'underflow: every value is 0')

@pytest.mark.parametrize('stds, note', [([1., 1e20, float('nan')], '× layer 3: overflow'), ([0., 0.], '× layer 1: underflow'),
                                        ([1., 0.5], None)])
def test_plot_layer_stds_marks_where_the_line_ends(stds, note):
    import matplotlib.pyplot as plt
    from wscourse.matmul import plot_layer_stds
    ax = plot_layer_stds(stds, label='run')
    texts = [t.get_text() for t in ax.texts]
    if note is None: assert texts == []
    else: assert len(texts) == 1 and texts[0].startswith(note)
    assert ax.get_xlim() == (0.5, len(stds) + 0.5)                  # the axis still spans every layer
    assert [l.get_label() for l in ax.get_legend_handles_labels()[0]] == ['run']   # the marker and the 1-line stay out of the legend
    plt.close('all')

def test_explorer_sliders_redraw_on_release_where_a_redraw_is_costly():
    for w in (matmul_explorer(), relu_explorer()):
        sliders = [c for c in w.children if hasattr(c, 'continuous_update') and hasattr(c, 'min')]
        assert sliders and all(not s.continuous_update for s in sliders)
