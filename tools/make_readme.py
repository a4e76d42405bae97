"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which this project does not use).

Markdown cells are copied as they are; code cells are left out (index.ipynb's code cells are
its tests). Run `python tools/make_readme.py`; tests/test_project.py checks README.md is current.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def readme_text(index=ROOT / 'nbs' / 'index.ipynb') -> str:
    "The README contents generated from the markdown cells of `index`."
    cells = json.loads(Path(index).read_text(encoding='utf-8'))['cells']
    parts = [''.join(c['source']).strip() for c in cells if c['cell_type'] == 'markdown']
    header = '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n'
    return header + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    (ROOT / 'README.md').write_text(readme_text(), encoding='utf-8')
    print('wrote README.md')
