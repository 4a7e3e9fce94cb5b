"""What identical results at any thread count cost: MKL's strict reproducibility mode.

Run with ``python bench/thread_reproducibility.py [--rounds 6]`` (``make bench`` runs it). Each
round trains the report's winner shape (784-532-195-10, dropout 0.3, fused Adam, batch 128) for
four epochs of 12,800 random images in fresh processes: with 1 and 2 threads, each with MKL's
default mode and with ``MKL_CBWR=AUTO,STRICT`` (what the mnist_mlp package sets). It prints the
median seconds per epoch of each, the cost of the strict mode, and whether the trained weights
of 1 and 2 threads are bit-identical in each mode. Ends with one line:
``strict_cost_1_thread=<ratio> strict_cost_2_threads=<ratio> identical_strict=<bool>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = r"""
import json, os, sys, time
import torch
sys.path.insert(0, sys.argv[2])
from mnist_mlp.model import MLP
from mnist_mlp.training import mkl_mode
# the package sets MKL_CBWR on import; MKL reads it at torch's first computation, below
if sys.argv[3] == "strict":
    os.environ["MKL_CBWR"] = "AUTO,STRICT"
else:
    os.environ.pop("MKL_CBWR", None)
torch.set_num_threads(int(sys.argv[1]))
torch.set_num_interop_threads(1)
torch.manual_seed(0)
X, y = torch.rand(128 * 100, 784), torch.randint(0, 10, (128 * 100,))
net = MLP(532, 195, 0.3)
optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
epochs = []
for _ in range(4):
    start = time.perf_counter()
    for i in range(0, len(X), 128):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(X[i:i + 128]), y[i:i + 128]).backward()
        optimizer.step()
    epochs.append(time.perf_counter() - start)
weights = [p.detach().double().sum().item() for p in net.parameters()]
print(json.dumps({"epoch_s": min(epochs[1:]), "weights": weights, "mkl_mode": mkl_mode()}))
"""


def probe(threads: int, strict: bool, workflow: str) -> dict:
    mode = "strict" if strict else "default"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(threads), workflow, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    args, _ = parser.parse_known_args(argv)
    workflow = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workflow")
    runs: dict[tuple[int, bool], list[dict]] = {}
    for _ in range(args.rounds):  # alternate, so that slow spells hit every variant
        for threads in (1, 2):
            for strict in (False, True):
                runs.setdefault((threads, strict), []).append(probe(threads, strict, workflow))
    median = {key: statistics.median(r["epoch_s"] for r in rs) for key, rs in runs.items()}
    identical = {
        strict: runs[(1, strict)][0]["weights"] == runs[(2, strict)][0]["weights"]
        for strict in (False, True)
    }
    for (threads, strict), seconds in sorted(median.items()):
        mode = "strict" if strict else "default"
        seen = {r["mkl_mode"] for r in runs[(threads, strict)]}
        print(
            f"  {threads} thread(s), MKL {mode} (mode read back: {sorted(seen, key=str)}): "
            f"{seconds:.3f} s per epoch (median)"
        )
    cost = {threads: median[(threads, True)] / median[(threads, False)] for threads in (1, 2)}
    print(f"  strict mode costs {cost[1] - 1:+.1%} on 1 thread, {cost[2] - 1:+.1%} on 2")
    print(
        f"  1 and 2 threads give identical weights: default mode {identical[False]}, "
        f"strict mode {identical[True]}"
    )
    print(
        f"strict_cost_1_thread={cost[1]:.3f} strict_cost_2_threads={cost[2]:.3f} "
        f"identical_strict={identical[True]}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
