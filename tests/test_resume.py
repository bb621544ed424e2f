"""Resuming a run: ``axolotl train`` (after a SIGKILL between two checkpoints) and plain-TRL ``InSPOTrainer``.

A resumed run must end with the same weights, and log the same losses and ``inspo/*`` metrics for
the remaining steps, as an uninterrupted run with the same seed. On CPU in fp32 with a fixed seed
the computation is deterministic (same data order from the saved sampler and RNG states, same
kernels, same thread count), so the guaranteed tolerance is exact equality: the comparisons below
use ``==`` on logged floats and ``torch.equal`` on every tensor.

Axolotl: run U (uninterrupted, 4 steps, checkpoints at 2 and 4) and run K (the same, killed with
SIGKILL at the end of step 3 by ``tests/plugins/kill.py``) run side by side; run R resumes K from
``checkpoint-2``. The data hold invalid rows (``on_invalid_row: skip``): the prepared-dataset cache
is reused on resume and the dropped-rows report of R is U's, every row counted once.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers import TrainerCallback

from inspo_plugin import InSPOConfig, InSPOTrainer
from inspo_plugin.models.tiny import build_tiny_model
from tests.axolotl_cli import output_of, run_axolotl, write_config
from tests.test_axolotl_e2e import DATA, base_config

STEPS, SAVE_EVERY, KILL_AT = 4, 2, 3
COMPARED = ("loss", "inspo/margin_cond", "inspo/margin_uncond", "inspo/logps_chosen", "inspo/context_chosen")


def _data_with_bad_rows(path: Path) -> Path:
    lines = (DATA / "prefs_small.jsonl").read_text().splitlines()[:12]
    lines.insert(2, json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}))
    lines.insert(6, '{"prompt": "cut short", "chosen": "a"')
    path.write_text("\n".join(lines) + "\n")
    return path


def _per_step(history: list[dict], key: str) -> dict[int, float]:
    return {h["step"]: h[key] for h in history if key in h}


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


@pytest.fixture(scope="module")
def axolotl_runs(tiny_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = _data_with_bad_rows(root / "prefs.jsonl")
    configs = {}
    for name in ("uninterrupted", "killed"):
        work = root / name
        work.mkdir()
        cfg = base_config(
            tiny_checkpoint,
            work,
            max_steps=STEPS,
            save_steps=SAVE_EVERY,
            inspo={"on_invalid_row": "skip"},
            datasets=[{"path": str(data), "split": "train", "type": "inspo_plugin.reflective"}],
        )
        if name == "killed":
            cfg["plugins"] = [*cfg["plugins"], "tests.plugins.kill.KillAtStep"]
        configs[name] = (cfg, write_config(cfg, work / "cfg.yml"))

    def run(name: str, env: dict[str, str] | None = None):
        path = configs[name][1]
        return run_axolotl("train", path, path.parent, env=env)

    with ThreadPoolExecutor(2) as pool:
        uninterrupted = pool.submit(run, "uninterrupted")
        killed = pool.submit(run, "killed", {"INSPO_TEST_KILL_AT_STEP": str(KILL_AT)})
        (u_proc, u_s), (k_proc, k_s) = uninterrupted.result(), killed.result()
    assert u_proc.returncode == 0, output_of(u_proc)
    killed_out = Path(configs["killed"][0]["output_dir"])
    killed_state = {
        "returncode": k_proc.returncode,
        "checkpoints": sorted(p.name for p in killed_out.glob("checkpoint-*")),
        "report": (killed_out / "inspo_dropped_rows_train.jsonl").read_text(),
    }
    (killed_out / "inspo_dropped_rows_train.jsonl").unlink()  # the resumed run must write it again

    cfg, _ = configs["killed"]
    resumed_cfg = {**cfg, "resume_from_checkpoint": str(killed_out / f"checkpoint-{SAVE_EVERY}")}
    resumed_path = write_config(resumed_cfg, killed_out.parent / "resume.yml")
    r_proc, r_s = run_axolotl("train", resumed_path, resumed_path.parent)
    assert r_proc.returncode == 0, output_of(r_proc)
    yield {
        "uninterrupted": Path(configs["uninterrupted"][0]["output_dir"]),
        "resumed": killed_out,
        "killed": killed_state,
        "resumed_log": r_proc.stdout + r_proc.stderr,
        "uninterrupted_log": u_proc.stdout + u_proc.stderr,
        "prepared": Path(cfg["dataset_prepared_path"]),
        "seconds": (u_s, k_s, r_s),
    }
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.slow
def test_sigkill_between_checkpoints_leaves_the_last_checkpoint(axolotl_runs):
    killed = axolotl_runs["killed"]
    assert killed["returncode"] == -9, killed  # SIGKILL
    assert killed["checkpoints"] == [f"checkpoint-{SAVE_EVERY}"]
    assert killed["report"]  # written before training started


@pytest.mark.e2e
@pytest.mark.slow
def test_axolotl_resume_matches_the_uninterrupted_run_exactly(axolotl_runs):
    u_out, r_out = axolotl_runs["uninterrupted"], axolotl_runs["resumed"]
    u_history = json.loads((u_out / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())["log_history"]
    r_history = json.loads((r_out / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())["log_history"]
    for key in COMPARED:
        u, r = _per_step(u_history, key), _per_step(r_history, key)
        assert sorted(u) == list(range(1, STEPS + 1)), (key, u)
        for step in range(SAVE_EVERY + 1, STEPS + 1):
            assert r[step] == u[step], (key, step, r[step], u[step])
    u_weights, r_weights = _weights(u_out / f"checkpoint-{STEPS}"), _weights(r_out / f"checkpoint-{STEPS}")
    assert u_weights.keys() == r_weights.keys()
    assert all(torch.equal(u_weights[k], r_weights[k]) for k in u_weights)
    assert all(torch.equal(u_weights[k], w) for k, w in _weights(r_out).items())  # the final save too


@pytest.mark.e2e
@pytest.mark.slow
def test_resume_reuses_the_prepared_data_and_reports_each_dropped_row_once(axolotl_runs):
    assert "Loading prepared dataset from disk" in axolotl_runs["resumed_log"]
    u_report = (axolotl_runs["uninterrupted"] / "inspo_dropped_rows_train.jsonl").read_text()
    r_report = (axolotl_runs["resumed"] / "inspo_dropped_rows_train.jsonl").read_text()
    assert r_report == u_report == axolotl_runs["killed"]["report"]
    assert [json.loads(line)["row"] for line in r_report.splitlines()] == [2, 6]
    summaries = re.findall(r"train: dropped (\d+) of (\d+) rows", axolotl_runs["resumed_log"])
    assert summaries and set(summaries) == {("2", "14")}, summaries


# -- plain TRL ------------------------------------------------------------------------------------


class _Crash(TrainerCallback):
    """Ends training with an exception at the end of a step (after saving the earlier checkpoints)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == KILL_AT:
            raise KeyboardInterrupt("interrupted")


