"""Run notebooks top to bottom in a Jupyter kernel, as a learner's Run All does, and fail on the first error.

Unlike `nbdev_test` (an in-process shell that skips `#| slow` cells), this starts a real kernel
through nbclient, so it can use another environment's Python: `--python /path/to/venv/bin/python`
runs each notebook in a kernel of that venv (CI's Colab replica). Every cell runs, `slow` ones too.

    python tools/run_notebooks.py [--python PY] [--timeout S] nbs/00_data.ipynb nbs/01_learner.ipynb ...
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

def kernel_dir(python: str) -> str:
    "A throw-away JUPYTER_PATH holding one kernelspec, 'run-notebooks', that starts `python`."
    root = Path(tempfile.mkdtemp(prefix='kernels-'))
    spec = root / 'kernels' / 'run-notebooks'
    spec.mkdir(parents=True)
    (spec / 'kernel.json').write_text(json.dumps({
        'argv': [python, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        'display_name': 'run-notebooks', 'language': 'python'}))
    return str(root)

def run_notebook(path: Path, timeout: int) -> float:
    "Execute the notebook at `path` in its own folder; return the seconds it took. Raises on the first error."
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, kernel_name='run-notebooks', timeout=timeout,
                   resources={'metadata': {'path': str(path.parent)}}).execute()
    return time.perf_counter() - start

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='+', type=Path)
    p.add_argument('--python', default=sys.executable, help="the kernel's Python (default: this one)")
    p.add_argument('--timeout', type=int, default=600, help='seconds allowed per cell')
    args = p.parse_args(argv)
    os.environ["JUPYTER_PATH"] = kernel_dir(os.path.abspath(args.python))     # absolute: kernels start in each notebook's folder
    failed = []
    for path in args.notebooks:
        try: print(f'{path.name}: {run_notebook(path.resolve(), args.timeout):.0f} s', flush=True)
        except CellExecutionError as e:
            failed.append(path.name)
            print(f'{path.name}: FAILED\n{e}', flush=True)
    if failed: sys.exit(f"{len(failed)} notebook(s) failed: {', '.join(failed)}")

if __name__ == '__main__':
    main()
