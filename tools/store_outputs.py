"""Re-run notebooks in a kernel and store their outputs (plots, tables, widget state) in the repository's format.

The stored outputs are what a reader sees before running anything (GitHub, Colab's preview). Run it after
changing a lesson, on the offline dataset:

    WSCOURSE_DATASET=digits python tools/store_outputs.py nbs/05_general_relu.ipynb ...

Execution counts and cell metadata are cleared as nbdev_clean leaves them; warnings printed from installed
packages (stderr lines naming site-packages, i.e. this machine's paths) are not stored.
"""
import json, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

def clean(nb: dict) -> dict:
    "Drop execution counts, cell metadata, kernel language_info and stderr that names this machine's site-packages."
    for cell in nb['cells']:
        cell['metadata'] = {}
        if cell['cell_type'] != 'code': continue
        cell['execution_count'] = None
        kept = []
        for out in cell['outputs']:
            if out['output_type'] == 'stream' and out['name'] == 'stderr' and 'site-packages' in ''.join(out['text']): continue
            if 'execution_count' in out: out['execution_count'] = None
            if kept and out['output_type'] == 'stream' and kept[-1]['output_type'] == 'stream' and kept[-1]['name'] == out['name']:
                kept[-1]['text'] = ''.join(kept[-1]['text']) + ''.join(out['text'])      # one block per stream, as Jupyter shows it
                continue
            kept.append(out)
        cell['outputs'] = kept
    nb['metadata'] = {k: v for k, v in nb['metadata'].items() if k in ('kernelspec', 'widgets')}
    return nb

def store_outputs(path: Path, timeout=900):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    data = clean(json.loads(nbformat.writes(nb)))
    for cell in data['cells']:                                      # text as a list of lines, as the other tools write it
        for out in cell.get('outputs', []):
            if out['output_type'] == 'stream': out['text'] = ''.join(out['text']).splitlines(keepends=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')

if __name__ == '__main__':
    for p in map(Path, sys.argv[1:]):
        start = time.perf_counter()
        store_outputs(p.resolve())
        print(f'{p.name}: outputs stored ({time.perf_counter() - start:.0f} s)', flush=True)
