"""Verdicts on issue 6's speed targets from many processes' interleaved rounds, with distribution-free intervals.

    python tools/target_verdicts.py --processes 4 --save nbs/bench_runs/target_verdicts.json

Each job (a setup, a thread count and a clock) runs in a fresh process, `--processes` times, the jobs taking turns
so that a slow spell of the host falls on all of them. A process times its variants interleaved, as
`python -m wscourse.bench` does, and reports the seconds of every round. The per-round margins to each target are
pooled over processes; `wscourse.bench.pooled_verdicts` turns them into met / missed / undecided (95 % sign-test
interval of the median, and every process's median on the same side of the target). The raw times are saved, so
the verdicts can be recomputed from the file. `--quick` is a smoke run on the small course CNN.
The default jobs are the targets' setups at 1 and 2 threads, and `WN bs32 1t`, weight norm's three forms alone (so more
processes fit in the time); `--jobs` picks some of them. The train jobs with every variant now also time
`ref: WN on the output`, which the recorded run of those jobs (nbs/bench_runs/target_verdicts.json) predates."""
import argparse, json, pathlib, subprocess, sys, tempfile, time
from collections import namedtuple
from functools import partial

import torch
from wscourse.bench import (COURSE_METHODS, CLOCKS, CONTROLS, VARIANTS, known_setup, activation_stats_rounds, inference_path_rounds, interleaved,
                            pooled_verdicts, run_header, setup_models, show_verdicts, time_train_step, timm_available, TIMM_VARIANTS)

HALF, BS128_CEILING = ('half the best reference',), ('ceiling', 1.10)
R18_32, R18_128 = 'ResNet-18 32×32 bs32', 'ResNet-18 32×32 bs128'
Job = namedtuple('Job', 'kind setup threads clock target variants steps rounds')   # variants None: all; steps per timing; rounds per process
JOBS = {
    'R18 bs32 1t':  Job('train', R18_32, 1, 'thread_time', HALF, None, 3, 10),
    'R18 bs128 1t': Job('train', R18_128, 1, 'thread_time', BS128_CEILING, CONTROLS + COURSE_METHODS, 2, 6),
    'AS 1t':        Job('activation stats', 'course CNN 28×28 bs256', 1, 'perf_counter', ('ceiling', 1.15), None, 10, 25),  # its worker thread counts
    'R18 bs32 2t':  Job('train', R18_32, 2, 'perf_counter', HALF, None, 3, 10),
    'R18 bs128 2t': Job('train', R18_128, 2, 'perf_counter', BS128_CEILING, CONTROLS + COURSE_METHODS, 2, 6),
    'AS 2t':        Job('activation stats', 'course CNN 28×28 bs256', 2, 'perf_counter', ('ceiling', 1.15), None, 10, 25),
    'infer bs32 1t': Job('inference', R18_32, 1, 'thread_time', ('ceiling', 1.02), None, 10, 10),
    'infer bs32 2t': Job('inference', R18_32, 2, 'perf_counter', ('ceiling', 1.02), None, 10, 10),
    'WN bs32 1t':   Job('train', R18_32, 1, 'thread_time', HALF, CONTROLS + ('WeightNorm', 'ref: torch weight_norm', 'ref: WN on the output'), 3, 10),
}
QUICK_SETUP, QUICK_ROUNDS = 'course CNN 28×28 bs32', 3

def child(job, rounds, quick):
    "Run one job in this process; return {name: [seconds per round]}."
    spec = JOBS[job]
    torch.set_num_threads(spec.threads)
    setup, steps, clock = (QUICK_SETUP, 1, CLOCKS[spec.clock]) if quick else (spec.setup, spec.steps, CLOCKS[spec.clock])
    if spec.kind == 'activation stats': return activation_stats_rounds(rounds, bs=known_setup(setup)[2], steps=steps)
    if spec.kind == 'inference': return inference_path_rounds(setup, rounds, steps, clock)
    models, x, y = setup_models(setup, spec.variants and {v: VARIANTS[v] for v in spec.variants})
    return interleaved({v: partial(time_train_step, m, x, y, steps, clock) for v, m in models.items()}, rounds)

def run_child(job, rounds, quick):
    "Run `job` in a fresh Python process; its {name: [seconds per round]}."
    with tempfile.TemporaryDirectory() as d:
        out = pathlib.Path(d) / 'times.json'
        cmd = [sys.executable, __file__, '--child', job, '--out', str(out)] + (['--quick'] if quick else ['--rounds', str(rounds)])
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode: raise RuntimeError(f"job {job!r} failed:\n{done.stderr}")
        return json.loads(out.read_text())

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--processes', type=int, default=4, help='fresh processes per job (at least 2)')
    p.add_argument('--rounds', type=int, default=None, help='rounds per process (default: per job)')
    p.add_argument('--jobs', nargs='+', choices=list(JOBS), default=list(JOBS))
    p.add_argument('--quick', action='store_true', help=f'smoke run: every job on {QUICK_SETUP}, one step per timing, {QUICK_ROUNDS} rounds')
    p.add_argument('--save')
    p.add_argument('--child', choices=list(JOBS), help=argparse.SUPPRESS)
    p.add_argument('--out', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rounds is not None and args.rounds < 1: p.error('--rounds must be >= 1')
    if args.quick and args.rounds is not None: p.error('--rounds cannot be set with --quick')
    rounds = {j: QUICK_ROUNDS if args.quick else args.rounds or JOBS[j].rounds for j in JOBS}
    if args.child:
        pathlib.Path(args.out).write_text(json.dumps(child(args.child, rounds[args.child], args.quick))); sys.exit()
    if args.processes < 2: p.error('--processes must be >= 2')
    if args.processes * min(rounds[j] for j in args.jobs) < 6: p.error('the 95 % interval needs at least 6 rounds per job (--processes × --rounds)')
    if any(v in TIMM_VARIANTS for j in args.jobs if JOBS[j].kind == 'train' for v in JOBS[j].variants or VARIANTS) and not timm_available():
        p.error("the train jobs that time every variant need timm for their references: pip install timm")
    run = dict(header=run_header(), torch=torch.__version__, quick=args.quick, processes=args.processes, order=[],
               jobs={j: dict(JOBS[j]._asdict(), setup=QUICK_SETUP if args.quick else JOBS[j].setup, steps=1 if args.quick else JOBS[j].steps,
                             rounds=rounds[j], times=[]) for j in args.jobs})
    print(run['header'] + (f' — quick: every job on {QUICK_SETUP}, whatever its name says' if args.quick else ''))
    for proc in range(args.processes):
        for j in args.jobs:
            t = time.perf_counter()
            run['jobs'][j]['times'].append(run_child(j, rounds[j], args.quick)); run['order'].append(j)
            print(f"process {proc + 1}/{args.processes} {j}: {time.perf_counter() - t:.0f} s", flush=True)
            if args.save: pathlib.Path(args.save).write_text(json.dumps(run, indent=1))
    show_verdicts(pooled_verdicts(run['jobs']))
