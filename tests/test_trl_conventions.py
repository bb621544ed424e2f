"""TRL users' conventions work with InSPOTrainer as with DPOTrainer.

Implicit-prompt datasets, streaming datasets, DPOTrainer's call conventions (model path, omitted
processing class, positional arguments) and ``compute_metrics``.
"""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest
from datasets import Dataset
from trl import DPOTrainer
from trl.data_utils import extract_prompt

from inspo_plugin import InSPOConfig, InSPOTrainer
from inspo_plugin.models.tiny import build_tiny_model
from inspo_plugin.trl.trainer import PREDICTION_COLUMNS
from tests.test_trainer import lowercase_task
from tests.test_trainer import tiny_config as _config


def _build(tmp_path, tokenizer, train, eval_dataset=None, compute_metrics=None, **config):
    model = build_tiny_model(tokenizer, "chatml", seed=0)
    return InSPOTrainer(
        model=model,
        ref_model=copy.deepcopy(model),
        args=_config(tmp_path, **config),
        train_dataset=train,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )


def _dropped_rows(tmp_path, source: str) -> list[int]:
    lines = (tmp_path / "out" / f"inspo_dropped_rows_{source}.jsonl").read_text().splitlines()
    return [json.loads(line)["row"] for line in lines]


# --- 1. implicit prompts ------------------------------------------------------------------------


def _implicit_string_rows(n: int) -> list[dict]:
    return [
        {"chosen": f"Question {i}? good answer {i}", "rejected": f"Question {i}? BAD ANSWER {i}"}
        for i in range(n)
    ]


def test_implicit_string_prompt_trains_with_trls_extraction(tmp_path, chatml_tokenizer):
    rows = _implicit_string_rows(8)
    rows[3] = {"chosen": "Question? ", "rejected": "Question? x"}  # extraction leaves chosen = " "
    rows[6] = {"chosen": "Apples.", "rejected": "Pears."}  # nothing shared: no prompt at all
    trainer = _build(tmp_path, chatml_tokenizer, Dataset.from_list(rows), on_invalid_row="skip")

    report = trainer.drop_reports["train"]
    reasons = dict(report.dropped)
    assert sorted(reasons) == [3, 6]
    assert "train: row 3, field 'chosen': empty (there is no 'prompt' column" in reasons[3]
    assert "train: row 6, field 'prompt': empty" in reasons[6]
    assert _dropped_rows(tmp_path, "train") == [3, 6]

    kept = [row for i, row in enumerate(rows) if i not in (3, 6)]
    prepared = trainer.train_dataset
    assert prepared["inspo_row"] == [0, 1, 2, 4, 5, 7]
    assert prepared["prompt"] == [extract_prompt(row)["prompt"] for row in kept]
    assert prepared["prompt"][0] == "Question 0?"
    # Token for token what TRL's own DPOTrainer preprocessing makes of the implicit-prompt rows.
    fake = SimpleNamespace(_tokenizer=chatml_tokenizer)
    args = SimpleNamespace(dataset_num_proc=None, max_length=None, truncation_mode="keep_start")
    trl_rows = DPOTrainer._prepare_dataset(fake, Dataset.from_list(kept), chatml_tokenizer, args, "t")
    for key in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert prepared[key] == trl_rows[key], key

    trainer.train()
    assert trainer.state.global_step == 2


def test_implicit_conversational_prompt_trains_with_trls_extraction(tmp_path, chatml_tokenizer):
    rows = [
        {"chosen": r["prompt"] + r["chosen"], "rejected": r["prompt"] + r["rejected"]}
        for r in lowercase_task(8, seed=1)
    ]
    # The conversations differ from their first turn: no shared prompt.
    rows[2]["rejected"][0] = {"role": "user", "content": "Something else entirely."}
    trainer = _build(tmp_path, chatml_tokenizer, Dataset.from_list(rows), on_invalid_row="skip")

    reasons = dict(trainer.drop_reports["train"].dropped)
    assert list(reasons) == [2]
    assert "train: row 2, field 'prompt': empty list of messages (there is no 'prompt' column" in reasons[2]
    kept = [row for i, row in enumerate(rows) if i != 2]
    prepared = trainer.train_dataset
    assert prepared["prompt"] == [extract_prompt(row)["prompt"] for row in kept]
    assert prepared["chosen"][0] == [kept[0]["chosen"][-1]]  # the answer turn only

    trainer.train()
    assert trainer.state.global_step == 2


