"""DistributedDataParallel over two CPU processes (gloo): the models need no device globals."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import wavevision


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # same initial weights on both ranks
        model = wavevision.create_model("wavemix", num_classes=3, depth=2, final_dim=16, ff_channel=16, level=2, dropout=0.0)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        gen = torch.Generator().manual_seed(100 + rank)  # different data per rank
        for _ in range(2):
            x = torch.randn(4, 3, 32, 32, generator=gen)
            y = torch.randint(0, 3, (4,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(ddp(x), y).backward()
            opt.step()
        torch.save({k: v.detach().clone() for k, v in model.named_parameters()}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_ddp_two_processes_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    torch.manual_seed(0)
    init = wavevision.create_model("wavemix", num_classes=3, depth=2, final_dim=16, ff_channel=16, level=2, dropout=0.0)
    assert any(not torch.equal(p, a[k]) for k, p in init.named_parameters())  # training moved the weights
