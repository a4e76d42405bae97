"""A/B timing of ActivationStats against an earlier version of wscourse/hooks.py, in one process, interleaved.

    python tools/activation_stats_ab.py 5936087 --save nbs/bench_runs/activation_stats_ab.json

Loads `wscourse/hooks.py` as it was at the given git revision, then times, at 1 and 2 torch threads:
the per-step cost of computing the statistics of the ten hooked outputs of the course CNN (bs 256),
and the train-step ratio to plain (wscourse.bench's method: median of per-round ratios) of the old
callback and of the current one recording synchronously and on its worker thread; `default` names
the one `background=None` picks at that thread count."""
import argparse, json, pathlib, statistics, subprocess, sys, time, types
from functools import partial
from types import SimpleNamespace

import torch
from wscourse import hooks as hooks_now
from wscourse.bench import course_cnn, time_train_step, interleaved, paired_ratio, run_header

def load_hooks_at(rev):
    src = subprocess.run(['git', 'show', f'{rev}:wscourse/hooks.py'], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).resolve().parent.parent).stdout
    mod = types.ModuleType(f'hooks_{rev}'); mod.__package__ = 'wscourse'
    exec(compile(src, f'hooks@{rev}', 'exec'), mod.__dict__)
    return mod

def record_seconds(stats, outs, reps=5):
    "Seconds to record every output in `outs` once (one training step's worth), averaged over `reps`."
    t = time.perf_counter()
    for _ in range(reps):
        for o in outs: stats._record(SimpleNamespace(means=[], stds=[], deads=[], hists=[]), None, None, o)
    return (time.perf_counter() - t) / reps

def measure(old, threads, rounds):
    torch.set_num_threads(threads); torch.manual_seed(0)
    model = course_cnn()
    x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    outs, a = [], x
    with torch.no_grad():
        for c in model.children(): a = c(a); outs.append(a)
    impls = {'before': old.ActivationStats(), 'now': hooks_now.ActivationStats(background=False)}
    rec = interleaved({k: partial(record_seconds, s, outs) for k, s in impls.items()}, rounds)
    impls = {'before': old.ActivationStats(), 'now, synchronous': hooks_now.ActivationStats(background=False),
             'now, worker thread': hooks_now.ActivationStats(background=True)}
    learner = SimpleNamespace(model=model, training=True)
    def with_hooks(stats):
        stats.before_fit(learner)
        try: return time_train_step(model, x, y, 5)
        finally: stats.remove()
    step = interleaved({'plain': partial(time_train_step, model, x, y, 5), **{k: partial(with_hooks, s) for k, s in impls.items()}}, rounds)
    return dict(threads=threads, record_ms={k: statistics.median(v) * 1e3 for k, v in rec.items()},
                record_ratio_now_to_before=paired_ratio(rec, 'now', 'before'),
                plain_step_ms=statistics.median(step['plain']) * 1e3,
                step_ratio={k: paired_ratio(step, k) for k in impls},
                default='now, worker thread' if hooks_now._idle_cores() else 'now, synchronous')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('rev'); p.add_argument('--rounds', type=int, default=15); p.add_argument('--save')
    args = p.parse_args()
    old = load_hooks_at(args.rev)
    res = dict(header=run_header(), rev=args.rev, torch=torch.__version__, runs=[measure(old, t, args.rounds) for t in (1, 2)])
    print(json.dumps(res, indent=1))
    if args.save:
        with open(args.save, 'w') as f: json.dump(res, f, indent=1)