def _trl_trainer(tmp_path: Path, tokenizer, rows: list[dict]) -> InSPOTrainer:
    model = build_tiny_model(tokenizer, "chatml", seed=0)
    args = InSPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        max_steps=STEPS,
        save_steps=SAVE_EVERY,
        save_strategy="steps",
        logging_steps=1,
        report_to=[],
        learning_rate=5e-3,
        max_length=256,
        use_cpu=True,
        seed=3,
        on_invalid_row="skip",
    )
    return InSPOTrainer(
        model=model,
        ref_model=copy.deepcopy(model),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )


def test_trl_resume_after_an_interruption_matches_the_uninterrupted_run(tmp_path, chatml_tokenizer):
    rows = [json.loads(line) for line in (DATA / "prefs_small.jsonl").read_text().splitlines()[:10]]
    rows.insert(3, {"prompt": "p", "chosen": "same", "rejected": "same"})

    full = _trl_trainer(tmp_path / "full", chatml_tokenizer, rows)
    full.train()

    crashed = _trl_trainer(tmp_path / "resumed", chatml_tokenizer, rows)
    crashed.add_callback(_Crash())
    with pytest.raises(KeyboardInterrupt):
        crashed.train()
    assert sorted(p.name for p in (tmp_path / "resumed").glob("checkpoint-*")) == [f"checkpoint-{SAVE_EVERY}"]

    resumed = _trl_trainer(tmp_path / "resumed", chatml_tokenizer, rows)
    resumed.train(resume_from_checkpoint=str(tmp_path / "resumed" / f"checkpoint-{SAVE_EVERY}"))
    for key in COMPARED:
        u, r = _per_step(full.state.log_history, key), _per_step(resumed.state.log_history, key)
        for step in range(SAVE_EVERY + 1, STEPS + 1):
            assert r[step] == u[step], (key, step, r[step], u[step])
    for (name, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.drop_reports["train"].dropped == full.drop_reports["train"].dropped
    assert [r for r, _ in resumed.drop_reports["train"].dropped] == [3]
    report = tmp_path / "resumed" / "inspo_dropped_rows_train.jsonl"
    assert len(report.read_text().splitlines()) == 1  # written afresh, not appended to
