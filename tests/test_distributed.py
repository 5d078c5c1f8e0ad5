"""minigrad.distributed under a real `mpiexec -n 2` (the programs are in
tests/distributed_programs.py), plus what a world of one and the sampler's
arithmetic can show in this process.

The two-rank runs are checked against one process: 2 ranks on half a batch each
must train to the parameters one process reaches on the whole batch.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import minigrad as mg
import minigrad.distributed as dist
from minigrad import functional as F
from minigrad.data import DataLoader

import distributed_programs as programs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIMEOUT = 60          # seconds for one mpiexec job; each takes about 1-3 s

needs_mpiexec = pytest.mark.skipif(
    dist.find_mpiexec() is None,
    reason='mpiexec not found: install MPI with pip install -e ".[distributed]" (mpi4py + the mpich wheel)')


def run_programs(out_dir, *names):
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                       PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    done = dist.launch([os.path.join(HERE, "distributed_programs.py"), out_dir, *names], nprocs=2,
                       timeout=TIMEOUT, capture_output=True, text=True, env=environment, cwd=ROOT)
    return done, time.perf_counter() - start


def results(out_dir, name):
    def load(rank):
        with np.load(os.path.join(out_dir, f"{name}_rank{rank}.npz")) as data:
            return {key: data[key] for key in data.files}
    return load(0), load(1)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One mpiexec job runs every healthy program; the tests read its files."""
    if dist.find_mpiexec() is None:
        pytest.skip('mpiexec not found: install MPI with pip install -e ".[distributed]"')
    out = str(tmp_path_factory.mktemp("two_ranks"))
    done, _ = run_programs(out, "train", "train_cuda", "accumulate", "collectives", "buffers", "checkpoint", "sampler",
                           "unused")
    assert done.returncode == 0, f"mpiexec -n 2 failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return out


# --------------------------------------------------------------------------- training
def test_two_ranks_on_half_batches_train_to_the_parameters_of_one_process_on_the_full_batch(two_ranks):
    X, y = programs.make_data()
    reference = programs.make_model(seed=0)
    reference_losses = programs.train(reference, lambda step: (X, y))
    expected = programs.parameters_of(reference)
    rank0, rank1 = results(two_ranks, "train")
    assert rank0["tiny_buckets"] == len(expected) and rank0["default_buckets"] == 1
    for label in ("tiny", "default"):
        for name, value in expected.items():
            np.testing.assert_allclose(rank0[f"{label}/{name}"], value, rtol=2e-5, atol=2e-6, err_msg=name)
            # the replicas stay identical, bit for bit: same averaged gradient, same update
            np.testing.assert_array_equal(rank0[f"{label}/{name}"], rank1[f"{label}/{name}"])
        # each rank's loss is over its own half; their mean is the full batch's loss
        np.testing.assert_allclose((rank0[f"{label}_losses"] + rank1[f"{label}_losses"]) / 2,
                                   reference_losses, rtol=1e-5)
    assert reference_losses[-1] < reference_losses[0]
    # training moved the weights: a test that could pass on untrained copies would be empty
    assert not np.allclose(expected["0.weight"], programs.parameters_of(programs.make_model(seed=0))["0.weight"])


def test_data_parallel_on_cuda_without_nccl_trains_like_one_process(two_ranks):
    """The cupy double has no NCCL: the buckets live on the device and travel through host memory."""
    X, y = programs.make_data()
    reference = programs.make_model(seed=0)
    programs.train(reference, lambda step: (X, y))
    for result in results(two_ranks, "train_cuda"):
        for name, value in programs.parameters_of(reference).items():
            np.testing.assert_allclose(result[name], value, rtol=2e-5, atol=2e-6, err_msg=name)


