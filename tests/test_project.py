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
