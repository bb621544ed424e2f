"""The command line: preview from a data file and from an Axolotl config, tiny-model."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from inspo_plugin.cli import main
from inspo_plugin.offline import offline_env
from tests.axolotl_cli import ROOT, write_config

DATA = ROOT / "tests" / "data"


def test_preview_from_a_data_file(tiny_checkpoint, capsys):
    assert (
        main(
            [
                "preview",
                "--data",
                str(DATA / "prefs_messages.jsonl"),
                "--tokenizer",
                str(tiny_checkpoint),
                "--rows",
                "0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "row 0 sequence A" in out and "row 0 sequence B" in out
    assert "FIRST ANSWER = chosen · scores log π(y_w | x)" in out
    assert "The capital of France is Paris.<|im_end|>" in out
    assert "Reconsider the answer above" in out


def test_preview_custom_template_and_truncation(tiny_checkpoint, capsys):
    main(
        [
            "preview",
            "--data",
            str(DATA / "prefs_small.jsonl"),
            "--tokenizer",
            str(tiny_checkpoint),
            "--rows",
            "2",
            "--template",
            "custom",
            "--reflection-prompt",
            "Do better.",
            "--max-length",
            "90",
        ]
    )
    out = capsys.readouterr().out
    assert "Do better." in out and "responses truncated" in out


def test_preview_reports_a_row_that_does_not_fit(tiny_checkpoint, capsys):
    main(
        [
            "preview",
            "--data",
            str(DATA / "prefs_small.jsonl"),
            "--tokenizer",
            str(tiny_checkpoint),
            "--rows",
            "0",
            "--max-length",
            "20",
        ]
    )
    assert "row 0: dropped, too long" in capsys.readouterr().out


@pytest.mark.e2e
def test_preview_from_an_axolotl_config_renders_what_training_sees(tiny_checkpoint, tmp_path):
    cfg = {
        "base_model": str(tiny_checkpoint),
        "plugins": ["inspo_plugin.InSPOPlugin"],
        "rl": "inspo",
        "inspo": {"template": "concat"},
        "chat_template": "chatml",
        "datasets": [
            {"path": str(DATA / "prefs_orca.jsonl"), "split": "train", "type": "inspo_plugin.reflective"}
        ],
        "dataset_prepared_path": str(tmp_path / "prepared"),
        "sequence_len": 512,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-5,
        "output_dir": str(tmp_path / "out"),
        "dataset_num_proc": 1,
    }
    config = write_config(cfg, tmp_path / "cfg.yml")
    proc = subprocess.run(
        [sys.executable, "-m", "inspo_plugin", "preview", "--config", str(config), "--rows", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**offline_env(), "HF_DATASETS_CACHE": str(tmp_path / "hf")},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "template: concat" in proc.stdout
    # Row 0 of the prepared (shuffled) set is some row of the file; its system column, when not
    # empty, made it into the prompt (the orca shape).
    shown = int(re.search(r"── row (\d+) sequence A", proc.stdout).group(1))
    system = json.loads((DATA / "prefs_orca.jsonl").read_text().splitlines()[shown])["system"]
    assert ("<|im_start|>system\n" + system in proc.stdout) == bool(system.strip())
    assert proc.stdout.count("▶ BRIDGE") == 0  # concat: the answer follows the alternative's end of turn


def test_tiny_model_command(tmp_path, capsys):
    assert main(["tiny-model", "--output", str(tmp_path / "m"), "--family", "gemma2"]) == 0
    assert (tmp_path / "m" / "config.json").is_file() and (tmp_path / "m" / "tokenizer.json").is_file()
