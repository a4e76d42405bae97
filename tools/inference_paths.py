"""Inference time of each course parametrization via its eval cache, inside `parametrize.cached()` and baked, as ratios to plain.

    python tools/inference_paths.py --save nbs/bench_runs/inference_paths.json

Runs `wscourse.bench.bench_inference_paths` for the course CNN (bs 256) and ResNet-18 (32×32, bs 32) at 1 torch
thread, timed with `time.thread_time` (the CPU time of the one thread doing the work, which a busy shared host
disturbs less than the wall clock), and at 2 threads with `time.perf_counter` (the work is then spread over two
threads, so only the wall clock sees all of it)."""
import argparse, json, time

import torch
from wscourse.bench import bench_inference_paths, run_header

SETUPS = ('course CNN 28×28 bs256', 'ResNet-18 32×32 bs32')
CLOCK_BY_THREADS = {1: ('thread_time', time.thread_time), 2: ('perf_counter', time.perf_counter)}

def measure(threads, rounds):
    torch.set_num_threads(threads)
    clock_name, clock = CLOCK_BY_THREADS[threads]
    return [dict(threads=threads, clock=clock_name, **bench_inference_paths(s, rounds=rounds, clock=clock)) for s in SETUPS]

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rounds', type=int, default=15); p.add_argument('--save')
    args = p.parse_args()
    res = dict(header=run_header(), torch=torch.__version__,
               rounds=args.rounds, runs=[r for t in CLOCK_BY_THREADS for r in measure(t, args.rounds)])
    print(json.dumps(res, indent=1))
    if args.save:
        with open(args.save, 'w') as f: json.dump(res, f, indent=1)
