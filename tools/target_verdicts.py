"""Verdicts on issue 6's speed targets from many processes' interleaved rounds, with distribution-free intervals.

    python tools/target_verdicts.py --processes 4 --save nbs/bench_runs/target_verdicts.json

Each job (a setup, a thread count and a clock) runs in a fresh process, `--processes` times, the jobs taking turns
so that a slow spell of the host falls on all of them. A process times its variants interleaved, as
`python -m wscourse.bench` does, and reports the seconds of every round. The per-round margins to each target are
pooled over processes; `wscourse.bench.pooled_verdicts` turns them into met / missed / undecided (95 % sign-test
interval of the median, and every process's median on the same side of the target). The raw times are saved, so
the verdicts can be recomputed from the file. `--quick` is a smoke run on the small course CNN."""
import argparse, json, subprocess, sys, time
from functools import partial

import torch
from wscourse.bench import (COURSE_METHODS, CLOCKS, VARIANTS, activation_stats_rounds, interleaved, pooled_verdicts,
                            run_header, setup_models, show_verdicts, time_train_step)

CONTROLS = ('plain', 'plain, 2nd copy', 'floor: w·1')
HALF, CEILING = ('half the best reference',), ('ceiling', 1.10)
JOBS = {   # name: setup (None: ActivationStats on the course CNN), threads, clock, target, variants (None: all), steps per timing
    'R18 bs32 1t':  ('ResNet-18 32×32 bs32', 1, 'thread_time', HALF, None, 3),
    'R18 bs128 1t': ('ResNet-18 32×32 bs128', 1, 'thread_time', CEILING, CONTROLS + COURSE_METHODS, 2),
    'AS 1t':        (None, 1, 'perf_counter', ('ceiling', 1.15), None, 10),   # the worker thread's time counts: wall clock
    'R18 bs32 2t':  ('ResNet-18 32×32 bs32', 2, 'perf_counter', HALF, None, 3),
    'R18 bs128 2t': ('ResNet-18 32×32 bs128', 2, 'perf_counter', CEILING, CONTROLS + COURSE_METHODS, 2),
    'AS 2t':        (None, 2, 'perf_counter', ('ceiling', 1.15), None, 10),
}
QUICK_SETUP = 'course CNN 28×28 bs32'

def child(job, rounds, quick):
    "Run one job in this process; return {variant: [seconds per round]}."
    setup, threads, clock, _, variants, steps = JOBS[job]
    torch.set_num_threads(threads)
    if setup is None: return activation_stats_rounds(rounds, bs=32 if quick else 256, steps=1 if quick else steps)
    models, x, y = setup_models(QUICK_SETUP if quick else setup, variants and {v: VARIANTS[v] for v in variants})
    return interleaved({v: partial(time_train_step, m, x, y, 1 if quick else steps, CLOCKS[clock]) for v, m in models.items()}, rounds)

def run_child(job, rounds, quick):
    cmd = [sys.executable, __file__, '--child', job, '--rounds', str(rounds)] + ['--quick'] * quick
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode: raise RuntimeError(f"job {job!r} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--processes', type=int, default=4, help='fresh processes per job (at least 2)')
    p.add_argument('--rounds', type=int, default=None, help='rounds per process (default: per job)')
    p.add_argument('--jobs', nargs='+', choices=list(JOBS), default=list(JOBS))
    p.add_argument('--quick', action='store_true', help='smoke run: course CNN, one step per timing')
    p.add_argument('--child', choices=list(JOBS), help=argparse.SUPPRESS)
    p.add_argument('--save')
    args = p.parse_args()
    if args.processes < 2: p.error('--processes must be >= 2')
    if args.rounds is not None and args.rounds < 1: p.error('--rounds must be >= 1')
    default_rounds = {'R18 bs32 1t': 10, 'R18 bs128 1t': 6, 'R18 bs32 2t': 10, 'R18 bs128 2t': 6, 'AS 1t': 25, 'AS 2t': 25}
    if args.child:
        print(json.dumps(child(args.child, args.rounds or default_rounds[args.child], args.quick))); sys.exit()
    run = dict(header=run_header(), torch=torch.__version__, quick=args.quick, processes=args.processes,
               jobs={j: dict(setup=QUICK_SETUP if args.quick and JOBS[j][0] else JOBS[j][0], threads=JOBS[j][1],
                             clock=JOBS[j][2], target=JOBS[j][3], steps=JOBS[j][5], times=[]) for j in args.jobs})
    print(run['header'])
    for proc in range(args.processes):
        for j in args.jobs:
            t = time.perf_counter()
            run['jobs'][j]['times'].append(run_child(j, 3 if args.quick else args.rounds or default_rounds[j], args.quick))
            print(f"process {proc + 1}/{args.processes} {j}: {time.perf_counter() - t:.0f} s", flush=True)
            if args.save:
                with open(args.save, 'w') as f: json.dump(run, f, indent=1)
    show_verdicts(pooled_verdicts(run['jobs']))
