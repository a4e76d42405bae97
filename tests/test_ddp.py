"""The course's parametrizations under DistributedDataParallel: two CPU processes (gloo, 127.0.0.1), each on its half of
every global batch, end with the weights of one process trained on the whole batch.

Run as a script, this file is one DDP worker (the tests start two of them with RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT set, as torchrun would)."""
import json, os, runpy, socket, subprocess, sys, time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wscourse.scaling import MaxScale, reparametrize
from wscourse.standardization import ScaledWeightStandardization, WeightStandardization
from wscourse.weight_norm import WeightNorm

PARAMETRIZATIONS = {'MaxScale': MaxScale, 'WeightNorm': WeightNorm, 'WeightStandardization': WeightStandardization,
                    'ScaledWeightStandardization': ScaledWeightStandardization}
STEPS, GLOBAL_BS, LR, TOL = 4, 32, 0.01, 1e-5     # lr 0.01: raw weights move by up to 2.7 and stay O(1)
NB = Path(__file__).resolve().parents[1] / 'nbs' / '01_learner.ipynb'

def small_net(name):
    "A small conv net with a linear head (8×8 inputs), `name`'s parametrization on every Conv2d and Linear weight."
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 2 * 2, 10))
    return reparametrize(model, PARAMETRIZATIONS[name])

def global_batches():
    "The same STEPS global batches in every process."
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(GLOBAL_BS, 1, 8, 8, generator=g), torch.randint(0, 10, (GLOBAL_BS,), generator=g)) for _ in range(STEPS)]

def train(net, rank=0, world=1):
    "STEPS SGD steps of `net` (a model, or a DDP wrapper), each on this rank's equal slice of the global batch."
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9)
    for xb, yb in global_batches():
        loss = F.cross_entropy(net(xb.chunk(world)[rank]), yb.chunk(world)[rank])
        opt.zero_grad(); loss.backward(); opt.step()

def worker(out_dir):
    "One DDP process: every parametrization in turn, its final state_dict saved per rank."
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.set_num_threads(1)
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    dist.init_process_group('gloo', init_method=f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}", rank=rank, world_size=world)
    try:
        states = {}
        for name in PARAMETRIZATIONS:
            model = small_net(name)
            train(DDP(model), rank, world)
            states[name] = model.state_dict()
        torch.save(states, Path(out_dir) / f'rank{rank}.pt')
        dist.barrier()                                   # both done before either tears down
    finally: dist.destroy_process_group()
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)       # done: skip interpreter teardown, where gloo's threads can still abort the process (pytorch#179291)

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def run_two(cmd, tmp, extra_env=None, timeout=180):
    "Start `cmd` twice as ranks 0 and 1 of a 2-process group on 127.0.0.1; fail with their stderr if either fails."
    port, procs = free_port(), []
    for rank in (0, 1):
        env = {**os.environ, 'RANK': str(rank), 'LOCAL_RANK': str(rank), 'WORLD_SIZE': '2', 'MASTER_ADDR': '127.0.0.1',
               'MASTER_PORT': str(port), 'OMP_NUM_THREADS': '1', **(extra_env or {})}
        procs.append(subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try: results = [(p.wait(timeout=timeout), p.stderr.read()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None: p.kill()
    for rank, (code, err) in enumerate(results): assert code == 0, f"rank {rank} failed:\n{err[-3000:]}"

def one_process(fn):
    "`fn()` on one thread, as each DDP process runs: both then add up in the same order, and only DDP's averaging differs."
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try: return fn()
    finally: torch.set_num_threads(threads)

def max_diff(a, b): return max((a[k] - b[k]).abs().max().item() for k in a)

@pytest.fixture(scope='module')
def ddp_states(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ddp')
    start = time.perf_counter()
    run_two([sys.executable, str(Path(__file__).resolve()), str(tmp)], tmp)
    print(f"\nDDP run of {len(PARAMETRIZATIONS)} parametrizations: {time.perf_counter() - start:.1f} s")
    return [torch.load(tmp / f'rank{r}.pt') for r in (0, 1)]

@pytest.mark.parametrize('name', list(PARAMETRIZATIONS))
def test_ddp_equals_one_process_on_the_global_batch(ddp_states, name):
    def reference():
        model = small_net(name); train(model)
        return model.state_dict()
    ref = one_process(reference)
    rank0, rank1 = ddp_states[0][name], ddp_states[1][name]
    assert rank0.keys() == rank1.keys() == ref.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in ref)        # DDP keeps the ranks identical
    assert max_diff(ref, small_net(name).state_dict()) > 1e-3        # (the steps did move the weights)
    diff = max_diff(rank0, ref)
    print(f"\n{name}: max |DDP - one process| = {diff:.2e}")
    assert diff <= TOL

def test_notebook_script_under_torchrun(tmp_path):
    "The DDP script lesson 01 shows, run as it says (torchrun, 2 processes), matches its one-process run."
    cells = [''.join(c['source']) for c in json.loads(NB.read_text())['cells'] if c['cell_type'] == 'code']
    src = next(s for s in cells if s.startswith('ddp_script = '))
    ns = {}; exec(src, ns)
    script = tmp_path / 'ddp_digits.py'; script.write_text(ns['ddp_script'])
    (tmp_path / 'two').mkdir(); (tmp_path / 'one').mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')}
    run = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                          str(script), str(tmp_path / 'two')], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, 'argv', [str(script), str(tmp_path / 'one')])
        one_process(lambda: runpy.run_path(str(script), run_name='__main__'))
    two, one = [torch.load(tmp_path / 'two' / f'rank{r}.pt') for r in (0, 1)], torch.load(tmp_path / 'one' / 'rank0.pt')
    assert all(torch.equal(two[0][k], two[1][k]) for k in one)
    assert max_diff(two[0], one) <= TOL

if __name__ == '__main__': worker(sys.argv[1])
