"""The Axolotl plugin: config rewrite, strict ``inspo:`` block, inertness, dataset strategy."""

from __future__ import annotations

import copy
import json
import re
from importlib.metadata import entry_points

import pytest

from inspo_plugin.axolotl.args import BLOCK_KEYS, read_block
from inspo_plugin.axolotl.plugin import TRAINER_CLS, register_inspo
from inspo_plugin.axolotl.strategy import load_reflective
from inspo_plugin.core.layout import DROP_COLUMN, MESSAGES_COLUMN, ROW_COLUMN, SOURCE_COLUMN
from inspo_plugin.options import OptionError

BASE = {"base_model": "m", "rl": "inspo", "inspo": {"template": "revise"}, "datasets": [{"path": "d.jsonl"}]}


def test_register_rewrites_rl_inspo_onto_the_dpo_path():
    cfg = copy.deepcopy(BASE)
    register_inspo(cfg)
    assert cfg["rl"] == "dpo" and cfg["inspo_enabled"] is True
    assert cfg["trainer_cls"] == TRAINER_CLS
    assert cfg["excess_length_strategy"] == "truncate"
    assert cfg["dataset_prepared_path"].startswith("last_run_prepared/inspo-")
    again = copy.deepcopy(cfg)
    register_inspo(again)  # each accelerate worker re-runs registration
    assert again == cfg


def test_user_choices_are_kept():
    cfg = {
        **copy.deepcopy(BASE),
        "trainer_cls": "my.Trainer",
        "excess_length_strategy": "drop",
        "dataset_prepared_path": "prep/",
    }
    register_inspo(cfg)
    assert cfg["trainer_cls"] == "my.Trainer" and cfg["excess_length_strategy"] == "drop"
    assert cfg["dataset_prepared_path"].startswith("prep/inspo-")


def test_changing_an_inspo_option_changes_the_prepared_dataset_path():
    paths = set()
    for block in (
        {"template": "revise"},
        {"template": "concat"},
        {"template": "revise", "field_prompt": "q"},
    ):
        cfg = {**copy.deepcopy(BASE), "inspo": block}
        register_inspo(cfg)
        paths.add(cfg["dataset_prepared_path"])
    assert len(paths) == 3


def test_plugin_is_inert_for_other_runs(caplog):
    cfg = {"base_model": "m", "rl": "dpo", "datasets": []}
    before = copy.deepcopy(cfg)
    register_inspo(cfg)
    assert cfg == before
    with_block = {**before, "inspo": {"loss_type": "ipo"}}
    register_inspo(with_block)
    assert with_block["rl"] == "dpo" and "trainer_cls" not in with_block
    assert "ignored" in caplog.text


def test_entry_point_is_registered_for_axolotl():
    values = [ep.value for ep in entry_points(group="axolotl.plugins")]
    assert "inspo_plugin:InSPOPlugin" in values


def test_typo_in_the_block_names_the_key_and_the_valid_ones():
    with pytest.raises(OptionError) as err:
        read_block({"los_type": "ipo"})
    text = str(err.value)
    assert text.startswith("inspo.los_type: unknown option. Valid options: loss_type, template,")
    assert all(key in text for key in BLOCK_KEYS) and "field_prompt" in text
    with pytest.raises(ValueError, match="los_type"):
        register_inspo({**copy.deepcopy(BASE), "inspo": {"los_type": "ipo"}})


@pytest.mark.parametrize(
    "block, message",
    [
        ({"loss_type": "kto"}, "loss_type"),
        ({"template": "custom"}, "inspo.reflection_prompt: template custom needs"),
        ({"reflection_prompt": "x"}, "inspo.reflection_prompt: only used by template custom"),
        ({"label_smoothing": 0.7}, "inspo.label_smoothing: must be >= 0 and < 0.5, got 0.7"),
        ({"on_invalid_row": "ignore"}, "inspo.on_invalid_row: 'ignore' is not one of error, skip"),
        ({"uncond_weight": "1"}, "inspo.uncond_weight: expected a number, got str"),
        ({"field_prompt": ""}, "inspo.field_prompt: expected a column name"),
        ({"beta": 0.2}, "inspo.beta: set it with rl_beta"),
    ],
)
def test_bad_values_are_rejected(block, message):
    with pytest.raises(OptionError, match=message):
        read_block(block)
    with pytest.raises(OptionError, match=message):  # before Axolotl sees the config
        register_inspo({**copy.deepcopy(BASE), "inspo": block})


