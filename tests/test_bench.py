"The benchmark's smoke mode runs end to end as a command, so it never rots (its timings are not checked)."
import pathlib, platform, subprocess, sys
import pytest
from hypothesis import given, settings, strategies as st
from wscourse.bench import pooled_verdicts, sign_test_interval

needs_glibc = pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='keep_freed_memory() works with glibc only')

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
    ab = _load_tool('activation_stats_ab')
    if not (pathlib.Path(__file__).parent.parent / '.git').exists(): pytest.skip('not a git checkout')
    old = ab.load_hooks_at('HEAD')
    assert old.ActivationStats is not ab.hooks_now.ActivationStats
    threads = ab.torch.get_num_threads()
    try: res = ab.measure(old, threads=1, rounds=1)
    finally: ab.torch.set_num_threads(threads)
    assert set(res['record_ms']) == {'before', 'now'} and all(v > 0 for v in res['record_ms'].values())
    assert set(res['step_ratio']) == {'before', 'now, synchronous', 'now, worker thread'} and res['default'] in res['step_ratio']

@needs_glibc
def test_bench_clock_and_kept_memory_options():
    out = subprocess.run([sys.executable, '-m', 'wscourse.bench', '--quick', '--threads', '1', '--clock', 'thread_time', '--keep-freed-memory'],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert 'clock thread_time' in out.stdout and 'freed memory kept' in out.stdout
    out = subprocess.run([sys.executable, '-m', 'wscourse.bench', '--threads', '2', '--clock', 'thread_time'], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and '--clock thread_time needs --threads 1' in out.stderr

def _load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, pathlib.Path(__file__).parent.parent / 'tools' / f'{name}.py')
    tool = importlib.util.module_from_spec(spec); spec.loader.exec_module(tool)
    return tool

def test_allocator_ab_tool_runs():
    "tools/allocator_ab.py (lesson 11's allocator run) still works: the all-models part on the quick setup, one round."
    ab = _load_tool('allocator_ab')
    threads = ab.torch.get_num_threads()
    try: res = ab.all_models(rounds=1, steps=1, setup='course CNN 28×28 bs32')
    finally: ab.torch.set_num_threads(threads)
    assert set(res['ratios']) == set(res['faults_per_step']) == set(res['sys_ms_per_step']) >= {'plain', 'floor: w·1', 'WS (convs)'}
    assert all(v >= 0 for v in res['faults_per_step'].values()) and res['plain_ms'] > 0

@needs_glibc
def test_keep_freed_memory_stops_page_faults():
    "Where a fresh process training one weight-standardized ResNet-18 takes thousands of page faults a step (glibc returning freed memory: seen on AMD hosts), keep_freed_memory() cuts them to under a third."
    ab = _load_tool('allocator_ab')
    as_it_comes = ab.in_child('one', 'WS (convs)', ab.SETTINGS[0], 4)
    if as_it_comes['faults_per_step'] <= 1000:                      # seen on an Intel host: 0.2 faults a step, nothing to stop
        pytest.skip(f"this host's allocator keeps freed memory already ({as_it_comes['faults_per_step']} page faults a step)")
    kept = ab.in_child('one', 'WS (convs)', ab.SETTINGS[1], 4)       # a heap that still grows once in the window: a few hundred a step
    assert kept['faults_per_step'] < as_it_comes['faults_per_step'] / 3, (as_it_comes, kept)

@settings(deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=6, max_size=200, unique=True), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_sign_test_interval_takes_the_narrowest_allowed_ranks(values, confidence):
    "The interval is x₍ₖ₎, x₍ₙ₊₁₋ₖ₎ with the binomial coverage of k, and k + 1 would cover less than the confidence asked for."
    import math
    def coverage_of(k, n): return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n
    try: low, high, coverage = sign_test_interval(values, confidence)
    except ValueError: assert coverage_of(1, len(values)) < confidence; return       # too few values even for min and max
    xs, n = sorted(values), len(values)
    k = xs.index(low) + 1
    assert high == xs[n - k] and coverage == coverage_of(k, n) >= confidence
    assert k == n // 2 or coverage_of(k + 1, n) < confidence

def test_target_verdicts_tool_runs(tmp_path):
    "tools/target_verdicts.py (lesson 11's pooled verdicts) runs in its smoke mode: jobs take turns, every round is kept, the saved times give back its verdicts."
    import contextlib, io, json
    from wscourse.bench import show_verdicts
    path = tmp_path / 'verdicts.json'
    tool = str(pathlib.Path(__file__).parent.parent / 'tools' / 'target_verdicts.py')
    jobs = ['WN bs32 1t', 'R18 bs128 1t', 'AS 2t', 'infer bs32 1t']     # each kind of job and target; none needs timm
    out = subprocess.run([sys.executable, tool, '--quick', '--processes', '2', '--jobs', *jobs, '--save', str(path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    run = json.loads(path.read_text())
    assert run['order'] == jobs * 2                                     # the jobs take turns: all once, then all again
    for job in run['jobs'].values():
        assert len(job['times']) == 2
        assert all(len(rounds) == job['rounds'] == 3 for process in job['times'] for rounds in process.values())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed): show_verdicts(pooled_verdicts(run['jobs']))
    assert printed.getvalue() in out.stdout
    for bad, message in ((['--processes', '1'], '--processes must be >= 2'), (['--quick', '--rounds', '5'], '--rounds cannot be set with --quick'),
                         (['--processes', '2', '--rounds', '2'], 'at least 6 rounds')):
        refused = subprocess.run([sys.executable, tool, *bad], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
