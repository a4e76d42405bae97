"""Train-step ratios to plain on ResNet-18 (32×32, bs 32) at one torch thread, timed by CPU time (`time.thread_time`).

    python tools/train_step_thread_time.py --save nbs/bench_runs/train_step_thread_time.json

The same measurement as `python -m wscourse.bench` (interleaved rounds, median of per-round ratios, every variant
of `wscourse.bench.VARIANTS`), for the one setup where the targets are tightest, with the clock that a busy shared
host disturbs least: at one thread all of torch's work runs on the calling thread, so its CPU time is the step's
cost without the time the host gave to other programs."""
import argparse, json, statistics, time
from functools import partial

import torch
from wscourse.bench import setup_models, time_train_step, interleaved, paired_ratio, run_header

SETUP = 'ResNet-18 32×32 bs32'

def measure(rounds, steps=5, seed=0):
    torch.set_num_threads(1)
    models, x, y = setup_models(SETUP, seed=seed)
    times = interleaved({k: partial(time_train_step, m, x, y, steps, time.thread_time) for k, m in models.items()}, rounds)
    return dict(setup=SETUP, threads=1, clock='thread_time', plain_ms=statistics.median(times['plain']) * 1e3,
                ratios={k: paired_ratio(times, k) for k in times})

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rounds', type=int, default=11); p.add_argument('--save')
    args = p.parse_args()
    res = dict(header=run_header(), torch=torch.__version__,
               rounds=args.rounds, **measure(args.rounds))
    print(json.dumps(res, indent=1))
    if args.save:
        with open(args.save, 'w') as f: json.dump(res, f, indent=1)
