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
