"""Page faults and system time per training step with glibc's malloc as it comes and after `keep_freed_memory()`.

    python tools/allocator_ab.py --save nbs/bench_runs/allocator_ab.json

Two measurements, ResNet-18 32×32 bs32 at one torch thread:

- One model per process, as in a learner's own training script: for each variant and setting a fresh process builds
  that one model, runs three untimed steps, then times `--steps` steps (`time.thread_time`); the process's minor page
  faults and system CPU time are counted over those steps and the last untimed one. Rounds go variant by variant,
  alternating the settings.
- The benchmark's own situation: every variant alive in one process, interleaved as in `python -m wscourse.bench`,
  malloc as it comes, with the faults and system time of each variant's steps (warm-up step included)."""
import argparse, json, resource, statistics, subprocess, sys, time
from functools import partial

import torch
from wscourse.bench import VARIANTS, setup_models, time_train_step, interleaved, paired_ratio, keep_freed_memory, run_header

SETUP = 'ResNet-18 32×32 bs32'
SETTINGS = ('malloc as it comes', 'keep_freed_memory()')
ALL_MODELS_STEPS = 5                                   # timed steps per variant and round when all models share a process
ONE_MODEL_VARIANTS = ('plain', 'floor: w·1', 'MaxScale (layer)', 'WeightNorm', 'WS (convs)', 'scaled WS (convs)')

def usage_of(fn):
    "(result of fn(), minor page faults, system CPU seconds) of this process while fn runs."
    before = resource.getrusage(resource.RUSAGE_SELF)
    out = fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return out, after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime

def one_model(variant, setting, steps, setup=SETUP):
    "A process's single model: ms per timed step (thread_time), faults and system ms per step over those and the last untimed one."
    if setting not in SETTINGS: raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if steps < 1: raise ValueError(f"steps must be >= 1, got {steps}")
    if setting == SETTINGS[1] and not keep_freed_memory(): raise SystemExit('keep_freed_memory() needs glibc')
    torch.set_num_threads(1)
    models, x, y = setup_models(setup, {variant: VARIANTS[variant]})
    model = models[variant]
    time_train_step(model, x, y, 1)
    seconds, faults, sys_s = usage_of(lambda: time_train_step(model, x, y, steps, time.thread_time))
    n = steps + 1                                      # time_train_step's own warm-up step is inside the usage window
    return dict(ms=seconds * 1e3, faults_per_step=faults / n, sys_ms_per_step=sys_s / n * 1e3)

def all_models(rounds, steps=ALL_MODELS_STEPS, setup=SETUP):
    "Every variant alive in this process, interleaved: train ratios, and each variant's faults and system ms per step."
    torch.set_num_threads(1)
    models, x, y = setup_models(setup)
    faults, sys_ms = {k: [] for k in models}, {k: [] for k in models}
    def measured(name, model):
        seconds, f, s = usage_of(lambda: time_train_step(model, x, y, steps, time.thread_time))
        faults[name].append(f / (steps + 1)); sys_ms[name].append(s / (steps + 1) * 1e3)
        return seconds
    times = interleaved({k: partial(measured, k, m) for k, m in models.items()}, rounds)
    median = lambda d: {k: statistics.median(v) for k, v in d.items()}
    return dict(plain_ms=statistics.median(times['plain']) * 1e3, ratios={k: paired_ratio(times, k) for k in times},
                faults_per_step=median(faults), sys_ms_per_step=median(sys_ms))

def in_child(*args):
    "Run `one_model(*args[1:])` (args[0] == 'one') or `all_models(*args[1:])` in a fresh process; its result."
    out = subprocess.run([sys.executable, __file__, '--child', json.dumps(args)], capture_output=True, text=True)
    if out.returncode: raise RuntimeError(f"child process {args} failed:\n{out.stderr}")
    return json.loads(out.stdout)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rounds', type=int, default=3, help='fresh processes per variant and setting')
    p.add_argument('--steps', type=int, default=6, help='timed steps in each of them')
    p.add_argument('--all-models-rounds', type=int, default=5)
    p.add_argument('--save'); p.add_argument('--child', help=argparse.SUPPRESS)
    args = p.parse_args()
    for name in ('rounds', 'steps', 'all_models_rounds'):
        if getattr(args, name) < 1: p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.child:
        kind, *rest = json.loads(args.child)
        print(json.dumps(one_model(*rest) if kind == 'one' else all_models(*rest)))
        sys.exit()
    one = {v: {s: [] for s in SETTINGS} for v in ONE_MODEL_VARIANTS}
    for _ in range(args.rounds):
        for v in ONE_MODEL_VARIANTS:
            for s in SETTINGS: one[v][s].append(in_child('one', v, s, args.steps))
    res = dict(header=run_header(), torch=torch.__version__,
               setup=SETUP, threads=1, clock='thread_time', rounds=args.rounds, steps=args.steps,
               one_model={v: {s: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for s, runs in by_setting.items()}
                          for v, by_setting in one.items()},
               all_models=dict(setting=SETTINGS[0], rounds=args.all_models_rounds, steps=ALL_MODELS_STEPS,
                               **in_child('all', args.all_models_rounds, ALL_MODELS_STEPS)))
    print(json.dumps(res, indent=1))
    if args.save:
        with open(args.save, 'w') as f: json.dump(res, f, indent=1)