def test_implicit_prompt_bad_row_is_an_error_naming_row_and_field(tmp_path, chatml_tokenizer):
    rows = _implicit_string_rows(4)
    rows[1] = {"chosen": "Question? ", "rejected": "Question? x"}
    with pytest.raises(ValueError, match=r"train: row 1, field 'chosen': empty .*on_invalid_row: skip"):
        _build(tmp_path, chatml_tokenizer, Dataset.from_list(rows))


@pytest.mark.parametrize("streaming", [False, True])
def test_every_row_dropped_is_an_inspo_error_not_stop_iteration(tmp_path, chatml_tokenizer, streaming):
    rows = [{"chosen": "Apples.", "rejected": "Pears."}, {"chosen": "x", "rejected": None}]
    train = Dataset.from_list(rows)
    with pytest.raises(
        ValueError, match=r"InSPO: no train rows left after dropping 2: train: dropped 2 of 2"
    ):
        _build(
            tmp_path,
            chatml_tokenizer,
            train.to_iterable_dataset() if streaming else train,
            on_invalid_row="skip",
        )
    assert _dropped_rows(tmp_path, "train") == [0, 1]


def test_streaming_implicit_prompt_is_extracted_lazily(tmp_path, chatml_tokenizer):
    rows = [
        {"chosen": r["prompt"] + r["chosen"], "rejected": r["prompt"] + r["rejected"]}
        for r in lowercase_task(4, seed=7)
    ]
    trainer = _build(tmp_path, chatml_tokenizer, Dataset.from_list(rows).to_iterable_dataset())
    prepared = list(trainer.train_dataset)
    assert [row["prompt"] for row in prepared] == [extract_prompt(row)["prompt"] for row in rows]
    assert [row["inspo_row"] for row in prepared] == [0, 1, 2, 3]


def test_implicit_prompt_row_checks_name_row_and_field():
    from inspo_plugin.core.rows import InvalidPreferenceRow, check_implicit_prompt_row, validate_trl_row

    answer = [{"role": "assistant", "content": "x"}]
    with pytest.raises(InvalidPreferenceRow, match="t: row 4, field 'rejected': is a list of messages but"):
        check_implicit_prompt_row({"chosen": "a", "rejected": answer}, index=4, source="t")
    with pytest.raises(InvalidPreferenceRow, match=r"row 1, field 'rejected': missing .*no 'prompt' column"):
        check_implicit_prompt_row({"chosen": "a"}, index=1)
    # An empty string prompt is fine when the dataset gives it, not when nothing was shared.
    validate_trl_row({"prompt": "", "chosen": "a", "rejected": "b"})
    with pytest.raises(InvalidPreferenceRow, match="field 'prompt': empty"):
        validate_trl_row({"prompt": "", "chosen": "a", "rejected": "b"}, implicit_prompt=True)


# --- 2. streaming -------------------------------------------------------------------------------


def _string_rows(n: int, bad: int) -> list[dict]:
    rows = [
        {"prompt": f"Question {i}?", "chosen": f"good answer {i}", "rejected": f"BAD ANSWER {i}"}
        for i in range(n)
    ]
    rows[bad] = {"prompt": "p", "chosen": "", "rejected": "b"}
    return rows


def test_streaming_train_and_eval_drop_and_report_the_bad_rows(tmp_path, chatml_tokenizer):
    train = Dataset.from_list(_string_rows(12, bad=5)).to_iterable_dataset()
    evaluation = Dataset.from_list(_string_rows(6, bad=2)).to_iterable_dataset()
    # Five steps of four rows read the eleven good rows about twice: each drop must count once.
    trainer = _build(
        tmp_path, chatml_tokenizer, train, evaluation, on_invalid_row="skip", max_steps=5, logging_steps=2
    )
    trainer.train()
    assert trainer.state.global_step == 5
    report = trainer.drop_reports["train"]
    assert report.streaming and report.rows_in == 12
    assert [row for row, _ in report.dropped] == [5]
    assert "train: row 5, field 'chosen': empty" in report.dropped[0][1]
    assert "dropped 1 of 12 rows read so far" in report.summary()
    assert _dropped_rows(tmp_path, "train") == [5]

    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_inspo/margin_uncond"])
    assert [row for row, _ in trainer.drop_reports["eval"].dropped] == [2]
    assert trainer.drop_reports["eval"].rows_in == 6
    assert _dropped_rows(tmp_path, "eval") == [2]


