"""Context gains: the data variants, the report (against separate forwards), the training-time
warning and ``inspo preview --context-gains``."""

from __future__ import annotations

import json
import logging
import random

import pytest
import torch
from datasets import Dataset

from inspo_plugin.core.context import ContextGainMonitor
from inspo_plugin.core.layout import reflective_pair
from inspo_plugin.core.objectives import PolicyLogps
from inspo_plugin.core.sequences import make_reflection_format, tokenize_preference_row
from inspo_plugin.evaluation.context_gain import context_gains
from inspo_plugin.models.tiny import build_tiny_model
from inspo_plugin.options import InSPOOptions, OptionError

WORDS = ("apple", "river", "stone", "cloud", "garden", "window", "music", "paper", "light", "bread")


def _rows(n: int, seed: int) -> list[dict]:
    """Conversational rows with the shipped data's source fields; every third row has near-copy answers."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) + "."
        other = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) + "."
        edited = i % 3 == 0
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"Write sentence {i} about {rng.choice(WORDS)}."}],
                "chosen": [{"role": "assistant", "content": text.lower()}],
                "rejected": [{"role": "assistant", "content": text.upper() if edited else other.upper()}],
                "chosen_source": "edited" if edited else "sampled",
                "rejected_source": "sampled",
            }
        )
    return rows


# --- data variants -------------------------------------------------------------------------------


def test_data_variants_partition_the_shipped_rows() -> None:
    from inspo_plugin.data import VARIANTS, builtin_preferences_path, is_edited, load_builtin_preferences

    assert VARIANTS == ("mixed", "edited", "natural")
    for split in ("train", "test"):
        mixed = load_builtin_preferences(split)
        assert mixed == load_builtin_preferences(split, variant="mixed")
        edited = load_builtin_preferences(split, variant="edited")
        assert edited and all(is_edited(r) for r in edited)
        if split == "test":  # natural test rows: the mixed test rows with both answers sampled
            natural = load_builtin_preferences(split, variant="natural")
            assert len(natural) + len(edited) == len(mixed)
            assert {r["id"] for r in natural} | {r["id"] for r in edited} == {r["id"] for r in mixed}
        else:
            assert len(edited) == sum(is_edited(r) for r in mixed) < len(mixed)
    with pytest.raises(ValueError, match="unknown variant"):
        load_builtin_preferences("train", variant="clean")
    with pytest.raises(ValueError, match="no file of its own"):
        builtin_preferences_path("train", variant="edited")


def test_an_unbuilt_variant_file_names_the_command_that_builds_it(monkeypatch, tmp_path) -> None:
    """A variant file not present in the package is reported with the command that builds it."""
    import inspo_plugin.data as data

    monkeypatch.setattr(data, "_FILES", {("train", "natural"): "not_built_here"})
    with pytest.raises(FileNotFoundError, match="is not built yet") as err:
        data.load_builtin_preferences("train", variant="natural")
    assert data.NATURAL_BUILD_COMMAND in str(err.value) and "not_built_here.jsonl" in str(err.value)


# --- the report ----------------------------------------------------------------------------------


def _standalone_logp(model, prefix: list[int], response: list[int]) -> float:
    """Independent computation: one unpadded forward over prefix·response, sum over the response."""
    ids = torch.tensor([prefix + response])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return sum(logp[len(prefix) + j - 1, tok].item() for j, tok in enumerate(response))


def test_report_equals_separate_forwards_and_groups_by_source(chatml_tokenizer) -> None:
    tok = chatml_tokenizer
    model = build_tiny_model(tok, "chatml", seed=3).double().eval()
    rows = _rows(6, seed=1)
    rows.insert(2, {"prompt": "no answers here"})  # unusable: skipped and counted, indices kept
    report = context_gains(model, tok, rows, batch_size=4)
    assert [i for i, _ in report["skipped"]] == [2]
    assert [e["row"] for e in report["per_row"]] == [0, 1, 3, 4, 5, 6]
    fmt = make_reflection_format(tok, "revise")
    for entry in report["per_row"]:
        t = tokenize_preference_row(tok, rows[entry["row"]])
        pair = reflective_pair(
            t["prompt_ids"], t["chosen_ids"], t["rejected_ids"], fmt, None, tok.bos_token_id
        )
        x, yw, yl = pair.prompt_ids, pair.chosen_ids, pair.rejected_ids
        gain_w = _standalone_logp(model, x + yl + pair.bridge_after_rejected, yw) - _standalone_logp(
            model, x, yw
        )
        gain_l = _standalone_logp(model, x + yw + pair.bridge_after_chosen, yl) - _standalone_logp(
            model, x, yl
        )
        assert entry["context_chosen"] == pytest.approx(gain_w, abs=1e-6)
        assert entry["context_rejected"] == pytest.approx(gain_l, abs=1e-6)
        assert (entry["chosen_tokens"], entry["rejected_tokens"]) == (len(yw), len(yl))
    assert set(report["groups"]) == {"edited/sampled", "sampled/sampled"}
    for name, summary in report["groups"].items():
        members = [e for e in report["per_row"] if e["group"] == name]
        assert summary["n"] == len(members)
        assert summary["chosen"]["mean"] == pytest.approx(
            sum(e["context_chosen"] for e in members) / len(members)
        )
        tokens = sum(e["chosen_tokens"] + e["rejected_tokens"] for e in members)
        pooled = sum(e["context_chosen"] + e["context_rejected"] for e in members) / tokens
        assert summary["pooled_per_token"] == pytest.approx(pooled)
    assert report["overall"]["n"] == 6


# --- the warning ---------------------------------------------------------------------------------


def _policy(gain: float, n: int = 2) -> PolicyLogps:
    base = torch.full((n,), -30.0)
    return PolicyLogps(chosen=base, rejected=base, chosen_cond=base + gain, rejected_cond=base + gain)


@pytest.mark.parametrize("gain_per_token, fires", [(0.6, True), (0.4, False), (-2.0, False)])
def test_monitor_warns_once_above_the_threshold_only(gain_per_token, fires) -> None:
    monitor = ContextGainMonitor(threshold=0.5, batches=3)
    tokens = torch.tensor([10.0, 10.0])
    messages = [monitor.observe(_policy(10 * gain_per_token), tokens, tokens) for _ in range(5)]
    assert messages[:2] == [None, None]  # judged only once the window is full
    assert messages[3:] == [None, None]  # and only once
    assert (messages[2] is not None) == fires
    assert monitor.per_token() == pytest.approx(gain_per_token)
    if fires:
        assert "0.60 nats per answer token" in messages[2] and "threshold 0.5" in messages[2]
        assert "uncond_weight" in messages[2] and "context_gain_warning" in messages[2]
    off = ContextGainMonitor(threshold=None, batches=1)
    assert off.observe(_policy(100.0), tokens, tokens) is None


def test_the_option_is_declared_and_validated() -> None:
    assert InSPOOptions().context_gain_warning == 0.5
    assert InSPOOptions(context_gain_warning=None).context_gain_warning is None
    assert InSPOOptions.from_mapping({"context_gain_warning": 2}).context_gain_warning == 2.0
    with pytest.raises(OptionError, match=r"inspo.context_gain_warning: must be > 0"):
        InSPOOptions.from_mapping({"context_gain_warning": 0})
    with pytest.raises(OptionError, match=r"context_gain_warning: expected a number"):
        InSPOOptions.from_mapping({"context_gain_warning": "high"})


@pytest.mark.parametrize("offset, fires", [(-0.01, True), (0.01, False)])
def test_the_trainer_warns_from_its_first_batches(tmp_path, chatml_tokenizer, caplog, offset, fires) -> None:
    """With a learning rate of 0 the trainer's window sees exactly the report's gains: a threshold just
    below the report's pooled gain fires, one just above does not."""
    from inspo_plugin.trl import InSPOTrainer
    from tests.test_trainer import tiny_config

    tok = chatml_tokenizer
    rows = _rows(8, seed=2)
    model = build_tiny_model(tok, "chatml", seed=0)
    pooled = context_gains(model.eval(), tok, rows)["overall"]["pooled_per_token"]
    args = tiny_config(tmp_path, learning_rate=0.0, dataset_num_proc=None)
    trainer = InSPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]),
        processing_class=tok,
        ref_model=build_tiny_model(tok, "chatml", seed=0),
    )
    assert trainer._context_gain.threshold == 0.5  # the option's default reached the monitor
    trainer._context_gain = ContextGainMonitor(threshold=pooled + offset, batches=2)  # both batches
    with caplog.at_level(logging.WARNING, logger="inspo_plugin.trl.trainer"):
        trainer.train()
    warnings = [r.getMessage() for r in caplog.records if "seeing the alternative answer" in r.getMessage()]
    assert len(warnings) == (1 if fires else 0)
    assert trainer._context_gain.per_token() == pytest.approx(pooled, abs=1e-4)


