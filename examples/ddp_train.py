"""Train a tiny model with DistributedDataParallel (gloo, CPU) across Slurm tasks; one Runyard run.

    sbatch -N2 --ntasks-per-node=1 -p debug --wrap 'srun .venv/bin/python examples/ddp_train.py'
    torchrun --nproc-per-node=2 examples/ddp_train.py          # also works, outside Slurm

Every rank calls ``runyard.init`` with the same arguments. All ranks get the same run id (the
client derives it from the Slurm job, or takes RUNYARD_RUN_ID; outside both, rank 0 picks one
and broadcasts it), and only global rank 0 records user metrics: the loss of every step,
averaged over the ranks, then the final all-reduced loss and the nodes that took part.

Rendezvous comes from Slurm's environment when ``srun`` launched the script: RANK =
SLURM_PROCID, WORLD_SIZE = SLURM_STEP_NUM_TASKS (else SLURM_NTASKS), LOCAL_RANK = SLURM_LOCALID,
MASTER_ADDR = the address of the job's first node (``scontrol show node``'s NodeAddr, else its
name if that resolves, else 127.0.0.1), MASTER_PORT = 20000 + SLURM_JOB_ID % 10000. Variables
already set (by torchrun, or by hand) win; MASTER_PORT is the one to set when that port is taken.
With a loopback MASTER_ADDR, gloo is pinned to ``lo`` unless GLOO_SOCKET_IFNAME says otherwise.

Needs torch (scripts/install-torch.sh puts a CPU build into a venv).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

try:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
except ImportError as exc:  # pragma: no cover - depends on the venv
    sys.exit(f"ddp_train.py needs torch ({exc}); install it with: bash scripts/install-torch.sh")

import runyard

DEFAULT_PORT = 29500


def _scontrol(*args: str) -> str | None:
    try:
        done = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _first_node(nodelist: str) -> str:
    out = _scontrol("show", "hostnames", nodelist)
    if out and out.split():
        return out.split()[0]
    # No scontrol: "n[1-3],gpu7" -> "n1"
    head = nodelist.split(",")[0]
    if "[" in head:
        prefix, rest = head.split("[", 1)
        head = prefix + rest.split("-")[0].split(",")[0].rstrip("]")
    return head


def _resolves(name: str) -> bool:
    try:
        socket.getaddrinfo(name, None)
    except OSError:
        return False
    return True


def master_addr_for(nodelist: str) -> str:
    """The address of the job's first node, as Slurm itself reaches it."""
    node = _first_node(nodelist)
    out = _scontrol("show", "node", node, "-o")
    for field in (out or "").split():
        if field.startswith("NodeAddr="):
            addr = field.split("=", 1)[1]
            if addr and _resolves(addr):
                return addr
    if _resolves(node):
        return node
    return "127.0.0.1"


def slurm_rendezvous() -> None:
    """Fill RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT from Slurm's variables
    (those already set win), so ``init_process_group("gloo")`` can use ``env://``."""
    env = os.environ
    if "RANK" not in env and "SLURM_STEP_ID" in env:  # a task of an srun step
        env["RANK"] = env["SLURM_PROCID"]
        env["WORLD_SIZE"] = env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS", "1")
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
    elif "RANK" not in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        # The batch script itself (no srun): SLURM_PROCID is 0 and SLURM_NTASKS counts tasks
        # that will never join, so do not wait for them.
        print(
            f"ddp_train.py: not started by srun; running as 1 process, not {env['SLURM_NTASKS']} "
            "(use: srun python examples/ddp_train.py)",
            file=sys.stderr,
            flush=True,
        )
    env.setdefault("RANK", "0")
    env.setdefault("WORLD_SIZE", "1")
    env.setdefault("LOCAL_RANK", "0")
    if "MASTER_ADDR" not in env:
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
        env["MASTER_ADDR"] = master_addr_for(nodelist) if nodelist else "127.0.0.1"
    if "MASTER_PORT" not in env:
        job = env.get("SLURM_JOB_ID", "")
        # Below Linux's ephemeral range (32768+) and clear of Slurm's own ports (6817-6820,
        # slurmd 17001-17003 here): two jobs collide only when their ids differ by 10000k.
        env["MASTER_PORT"] = str(20000 + int(job) % 10000 if job.isdigit() else DEFAULT_PORT)
    if "GLOO_SOCKET_IFNAME" not in env and _is_loopback(env["MASTER_ADDR"]):
        env["GLOO_SOCKET_IFNAME"] = "lo"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return addr == "localhost"


