"""What a reader sees before running anything: the outputs stored in nbs/*.ipynb (shown by GitHub, Colab's
preview and an untrusted JupyterLab). They must carry no paths of the machine that ran them, no
`<Figure size …>` text where a plot belongs, no errors, and a plain picture above every explorer.
Regenerate outputs with tools/store_outputs.py."""
import json, re
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).parent.parent / 'nbs').glob('*.ipynb'))
MACHINE_PATH = re.compile(r'site-packages|/tmp/|/root/|/home/|/work/|\.venv|/usr/lib|/__w/|ipykernel_\d')

def _text(out):
    "All the text an output shows: a stream's text, or each text-like mime type of a display."
    if out['output_type'] == 'stream': return ''.join(out['text'])
    if out['output_type'] == 'error': return '\n'.join(out.get('traceback', []))
    return '\n'.join(''.join(v) for k, v in out.get('data', {}).items() if k.startswith('text/'))

def _cell_outputs(nb):
    for i, cell in enumerate(nb['cells']):
        for out in cell.get('outputs', []): yield f'cell {i}', out

def _widget_outputs(nb):
    "Outputs stored inside Output widgets (ProgressCB's plot, the explorers' plots) in the notebook's widget state."
    state = nb['metadata'].get('widgets', {}).get('application/vnd.jupyter.widget-state+json', {}).get('state', {})
    for model_id, model in state.items():
        for out in model.get('state', {}).get('outputs', None) or []: yield f'widget {model_id}', out

def _all_outputs(nb): return [*_cell_outputs(nb), *_widget_outputs(nb)]

def _figure_text_without_image(out):
    data = out.get('data', {})
    return ''.join(data.get('text/plain', '')).startswith('<Figure size') and not any(k.startswith('image/') for k in data)

@pytest.mark.parametrize('path', NBS, ids=lambda p: p.name)
def test_stored_outputs_are_clean(path):
    nb = json.loads(path.read_text())
    for where, out in _all_outputs(nb):
        assert out['output_type'] != 'error', f"{path.name} {where} stores an error: {out.get('ename')}: {out.get('evalue')}"
        found = MACHINE_PATH.search(_text(out))
        assert not found, f"{path.name} {where} shows a path of the machine that ran it ({found.group()!r}): {_text(out)[:200]!r}"
        assert not _figure_text_without_image(out), f"{path.name} {where} shows '<Figure size …>' text where a plot belongs"

def _is_explorer(out):
    return 'application/vnd.jupyter.widget-view+json' in out.get('data', {}) and \
        ''.join(out['data'].get('text/plain', '')).startswith('interactive(')

def test_every_explorer_has_a_picture_above_it():
    explorers = 0
    for path in NBS:
        nb = json.loads(path.read_text())
        code = [c for c in nb['cells'] if c['cell_type'] == 'code']
        for j, cell in enumerate(code):
            if not any(_is_explorer(o) for o in cell['outputs']): continue
            explorers += 1
            above = [o for c in code[max(j - 2, 0):j] for o in c['outputs']]
            assert any('image/png' in o.get('data', {}) for o in above), \
                f"{path.name}: the explorer in code cell {j} has no stored picture in the cells just above it"
    assert explorers >= 3                                                # 03, 04 and 05 each have one

def test_the_checks_catch_what_they_look_for():
    stderr = {'output_type': 'stream', 'name': 'stderr', 'text': ['/tmp/ipykernel_123/1.py:3: UserWarning: x\n']}
    bare_figure = {'output_type': 'display_data', 'data': {'text/plain': ['<Figure size 600x300 with 1 Axes>']}, 'metadata': {}}
    plot = {'output_type': 'display_data', 'data': {'text/plain': ['<Figure size 600x300 with 1 Axes>'], 'image/png': 'iVBO'}}
    assert MACHINE_PATH.search(_text(stderr)) and _figure_text_without_image(bare_figure) and not _figure_text_without_image(plot)
    nb = {'cells': [], 'metadata': {'widgets': {'application/vnd.jupyter.widget-state+json': {'state': {
        'm1': {'state': {'outputs': [bare_figure]}}}}}}}
    assert [w for w, o in _all_outputs(nb) if _figure_text_without_image(o)] == ['widget m1']