def test_accumulation_under_no_sync_equals_the_big_batch_gradient(two_ranks):
    X, y = programs.make_data()
    model = programs.make_model(seed=0)
    F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).backward()
    rank0, rank1 = results(two_ranks, "accumulate")
    for name, param in model.named_parameters():
        np.testing.assert_allclose(rank0[f"grad/{name}"], param.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(rank0[f"grad/{name}"], rank1[f"grad/{name}"])
    # inside no_sync nothing was averaged: the ranks' local gradients differed
    assert not np.allclose(rank0["local/0.weight"], rank1["local/0.weight"])


def test_unused_parameter_is_named_at_the_next_forward_and_find_unused_parameters_averages_the_rest(two_ranks):
    rank0, rank1 = results(two_ranks, "unused")
    assert "spare.weight" in str(rank0["error"]) and "find_unused_parameters=True" in str(rank0["error"])
    np.testing.assert_array_equal(rank0["spare_grad"], np.zeros((2, 2)))
    X, y = programs.make_data()
    model = programs.make_model(seed=0)
    F.cross_entropy(model(mg.tensor(X[0::2])), mg.tensor(y[0::2])).backward()
    half0 = model[0].weight.grad.numpy()
    model.zero_grad()
    F.cross_entropy(model(mg.tensor(X[1::2])), mg.tensor(y[1::2])).backward()
    np.testing.assert_allclose(rank0["net_grad"], (half0 + model[0].weight.grad.numpy()) / 2, rtol=1e-5, atol=1e-7)


def test_batchnorm_buffers_are_rank_zeros_at_every_training_forward(two_ranks):
    rank0, rank1 = results(two_ranks, "buffers")
    np.testing.assert_array_equal(rank0["seen"], rank1["seen"])
    assert not np.allclose(rank0["seen"][1], rank0["seen"][0])          # the statistics did move
    assert not np.allclose(rank0["after"], rank1["after"])              # each rank's last update is its own


def test_checkpoint_saved_by_rank_zero_loads_on_every_rank(two_ranks):
    for result in results(two_ranks, "checkpoint"):
        trained = {k[len("trained/"):]: v for k, v in result.items() if k.startswith("trained/")}
        assert trained
        for name, value in trained.items():
            np.testing.assert_array_equal(result[f"loaded/{name}"], value)


# --------------------------------------------------------------------------- collectives
@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("shape, dtype", programs.COLLECTIVE_CASES)
def test_collectives_match_numpy(two_ranks, device, shape, dtype):
    """cpu: MPI on the arrays in place; cuda: the cupy double, staged through host memory."""
    inputs = [programs.rank_values(r, shape, dtype) for r in (0, 1)]
    if shape == (4, 3):
        inputs = [a.T for a in inputs]
    key = f"{device}/{'x'.join(map(str, shape)) or 'scalar'}/{dtype}"
    expected = {"sum": inputs[0] + inputs[1], "max": np.maximum(inputs[0], inputs[1])}
    if dtype.startswith("float"):
        expected["mean"] = (inputs[0] + inputs[1]) / 2
    for result in results(two_ranks, "collectives"):
        for op, value in expected.items():
            got = result[f"{key}/all_reduce_{op}"]
            assert got.dtype == np.dtype(dtype) and got.shape == value.shape
            np.testing.assert_allclose(got, value, rtol=1e-6, err_msg=op)
        plain = [programs.rank_values(r, shape, dtype) for r in (0, 1)]
        np.testing.assert_array_equal(result[f"{key}/broadcast"], plain[1])
        np.testing.assert_array_equal(result[f"{key}/all_gather"], np.stack(plain))


def test_collective_on_tensors_that_differ_across_ranks_is_an_error_naming_each_rank(two_ranks):
    for result in results(two_ranks, "collectives"):
        message = str(result["mismatch_error"])
        assert "all_reduce" in message and "rank 0: shape (2,)" in message and "rank 1: shape (3,)" in message


# --------------------------------------------------------------------------- sampler
def test_sampler_shards_from_two_ranks_are_disjoint_and_cover_the_data(two_ranks):
    rank0, rank1 = results(two_ranks, "sampler")
    for n in (10, 11, 3):
        for drop_last in (False, True):
            for epoch in (0, 1):
                a, b = rank0[f"{n}/{drop_last}/{epoch}"], rank1[f"{n}/{drop_last}/{epoch}"]
                assert len(a) == len(b)
                together = np.concatenate([a, b])
                if n % 2 == 0:
                    assert sorted(together) == list(range(n))
                elif drop_last:               # one row dropped, none repeated
                    assert len(set(together)) == len(together) == n - 1
                else:                         # one row repeated (padding), every row present
                    assert set(together) == set(range(n)) and len(together) == n + 1
            assert not np.array_equal(rank0[f"{n}/{drop_last}/0"], rank0[f"{n}/{drop_last}/1"]) or n == 3


def sampler_reference():
    with open(os.path.join(HERE, "fixtures", "distributed_sampler_reference.json")) as handle:
        return json.load(handle)


@pytest.mark.parametrize("case", sampler_reference(), ids=lambda c: f"n{c['n']}-of{c['replicas']}-drop{c['drop_last']}")
def test_sampler_pads_and_drops_as_pytorch(case):
    """The fixture holds torch.utils.data.DistributedSampler's unshuffled shards."""
    for rank, expected in enumerate(case["shards"]):
        sampler = dist.DistributedSampler(case["n"], shuffle=False, drop_last=case["drop_last"],
                                          num_replicas=case["replicas"], rank=rank)
        assert list(sampler) == expected and len(sampler) == len(expected)


def test_sampler_set_epoch_reshuffles_and_the_same_epoch_repeats():
    sampler = dist.DistributedSampler(50, num_replicas=3, rank=1, seed=7)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(set(sampler)) != sorted(set(first))
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_sampler_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank must be in 0..1, got rank 2 of 2"):
        dist.DistributedSampler(10, num_replicas=2, rank=2)


def test_dataloader_batches_the_rows_a_sampler_gives_in_its_order():
    X = np.arange(20).reshape(10, 2)
    loader = DataLoader(X, batch_size=2, sampler=dist.DistributedSampler(10, shuffle=False, num_replicas=3,
                                                                          rank=1))
    assert len(loader) == 2
    assert [b[:, 0].tolist() for b in loader] == [[2, 8], [14, 0]]   # rows 1, 4, 7 and 0 (padding)
    assert [b.tolist() for b in DataLoader(X, 3, sampler=[9, 0, 5])] == [[[18, 19], [0, 1], [10, 11]]]
    with pytest.raises(IndexError, match="sampler gave row 10, outside rows 0..9"):
        list(DataLoader(X, 3, sampler=[1, 10]))
    with pytest.raises(ValueError, match="shuffle=True or a sampler"):
        DataLoader(X, 3, shuffle=True, sampler=[1])


# --------------------------------------------------------------------------- failure
@needs_mpiexec
def test_a_rank_that_raises_ends_the_whole_job_non_zero_promptly(tmp_path):
    done, seconds = run_programs(str(tmp_path), "crash")
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stderr and "aborting the whole job" in done.stderr
    assert "must not" not in done.stdout
    assert seconds < TIMEOUT / 2


@needs_mpiexec
def test_models_of_different_shapes_across_ranks_are_refused_at_construction(tmp_path):
    done, _ = run_programs(str(tmp_path), "mismatch")
    assert done.returncode != 0
    assert "rank 1's model differs from rank 0's: parameter '0.weight' is (5, 9)" in done.stderr, done.stderr[-2000:]


# --------------------------------------------------------------------------- a world of one
def test_a_plain_process_is_rank_zero_of_a_world_of_one_and_collectives_are_the_identity():
    assert dist.init() == (0, 1) and dist.rank() == 0 and dist.world_size() == 1 and dist.is_initialized()
    t = mg.tensor([1.0, -2.0])
    assert dist.all_reduce(t, "mean") is t and t.numpy().tolist() == [1.0, -2.0]
    assert dist.broadcast(t) is t
    assert dist.all_gather(t).numpy().tolist() == [[1.0, -2.0]]
    dist.barrier()


def test_data_parallel_in_a_world_of_one_gives_the_plain_gradients_and_passes_through():
    X, y = programs.make_data()
    plain = programs.make_model(seed=0)
    F.cross_entropy(plain(mg.tensor(X)), mg.tensor(y)).backward()
    model = dist.DataParallel(programs.make_model(seed=0), bucket_mb=1e-6)
    F.cross_entropy(model(mg.tensor(X)), mg.tensor(y)).backward()
    for (name, p), q in zip(plain.named_parameters(), model.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy(), err_msg=name)
    assert list(model.state_dict()) == list(plain.state_dict())        # no "module." prefix
    assert model.eval() is model and model.training is False and model.module.training is False


def test_collectives_refuse_bad_arguments():
    with pytest.raises(ValueError, match="op must be one of 'sum', 'mean', 'max', got 'avg'"):
        dist.all_reduce(mg.tensor([1.0]), op="avg")
    with pytest.raises(TypeError, match="expected a minigrad Tensor, got ndarray"):
        dist.all_reduce(np.ones(2))
    with pytest.raises(TypeError, match="'mean' needs a floating-point tensor"):
        dist.all_reduce(mg.tensor([1, 2]), op="mean")
    with pytest.raises(TypeError, match="cannot add or compare bool tensors"):
        dist.all_reduce(mg.tensor([True, False]))
    with pytest.raises(TypeError, match="broadcast: expected a minigrad Tensor, got list"):
        dist.broadcast([1.0])
    with pytest.raises(ValueError, match="src must be a rank in 0..0, got 1"):
        dist.broadcast(mg.tensor([1.0]), src=1)


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env=dict(os.environ, **env))


