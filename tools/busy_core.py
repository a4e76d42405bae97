"""Maintainer's check: how much another busy program slows training, with and without OMP_WAIT_POLICY=PASSIVE.

torch's OpenMP threads spin while they wait for work. When another program keeps a core busy, a
spinning thread fights it for the core, and each small op waits for the spinner's time slice. It is
worst when the other program is a torch job too (a second notebook, say): both sides spin. PASSIVE
lets idle threads sleep. The lessons' setup cell sets it before torch is imported; this script shows
why, as times and ratios from one run:

    python tools/busy_core.py [--steps 60] [--repeats 3]

Each measurement is a fresh Python process (the policy is read when torch loads its OpenMP library)
training `simple_cnn` on the offline digits for `--steps` steps, on all cores torch uses.
"""
import argparse, os, subprocess, sys, time

TRAIN = r'''
import time, torch
from wscourse.data import get_dls
from wscourse.learner import simple_cnn
torch.manual_seed(0)
d = get_dls('digits', bs=64)
m = simple_cnn(); opt = torch.optim.SGD(m.parameters(), lr=0.05)
def step(i):
    xb, yb = d.train.x[i * 64 % 1024:][:64], d.train.y[i * 64 % 1024:][:64]
    loss = torch.nn.functional.cross_entropy(m(xb), yb); loss.backward(); opt.step(); opt.zero_grad()
    return loss
for i in range(5): step(i)                      # warm up
t = time.perf_counter()
for i in range({steps}): loss = step(i)
print(time.perf_counter() - t, loss.item(), torch.get_num_threads())
'''

def train_time(steps, policy):
    "Seconds for `steps` training steps in a fresh process with OMP_WAIT_POLICY=`policy` (None: unset), and the last loss."
    env = {**os.environ, 'WSCOURSE_DATASET': 'digits'}
    env.pop('OMP_WAIT_POLICY', None)
    if policy: env['OMP_WAIT_POLICY'] = policy
    out = subprocess.run([sys.executable, '-c', TRAIN.format(steps=steps)], env=env, capture_output=True, text=True, check=True)
    seconds, loss, threads = out.stdout.split()
    return float(seconds), float(loss), int(threads)

SPIN_PYTHON = 'while True: pass'                                  # one core busy, no OpenMP
SPIN_TORCH = 'import torch\na = torch.randn(64, 64)\nwhile True: a @ a'   # another torch job, threads spinning

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=60); ap.add_argument('--repeats', type=int, default=3)
    args = ap.parse_args()
    rows = {}
    for busy in (None, 'a Python loop', 'a torch job'):
        env = {k: v for k, v in os.environ.items() if k != 'OMP_WAIT_POLICY'}   # the other program spins as torch does by default
        other = {'a Python loop': SPIN_PYTHON, 'a torch job': SPIN_TORCH}.get(busy)
        spinner = subprocess.Popen([sys.executable, '-c', other], env=env) if other else None
        try:
            time.sleep(3 if busy else 0)                                 # let it import and start spinning
            for policy in (None, 'PASSIVE'):
                runs = [train_time(args.steps, policy) for _ in range(args.repeats)]
                rows[busy, policy] = runs
        finally:
            if spinner: spinner.kill(); spinner.wait()
    base = min(s for s, _, _ in rows[None, None])
    print(f"{args.steps} training steps of simple_cnn, batch 64, {rows[None, None][0][2]} torch threads, {os.cpu_count()} cores")
    print(f"{'another program':16} {'OMP_WAIT_POLICY':16} {'seconds (each run)':30} {'best / alone, unset':>20}  loss")
    for (busy, policy), runs in rows.items():
        times = ', '.join(f'{s:.2f}' for s, _, _ in runs)
        print(f"{busy or 'none':16} {policy or 'unset':16} {times:30} {min(s for s, _, _ in runs) / base:>19.1f}×  {runs[0][1]:.6f}")
    losses = {round(l, 6) for runs in rows.values() for _, l, _ in runs}
    print('same loss in every run:', len(losses) == 1)

if __name__ == '__main__': main()
