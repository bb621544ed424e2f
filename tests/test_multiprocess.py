"""Several processes on CPU: 2 × micro-batch 2 under ``torchrun`` (gloo) against 1 × micro-batch 4.

Same model, data, seed and global batch, 4 SGD steps (``tests/distributed_train.py``). The per-step
loss and ``inspo/*`` metrics logged by process 0 are gathered across both processes: each process
sees only half of every batch, so rank 0's own values could not match the one-process run.

Tolerances, as measured (2 CPU cores, torch 2.14.1, gloo):

- step 1 (identical weights and batch): loss and every ``inspo/*`` metric agree to the printed
  float32 digits; the test allows 1e-5 relative;
- the step-1 gradient of two processes differs from one process's by about 5e-5 relative (grad
  norm 3.126926 vs 3.127076), the same with the full-logits log-prob path, while one process
  computing the same batch as 4 or as 2 + 2 accumulated agrees to 2e-7: the source of this
  difference in the DDP path is not identified. After 4 steps the logged metrics differ by up to
  1.3% relative (a difference of two large log-probs) and the weights by at most 1.4e-4 absolute;
  the test allows 3e-2 relative and 1e-3 absolute.

Only process 0 writes the dropped-rows report and the model weights (each process writes its own
``rng_state_<rank>.pth`` into a checkpoint, as in any Hugging Face run).

Axolotl itself cannot run several processes without a GPU: ``axolotl train --launcher torchrun --
--nproc_per_node 2`` stops in ``load_cfg`` → ``prepare_optim_env`` → ``check_cuda_p2p_ib_support`` →
``check_cuda_p2p_support``, which calls ``torch.cuda.can_device_access_peer`` whenever
``WORLD_SIZE > 1``: "RuntimeError: Found no NVIDIA driver on your system". The plugin's
multi-process behaviour is the trainer's, which is what runs here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "distributed_train.py"
METRICS = (
    "loss",
    "inspo/margin_cond",
    "inspo/acc_cond",
    "inspo/margin_uncond",
    "inspo/acc_uncond",
    "inspo/context_chosen",
    "inspo/context_rejected",
    "inspo/logps_chosen",
    "inspo/logps_rejected",
)
FIRST_STEP_RTOL, LATER_RTOL, ATOL, WEIGHT_ATOL = 1e-5, 3e-2, 1e-6, 1e-3


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    two, one = root / "two", root / "one"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    commands = {
        "two": [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(SCRIPT),
            str(two),
            "2",
        ],
        "one": [sys.executable, str(SCRIPT), str(one), "4"],
    }
    with ThreadPoolExecutor(2) as pool:
        jobs = {
            name: pool.submit(subprocess.run, cmd, capture_output=True, text=True, env=env, timeout=600)
            for name, cmd in commands.items()
        }
        procs = {name: job.result() for name, job in jobs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return {
        "two": [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)],
        "one": json.loads((one / "rank0.json").read_text()),
        "dirs": {"two": two, "one": one},
    }


def _per_step(history: list[dict], key: str) -> dict[int, float]:
    return {h["step"]: h[key] for h in history if key in h}


@pytest.mark.slow
def test_two_processes_log_the_same_gathered_loss_and_metrics(results):
    rank0, one = results["two"][0], results["one"]
    assert rank0["world_size"] == 2 and one["world_size"] == 1
    worst = 0.0
    for key in METRICS:
        a, b = _per_step(rank0["history"], key), _per_step(one["history"], key)
        assert sorted(a) == sorted(b) == [1, 2, 3, 4], (key, a, b)
        for step in a:
            rtol = FIRST_STEP_RTOL if step == 1 else LATER_RTOL
            assert math.isclose(a[step], b[step], rel_tol=rtol, abs_tol=ATOL), (key, step, a[step], b[step])
            worst = max(worst, abs(a[step] - b[step]) / max(abs(b[step]), 1e-12))
    print(f"max relative difference of logged values: {worst:.2e}")


@pytest.mark.slow
def test_two_processes_end_with_the_same_weights(results):
    two = load_file(str(results["dirs"]["two"] / "checkpoint-4" / "model.safetensors"))
    one = load_file(str(results["dirs"]["one"] / "checkpoint-4" / "model.safetensors"))
    assert two.keys() == one.keys()
    worst = max(float((two[k] - one[k]).abs().max()) for k in one)
    for k in one:
        assert torch.allclose(two[k], one[k], rtol=0, atol=WEIGHT_ATOL), (
            k,
            float((two[k] - one[k]).abs().max()),
        )
    print(f"max absolute weight difference: {worst:.2e}")


@pytest.mark.slow
def test_only_process_zero_writes_the_report_and_the_weights(results):
    rank0, rank1 = results["two"]
    assert rank0["wrote_report"] and rank0["saved_weights"]
    assert not rank1["wrote_report"] and not rank1["saved_weights"]
    assert rank0["dropped"] == rank1["dropped"] == results["one"]["dropped"]  # every rank counts the same
    assert [row for row, _ in rank0["dropped"]] == [5, 11]
    report = (results["dirs"]["two"] / "inspo_dropped_rows_train.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"] for line in report] == [5, 11]