def shared_run_id(rank: int) -> str | None:
    """The run id to pass to ``runyard.init``: None where every rank derives the same one
    itself (RUNYARD_RUN_ID, or the Slurm job); else rank 0's random id, broadcast."""
    if os.environ.get("RUNYARD_RUN_ID") or os.environ.get("SLURM_JOB_ID"):
        return None
    box = torch.tensor(list(os.urandom(16)), dtype=torch.uint8)
    dist.broadcast(box, src=0)
    return bytes(box.tolist()).hex()


def all_gather_str(text: str, width: int = 64) -> list[str]:
    """Every rank's ``text`` (UTF-8, at most ``width`` bytes), in rank order. Tensor-only, so
    it works without numpy (the *_object collectives need it)."""
    raw = text.encode()[:width]
    mine = torch.zeros(width, dtype=torch.uint8)
    mine[: len(raw)] = torch.tensor(list(raw), dtype=torch.uint8)
    out = [torch.zeros(width, dtype=torch.uint8) for _ in range(dist.get_world_size())]
    dist.all_gather(out, mine)
    return [bytes(t.tolist()).rstrip(b"\0").decode(errors="replace") for t in out]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--project", default="demo")
    parser.add_argument("--experiment", default="ddp-gloo")
    parser.add_argument(
        "--step-sleep-s",
        type=float,
        default=0.0,
        help="pause after each step (lets the system sampler take a few readings)",
    )
    parser.add_argument("--timeout-s", type=float, default=120, help="rendezvous and collective timeout")
    args = parser.parse_args()

    slurm_rendezvous()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    torch.set_num_threads(1)  # several ranks share a node's cores
    t0 = time.monotonic()
    dist.init_process_group(
        "gloo", init_method="env://", rank=rank, world_size=world, timeout=timedelta(seconds=args.timeout_s)
    )
    print(
        f"[rank {rank}/{world} on {node}] joined {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
        f"in {time.monotonic() - t0:.1f} s",
        flush=True,
    )

    config = dict(vars(args), world_size=world, backend="gloo")
    run = runyard.init(
        project=args.project,
        experiment=args.experiment,
        name=f"ddp gloo x{world}",
        config=config,
        tags=["ddp", "gloo"],
        run_id=shared_run_id(rank),
    )
    with run:
        # The same target on every rank, different data: rank r draws from its own seed.
        torch.manual_seed(args.seed)
        w_true = torch.randn(args.features, 1)
        model = torch.nn.Sequential(
            torch.nn.Linear(args.features, args.hidden), torch.nn.Tanh(), torch.nn.Linear(args.hidden, 1)
        )
        ddp = DistributedDataParallel(model)  # broadcasts rank 0's initial weights
        opt = torch.optim.SGD(ddp.parameters(), lr=args.lr)
        gen = torch.Generator().manual_seed(args.seed * 1000 + rank + 1)
        for step in range(args.steps):
            x = torch.randn(args.batch_size, args.features, generator=gen)
            y = x @ w_true + 0.01 * torch.randn(args.batch_size, 1, generator=gen)
            loss = torch.nn.functional.mse_loss(ddp(x), y)
            opt.zero_grad()
            loss.backward()  # DDP all-reduces the gradients here
            opt.step()
            loss_t = loss.detach().clone()
            dist.all_reduce(loss_t)
            run.log({"loss": loss_t.item() / world}, step=step)  # a no-op on ranks other than 0
            if args.step_sleep_s > 0:
                time.sleep(args.step_sleep_s)

        # The end: every rank's last local loss, all-reduced; how many ranks took part; where
        # they ran; and whether DDP kept the replicas identical.
        final = torch.tensor([loss.item(), 1.0])
        dist.all_reduce(final)
        nodes = all_gather_str(f"{node}/r{rank}")
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        spread = flat.clone()
        dist.all_reduce(spread, op=dist.ReduceOp.MAX)
        low = flat.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        divergence = float((spread - low).abs().max())
        final_loss = final[0].item() / world
        run.log(
            {"final_loss": final_loss, "ranks_reduced": final[1].item(), "param_divergence": divergence},
            step=args.steps,
        )
        run.summary.update(final_loss=final_loss, ranks=nodes, world_size=world)
        print(
            f"[rank {rank}/{world} on {node}] final all-reduced loss {final_loss:.6f} over "
            f"{int(final[1].item())} ranks {nodes}; run {run.id}",
            flush=True,
        )
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