def test_streaming_invalid_row_is_an_error_naming_row_and_field(tmp_path, chatml_tokenizer):
    train = Dataset.from_list(_string_rows(12, bad=5)).to_iterable_dataset()
    with pytest.raises(ValueError, match=r"train: row 5, field 'chosen': empty.*on_invalid_row: skip"):
        _build(tmp_path, chatml_tokenizer, train, max_steps=4).train()


def test_streaming_refuses_dataloader_workers(tmp_path, chatml_tokenizer):
    train = Dataset.from_list(_string_rows(4, bad=1)).to_iterable_dataset()
    with pytest.raises(ValueError, match="dataloader_num_workers=2"):
        _build(tmp_path, chatml_tokenizer, train, dataloader_num_workers=2)


# --- 3. DPOTrainer's call conventions -----------------------------------------------------------


def test_model_path_without_processing_class(tmp_path, tiny_checkpoint):
    trainer = InSPOTrainer(
        model=str(tiny_checkpoint),
        args=_config(tmp_path, max_steps=1),
        train_dataset=Dataset.from_list(lowercase_task(4, seed=2)),
    )
    assert trainer.processing_class.chat_template  # loaded from the checkpoint, as TRL does
    assert trainer.ref_model is not None
    trainer.train()
    assert trainer.state.global_step == 1


def test_positional_arguments_in_dpo_trainers_order(tmp_path, chatml_tokenizer):
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    args = _config(tmp_path, max_steps=1)
    train = Dataset.from_list(lowercase_task(4, seed=3))
    # DPOTrainer(model, ref_model, args, data_collator, train_dataset, eval_dataset, processing_class)
    trainer = InSPOTrainer(model, copy.deepcopy(model), args, None, train, None, chatml_tokenizer)
    assert trainer.args is args and len(trainer.train_dataset) == 4
    trainer.train()
    assert trainer.state.global_step == 1
    with pytest.raises(TypeError, match=r"DPOTrainer's order \(model, ref_model, args"):
        InSPOTrainer(model, args, train_dataset=train, processing_class=chatml_tokenizer)


def test_omitted_args_default_to_an_inspo_config(tmp_path, monkeypatch, tiny_checkpoint):
    import inspo_plugin.trl.config as config_module

    monkeypatch.chdir(tmp_path)
    # TRL's default config trains in bf16, which this CPU cannot: the same config, on the CPU.
    monkeypatch.setattr(
        config_module, "InSPOConfig", lambda output_dir: InSPOConfig(output_dir=output_dir, use_cpu=True)
    )
    trainer = InSPOTrainer(str(tiny_checkpoint), train_dataset=Dataset.from_list(lowercase_task(2, seed=4)))
    assert isinstance(trainer.args, InSPOConfig)
    assert trainer.args.output_dir.endswith("model-InSPO")


# --- 4. compute_metrics ---------------------------------------------------------------------------


def test_compute_metrics_gets_the_per_pair_inspo_payload(tmp_path, chatml_tokenizer):
    seen = {}

    def compute_metrics(prediction):
        seen["predictions"], seen["labels"] = prediction.predictions, prediction.label_ids
        return {"payload_margin_uncond": float(prediction.predictions[:, 0].mean())}

    trainer = _build(
        tmp_path,
        chatml_tokenizer,
        Dataset.from_list(lowercase_task(8, seed=5)),
        Dataset.from_list(lowercase_task(8, seed=6)),
        compute_metrics=compute_metrics,
    )
    trainer.train()
    metrics = trainer.evaluate()
    predictions, labels = seen["predictions"], seen["labels"]
    assert predictions.shape == (8, len(PREDICTION_COLUMNS)) == (8, 6)
    assert labels.shape == (8,) and not labels.any()
    assert metrics["eval_payload_margin_uncond"] == pytest.approx(
        metrics["eval_inspo/margin_uncond"], abs=1e-4
    )
    for column, name in enumerate(PREDICTION_COLUMNS):
        assert predictions[:, column].mean() == pytest.approx(metrics[f"eval_inspo/{name}"], abs=1e-4), name
    assert (predictions[:, 2:] < 0).all()  # log-probs