# --- the command line ----------------------------------------------------------------------------


def test_preview_prints_the_context_gain_report(tmp_path, capsys) -> None:
    from inspo_plugin.cli import main

    assert main(["tiny-model", "--output", str(tmp_path / "m")]) == 0
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(5, seed=4)))
    out_json = tmp_path / "report.json"
    capsys.readouterr()
    argv = ["preview", "--data", str(data), "--context-gains", "--model", str(tmp_path / "m")]
    assert main([*argv, "--limit", "4", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "4 rows" in out and "context gain = log π(y | x, alternative)" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert {"all", "edited/sampled", "sampled/sampled"} <= set(lines)
    assert "warning threshold 0.5" in out
    report = json.loads(out_json.read_text())
    assert len(report["per_row"]) == 4 and report["overall"]["n"] == 4
    tiny = str(tmp_path / "m")
    assert (
        main(["preview", "--builtin", "test", "--variant", "natural", "--tokenizer", tiny, "--rows", "0"])
        == 0
    )
    assert "── row 0 sequence A" in capsys.readouterr().out  # --builtin also previews sequences
    with pytest.raises(SystemExit, match="--variant applies to --builtin only"):
        main(["preview", "--data", str(data), "--tokenizer", tiny, "--variant", "edited"])
    with pytest.raises(SystemExit, match="needs --model"):
        main(["preview", "--data", str(data), "--context-gains"])
    with pytest.raises(SystemExit, match="--limit applies to --context-gains only"):
        main(["preview", "--data", str(data), "--tokenizer", str(tmp_path / "m"), "--limit", "2"])