def test_full_axolotl_validation_accepts_the_block_and_rejects_a_typo(tiny_checkpoint):
    from collections import OrderedDict

    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    def validate(block):
        PluginManager.get_instance().plugins = OrderedDict()
        cfg = DictDefault(
            base_model=str(tiny_checkpoint),
            plugins=["inspo_plugin.InSPOPlugin"],
            rl="inspo",
            inspo=block,
            datasets=[{"path": "tests/data/prefs_small.jsonl", "type": "inspo_plugin.reflective"}],
            micro_batch_size=1,
            gradient_accumulation_steps=1,
            learning_rate=1e-5,
            sequence_len=256,
            output_dir="out",
        )
        prepare_plugins(cfg)
        return validate_config(cfg)

    try:
        cfg = validate({"loss_type": "ipo", "template": "concat"})
        assert cfg.rl == "dpo" and cfg.inspo_enabled
        assert cfg.inspo["loss_type"] == "ipo" and cfg.inspo["template"] == "concat"
        with pytest.raises(ValueError, match=r"inspo\.temlate: unknown option"):
            validate({"temlate": "concat"})
    finally:
        PluginManager.get_instance().plugins = OrderedDict()


# --- dataset strategy ----------------------------------------------------------------------------

CFG = {"inspo": {}, "datasets": [{"path": "data/prefs.jsonl"}], "sequence_len": 512}


def _transform(cfg=None):
    fn, kwargs = load_reflective(cfg or CFG, dataset_idx=0)
    assert kwargs == {"with_indices": True}
    return fn


@pytest.mark.parametrize(
    "sample",
    [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
        {
            "chosen": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}],
            "rejected": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "5"}],
        },
        {"question": "What is 2+2?", "chosen": "4", "rejected": "5", "system": ""},
    ],
)
def test_strategy_accepts_the_common_shapes(chatml_tokenizer, sample):
    out = _transform()(sample, 4, tokenizer=chatml_tokenizer)
    assert (
        out[DROP_COLUMN] == "" and out[ROW_COLUMN] == 4 and out[SOURCE_COLUMN].startswith("data/prefs.jsonl")
    )
    row = json.loads(out[MESSAGES_COLUMN])
    assert row == {
        "prompt": [{"role": "user", "content": "What is 2+2?"}],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    }
    assert out["prompt"] == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert out["chosen"] == "4<|im_end|>"  # ends at the EOS, so TRL's string path adds none


def test_strategy_field_names_come_from_the_block(chatml_tokenizer):
    cfg = {**CFG, "inspo": {"field_prompt": "instruction", "field_chosen": "good", "field_rejected": "bad"}}
    out = _transform(cfg)(
        {"instruction": "Hi", "good": "Hello!", "bad": "Go away."}, 0, tokenizer=chatml_tokenizer
    )
    assert json.loads(out[MESSAGES_COLUMN])["chosen"][0]["content"] == "Hello!"


def test_strategy_error_names_file_row_and_field(chatml_tokenizer):
    with pytest.raises(
        ValueError, match=r"data/prefs.jsonl \(datasets\[0\]\): row 9, field 'rejected': missing"
    ):
        _transform()({"prompt": "p", "chosen": "a"}, 9, tokenizer=chatml_tokenizer)


def test_strategy_skip_mode_flags_rows_for_the_trainers_report(chatml_tokenizer):
    cfg = {**CFG, "inspo": {"on_invalid_row": "skip"}, "sequence_len": 16}
    fn = _transform(cfg)
    bad = fn({"prompt": "p", "chosen": "same", "rejected": "same"}, 2, tokenizer=chatml_tokenizer)
    assert bad[DROP_COLUMN].startswith("invalid: data/prefs.jsonl") and "row 2" in bad[DROP_COLUMN]
    assert bad["prompt"] and bad["chosen"] and bad["rejected"]  # non-empty, so Axolotl keeps the row
    long = fn(
        {"prompt": "a long question " * 20, "chosen": "x", "rejected": "y"}, 3, tokenizer=chatml_tokenizer
    )
    assert long[DROP_COLUMN].startswith("too long: prompt (")


