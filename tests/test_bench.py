"The benchmark's smoke mode runs end to end as a command, so it never rots (its timings are not checked)."
import subprocess, sys

def test_bench_quick_runs():
    out = subprocess.run([sys.executable, '-m', 'wscourse.bench', '--quick', '--threads', '1'],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for needle in ('torch ' , 'plain', 'MaxScale (layer)', 'WeightNorm', 'WS (convs)', 'scaled WS (convs)',
                   'ref: torch weight_norm', 'ref: naive WS (blog)', 'ActivationStats train step', 'get_dls'):
        assert needle in text, needle

def test_bench_rejects_bad_threads():
    out = subprocess.run([sys.executable, '-m', 'wscourse.bench', '--threads', '0'], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and '--threads must be >= 1' in out.stderr

def test_activation_stats_ab_tool_runs():
    "tools/activation_stats_ab.py (the A/B run lesson 11 shows) still works: load hooks.py from git, one round per thread count."
    import importlib.util, pathlib
    root = pathlib.Path(__file__).parent.parent
    spec = importlib.util.spec_from_file_location('activation_stats_ab', root / 'tools' / 'activation_stats_ab.py')
    ab = importlib.util.module_from_spec(spec); spec.loader.exec_module(ab)
    if not (root / '.git').exists(): import pytest; pytest.skip('not a git checkout')
    old = ab.load_hooks_at('HEAD')
    assert old.ActivationStats is not ab.hooks_now.ActivationStats
    threads = ab.torch.get_num_threads()
    try: res = ab.measure(old, threads=1, rounds=1)
    finally: ab.torch.set_num_threads(threads)
    assert set(res['record_ms']) == {'before', 'now'} and all(v > 0 for v in res['record_ms'].values())
    assert set(res['step_ratio']) == {'before', 'now, synchronous', 'now, worker thread'} and res['default'] in res['step_ratio']
