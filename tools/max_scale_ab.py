"""A/B timing of MaxScale against an earlier version of wscourse/scaling.py, in one process, interleaved.

    python tools/max_scale_ab.py d0235bb --save nbs/bench_runs/max_scale_ab.json

Loads `wscourse/scaling.py` as it was at the given git revision, then, at 1 and 2 torch threads:
1. what fresh memory costs: dividing every ResNet-18 weight by a number into new tensors vs into kept ones;
2. MaxScale's own forward + backward over those weights (before, now, and the w·1 floor), less the
   same loop without a parametrization;
3. ResNet-18 (32×32) train-step ratios to plain at batch 32 and 128 (wscourse.bench's method:
   median of per-round ratios)."""
import argparse, copy, datetime, json, pathlib, statistics, subprocess, time, types
from functools import partial

import torch
from torch import nn
from wscourse import scaling as scaling_now
from wscourse.bench import resnet18, time_train_step, interleaved, paired_ratio, median_seconds, machine, TimesOne

def load_scaling_at(rev):
    src = subprocess.run(['git', 'show', f'{rev}:wscourse/scaling.py'], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).resolve().parent.parent).stdout
    mod = types.ModuleType(f'scaling_{rev}'); mod.__package__ = 'wscourse'
    exec(compile(src, f'scaling@{rev}', 'exec'), mod.__dict__)
    return mod

def weights_of(model): return [p.detach().clone() for p in model.parameters() if p.ndim > 1]

def division_seconds(ws, outs=None, reps=3):
    "Seconds to divide every tensor in `ws` by 3, into new tensors (`outs=None`) or into `outs`."
    t = time.perf_counter()
    for _ in range(reps):
        res = [w / 3. for w in ws] if outs is None else [torch.div(w, 3., out=o) for w, o in zip(ws, outs)]
        del res
    return (time.perf_counter() - t) / reps

def parametrization_seconds(ws, make, reps=3):
    "A function timing forward + backward of `make()` on every weight in `ws` (upstream gradient: a fresh tensor, as a layer gives)."
    ps = [make() for _ in ws]
    ins = [w.clone().requires_grad_() for w in ws]
    gs = [torch.randn_like(w) for w in ws]
    def run():
        t = time.perf_counter()
        for _ in range(reps):
            outs = [p(i) for p, i in zip(ps, ins)]
            torch.autograd.backward([(o * g).sum() for o, g in zip(outs, gs)]); del outs
            for i in ins: i.grad = None
        return (time.perf_counter() - t) / reps
    return run

def measure(old, threads, rounds, batch_sizes=(32, 128), steps=2):
    torch.set_num_threads(threads); torch.manual_seed(0)
    base = resnet18()
    ws = weights_of(base)
    outs = [torch.empty_like(w) for w in ws]
    div = median_seconds(interleaved({'fresh': partial(division_seconds, ws), 'kept': partial(division_seconds, ws, outs)}, rounds))
    makes = {'none': nn.Identity, 'floor: w·1': TimesOne, 'before': old.MaxScale, 'now': scaling_now.MaxScale}
    own = median_seconds(interleaved({k: parametrization_seconds(ws, m) for k, m in makes.items()}, rounds))
    res = dict(threads=threads, division_ms={k: v * 1e3 for k, v in div.items()},
               parametrization_ms={k: (v - own['none']) * 1e3 for k, v in own.items() if k != 'none'}, step_ratio={}, plain_step_ms={})
    for bs in batch_sizes:
        x, y = torch.randn(bs, 3, 32, 32), torch.randint(0, 10, (bs,))
        models = {'plain': copy.deepcopy(base), 'floor: w·1': scaling_now.reparametrize(copy.deepcopy(base), TimesOne),
                  'before': old.reparametrize(copy.deepcopy(base), old.MaxScale), 'now': scaling_now.reparametrize(copy.deepcopy(base), scaling_now.MaxScale)}
        t = interleaved({k: partial(time_train_step, m, x, y, steps) for k, m in models.items()}, rounds)
        res['plain_step_ms'][bs] = statistics.median(t['plain']) * 1e3
        res['step_ratio'][bs] = {k: paired_ratio(t, k) for k in models if k != 'plain'}
    return res

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('rev'); p.add_argument('--rounds', type=int, default=11); p.add_argument('--save')
    args = p.parse_args()
    old = load_scaling_at(args.rev)
    res = dict(header=f"{datetime.date.today()} — torch {torch.__version__} — {machine()}", rev=args.rev, torch=torch.__version__,
               runs=[measure(old, t, args.rounds) for t in (1, 2)])
    print(json.dumps(res, indent=1))
    if args.save:
        with open(args.save, 'w') as f: json.dump(res, f, indent=1)