def test_strategy_is_reachable_as_axolotl_resolves_it():
    """Axolotl resolves `type: inspo_plugin.reflective` as attribute `reflective` of the package."""
    from axolotl.prompt_strategies.dpo import load

    result = load("inspo_plugin.reflective", CFG, dataset_idx=0)
    assert isinstance(result, tuple) and callable(result[0])


def test_the_readme_documents_every_block_key_with_its_default():
    from pathlib import Path

    from inspo_plugin.axolotl.args import normalized_block

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### The `inspo:` block", 1)[1].split("\n### ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `")]
    for key, default in normalized_block(None).items():
        row = next((r for r in rows if f"`{key}`" in r[1]), None)
        assert row is not None, f"README's inspo: table lacks {key}"
        assert ("—" if default is None else f"`{default}`") in row[2], f"README's default of {key}"
    documented = {k.strip("` ") for r in rows for k in r[1].split(",")}
    assert documented == set(BLOCK_KEYS)


def test_the_options_reach_the_trainer_through_its_training_arguments():
    from dataclasses import dataclass

    from axolotl.utils.dict import DictDefault

    from inspo_plugin import InSPOPlugin
    from inspo_plugin.axolotl.args import InSPOTrainingArgsMixin

    @dataclass
    class TrainingArgs(InSPOTrainingArgsMixin):  # what Axolotl merges the mix-in into carries DPO's beta
        beta: float = 0.3

    plugin = InSPOPlugin()
    assert plugin.get_training_args_mixin() == "inspo_plugin.axolotl.args.InSPOTrainingArgsMixin"
    cfg = {**copy.deepcopy(BASE), "inspo": {"loss_type": "ipo", "uncond_weight": 1}}
    register_inspo(cfg)
    values = plugin.get_training_args(DictDefault(cfg))
    options = TrainingArgs(**values).inspo_options()
    assert (options.loss_type, options.uncond_weight, options.beta) == ("ipo", 1.0, 0.3)
    assert plugin.get_training_args(DictDefault({"rl": "dpo"})) is None  # other runs: nothing added
    with pytest.raises(OptionError, match="carries no InSPO options"):
        TrainingArgs().inspo_options()


@pytest.mark.parametrize(
    "key, value, hint",
    [
        ("dpo_loss_type", ["ipo"], "inspo.loss_type"),
        ("dpo_loss_weights", [1.0], "one objective"),
        ("dpo_label_smoothing", 0.1, "inspo.label_smoothing"),
        ("dpo_use_weighting", True, "weighting"),
        ("dpo_ld_alpha", 0.5, "LD-DPO"),
        ("dpo_padding_free", True, "padding-free"),
        ("dpo_use_liger_kernel", True, "Liger"),
        ("simpo_gamma", 0.5, "inspo.simpo_gamma"),
        ("cpo_alpha", 1.0, "inspo.sft_weight"),
        ("orpo_alpha", 0.1, "inspo.orpo_lambda"),
    ],
)
def test_dpo_keys_inspo_cannot_honour_are_refused_at_config_time(key, value, hint):
    with pytest.raises(OptionError, match=rf"^{key}: .* not supported with rl: inspo; .*{re.escape(hint)}"):
        register_inspo({**copy.deepcopy(BASE), key: value})
    unset = {**copy.deepcopy(BASE), key: None}
    register_inspo(unset)  # null (Axolotl's default) is fine
    assert unset["rl"] == "dpo"


def test_conditional_reference_with_precomputed_reference_is_accepted():
    cfg = {**copy.deepcopy(BASE), "inspo": {"reference": "conditional"}, "precompute_ref_log_probs": True}
    register_inspo(cfg)  # all four reference log-probs are precomputed
    assert cfg["inspo"]["reference"] == "conditional" and cfg["rl"] == "dpo"


def test_the_readme_names_every_refused_dpo_key():
    from pathlib import Path

    from inspo_plugin.axolotl.args import REFUSED_DPO_KEYS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Switch an Axolotl DPO recipe to InSPO", 1)[1].split("\n### ", 1)[0]
    assert [key for key in REFUSED_DPO_KEYS if f"`{key}`" not in section] == []