def test_importing_minigrad_does_not_import_mpi4py():
    done = run_python("import sys, minigrad, minigrad.distributed; print('mpi4py' in sys.modules)")
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_without_mpi4py_a_plain_run_is_a_world_of_one_and_a_launched_one_says_what_to_install():
    hide = "import sys; sys.modules['mpi4py'] = None\nimport minigrad.distributed as dist\nprint(dist.init())"
    done = run_python(hide)
    assert done.returncode == 0 and done.stdout.strip() == "(0, 1)", done.stderr
    done = run_python(hide, PMI_SIZE="2", PMI_RANK="0")
    assert done.returncode != 0
    assert "mpi4py is not installed" in done.stderr and 'pip install -e ".[distributed]"' in done.stderr


def test_buckets_hold_parameters_in_reverse_order_the_first_at_most_one_megabyte():
    from minigrad import nn
    model = nn.Sequential(nn.Dense(512, 512), nn.Dense(512, 600), nn.Dense(600, 4))   # 1 MB, 1.2 MB, 10 KB
    model[0].to(dtype="float64")                            # another dtype: never shares a flat array
    buckets = dist.DataParallel(model, bucket_mb=1.5).buckets.buckets
    names = {id(p): n for n, p in model.named_parameters()}
    layout = [[names[id(p)] for p in bucket.params] for bucket in buckets]
    # 1.weight would fit a 1.5 MB bucket after layer 2, but the first bucket stops at 1 MB
    assert layout == [["2.bias", "2.weight", "1.bias"], ["1.weight"], ["0.bias"], ["0.weight"]]


def test_two_backwards_that_each_reach_part_of_the_model_after_one_forward_are_an_error():
    from minigrad import nn

    class TwoOutputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = nn.Dense(3, 4), nn.Dense(4, 2)

        def forward(self, x):
            hidden = self.first(x)
            return self.second(hidden.detach()), self.second(hidden)
    model = dist.DataParallel(TwoOutputs(), bucket_mb=1e-6)
    partial, full = model(mg.ones(5, 3))
    partial.sum().backward()                            # only `second`: the averaging cannot finish yet
    with pytest.raises(RuntimeError, match=r"parameter 'second\.(weight|bias)' received a gradient twice"):
        full.sum().backward()


def test_frozen_parameters_are_broadcast_but_never_bucketed():
    from minigrad import nn
    net = nn.Sequential(nn.Dense(3, 4), nn.Dense(4, 2))
    net[0].weight.requires_grad = False
    model = dist.DataParallel(net)
    bucketed = {id(p) for bucket in model.buckets.buckets for p in bucket.params}
    assert id(net[0].weight) not in bucketed and id(net[1].weight) in bucketed
    model(mg.ones(5, 3)).sum().backward()
    assert net[0].weight.grad is None and net[1].weight.grad is not None
