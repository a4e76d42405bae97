"Project-wide checks: export sync, README generated from index, CI runs the README's test command, no star-import clashes."
import importlib, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))

def tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob('*.py'))}

def test_export_is_in_sync(tmp_path):
    "Re-exporting the notebooks into a copy of the project leaves the library unchanged."
    for name in ('settings.ini', 'setup.py', 'pyproject.toml', 'README.md'): shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs')
    shutil.copytree(ROOT / 'wscourse', tmp_path / 'wscourse', ignore=shutil.ignore_patterns('__pycache__'))
    exporter = Path(sys.executable).parent / 'nbdev_export'
    subprocess.run([str(exporter)], cwd=tmp_path, check=True)
    assert tree(tmp_path / 'wscourse') == tree(ROOT / 'wscourse')
    assert (tmp_path / 'pyproject.toml').read_text() == (ROOT / 'pyproject.toml').read_text()

def test_readme_is_generated_from_index():
    from make_readme import readme_text
    assert (ROOT / 'README.md').read_text(encoding='utf-8') == readme_text()

def readme_commands():
    return re.findall(r'```sh\n(.*?)\n```', (ROOT / 'README.md').read_text(), flags=re.S)

def test_readme_gives_exactly_two_commands_and_ci_uses_the_test_command():
    cmds = readme_commands()
    assert len(cmds) == 2 and all('\n' not in c for c in cmds)
    course, tests = cmds
    assert 'jupyter lab' in course and 'nbdev_test' in tests and 'pytest' in tests
    ci = (ROOT / '.ci' / 'run').read_text()
    assert tests in ci, ".ci/run must run the README's test command verbatim"

def test_no_star_import_collisions():
    "Names exported by different modules never clash, so `from wscourse.x import *` is safe in any order."
    owners = {}
    for py in sorted((ROOT / 'wscourse').glob('[!_]*.py')):
        mod = importlib.import_module(f'wscourse.{py.stem}')
        for name in getattr(mod, '__all__', []):
            assert name not in owners, f"{name} is exported by both wscourse.{owners[name]} and wscourse.{py.stem}"
            owners[name] = py.stem

def settings():
    from configparser import ConfigParser
    config = ConfigParser(delimiters=['=']); config.read(ROOT / 'settings.ini', encoding='utf-8')
    return config['DEFAULT']

def colab_versions():
    "{package: version} from .ci/colab-versions.txt, what Colab preinstalls (and CI's replica installs)."
    lines = [l.split('==') for l in (ROOT / '.ci' / 'colab-versions.txt').read_text().splitlines() if '==' in l]
    return {name.lower(): version for name, version in lines}

def test_runtime_requirements_are_lower_bounds_that_colab_meets():
    "Installing the course on Colab upgrades and downgrades nothing: every runtime requirement is a floor Colab's version meets."
    from packaging.requirements import Requirement
    colab = colab_versions()
    for req in map(Requirement, settings()['requirements'].split()):
        assert all(s.operator == '>=' for s in req.specifier), f'{req}: runtime requirements are lower bounds only'
        if req.name.lower() in colab:
            assert req.specifier.contains(colab[req.name.lower()]), f"{req} would replace Colab's {req.name} {colab[req.name.lower()]}"
    assert {'torch', 'ipywidgets', 'fastcore', 'matplotlib', 'numpy'} <= {Requirement(r).name for r in settings()['requirements'].split()}

def test_torch_floor_is_the_oldest_torch_tested():
    "The runtime floor is the replica's torch (the oldest tested); the dev extra pins the newest tested."
    from packaging.requirements import Requirement
    from packaging.version import Version
    reqs = {Requirement(r).name: Requirement(r) for r in settings()['requirements'].split()}
    dev = {Requirement(r).name: Requirement(r) for r in settings()['dev_requirements'].split()}
    (floor,) = reqs['torch'].specifier
    assert floor.operator == '>=' and Version(floor.version) == Version(colab_versions()['torch'])
    newest = next(iter(dev['torch'].specifier))
    assert newest.operator == '==' and reqs['torch'].specifier.contains(newest.version)

def test_every_lesson_has_the_same_colab_install_cell():
    "Each notebook installs the course on Colab with one cell, the same everywhere, that names nothing but the course."
    import json
    cells = {}
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        code = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        cells[nb.name] = next(c for c in code if 'google.colab' in c)
    assert len(set(cells.values())) == 1, 'the Colab cells differ'
    installs = re.findall(r"'install -q (.*?)'", next(iter(cells.values())))
    assert installs == [f"git+{settings()['git_url']}"], installs


def test_the_setup_cell_lets_idle_threads_sleep_before_torch_loads():
    "The shared setup cell sets OMP_WAIT_POLICY=PASSIVE, and it runs before any cell that imports torch or the course."
    import json
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        code = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        setup = next(i for i, c in enumerate(code) if 'google.colab' in c)
        assert "os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')" in code[setup], nb.name
        first_import = next((i for i, c in enumerate(code) if re.search(r'^\s*(import|from)\s+(torch|wscourse)\b', c, re.M)), len(code))
        assert setup < first_import, f"{nb.name}: code cell {first_import} imports torch before the setup cell"
