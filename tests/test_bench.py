"`python -m wscourse.bench` runs end to end as a command, so it never rots (its timings are not checked), and refuses bad arguments."
import json, subprocess, sys
from wscourse.bench import TABLE, VARIANTS, COURSE_METHODS, REFERENCES, load_run, main

def test_bench_quick_runs_and_saves(tmp_path):
    path = tmp_path / 'run.json'
    out = subprocess.run([sys.executable, '-m', 'wscourse.bench', '--quick', '--threads', '1', '--save', str(path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for needle in ('torch ', '1 torch thread(s)', *TABLE, 'plain, 2nd copy', 'floor: w·1', 'ref: torch weight_norm'):
        assert needle in out.stdout, needle
    run = load_run(path)
    assert {r[1] for r in run['rows']} >= set(TABLE) and all(len(r) == 6 and r[2] > 0 and r[4] > 0 for r in run['rows'])
    assert run['threads'] == 1 and run['machine'] in run['header']

def test_bench_rejects_bad_arguments():
    for bad, message in ((['--threads', '0'], '--threads must be >= 1'), (['--rounds', '0'], '--rounds must be >= 1')):
        out = subprocess.run([sys.executable, '-m', 'wscourse.bench', *bad], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and message in out.stderr, out.stderr

def test_variants_cover_the_table_and_the_references():
    "The command line times every row of lesson 11's table, and every reference lesson 10 compares a method with."
    assert set(TABLE) <= set(VARIANTS) and set(COURSE_METHODS) <= set(TABLE)
    assert set(REFERENCES) == set(COURSE_METHODS) and all(r in VARIANTS for refs in REFERENCES.values() for r in refs)

def test_recorded_runs_load():
    "The runs lessons 10 and 11 and the README quote still load, with the four parametrizations and the naive forms."
    for t in (1, 2):
        run = load_run(f'nbs/bench_runs/threads{t}.json')
        assert run['threads'] == t and {r[1] for r in run['rows']} >= {*COURSE_METHODS, 'ref: naive WS (blog)', 'ref: naive max (forum)'}
