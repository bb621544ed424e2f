"""The InSPO options: declared once, checked once, seen the same way by TRL, Axolotl and the CLI."""

from __future__ import annotations

import dataclasses

import pytest

from inspo_plugin.core.objectives import OBJECTIVES, REFERENCE_MODES
from inspo_plugin.core.rows import ON_INVALID_ROW
from inspo_plugin.core.sequences import TEMPLATES
from inspo_plugin.options import InSPOOptions, OptionError


def test_every_option_has_help_and_choices_come_from_the_registries():
    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(InSPOOptions)}
    assert choices["loss_type"] == tuple(OBJECTIVES)
    assert choices["template"] == TEMPLATES
    assert choices["reference"] == REFERENCE_MODES
    assert choices["on_invalid_row"] == ON_INVALID_ROW
    for f in dataclasses.fields(InSPOOptions):
        assert len(f.metadata["help"]) > 20, f.name
        if f.metadata.get("choices"):
            assert all(c in f.metadata["help"] for c in f.metadata["choices"]), f.name


@pytest.mark.parametrize(
    "values, message",
    [
        ({"loss_type": "kto"}, "inspo.loss_type: 'kto' is not one of sigmoid, one_sided, ipo"),
        ({"beta": -1}, "inspo.beta: must be > 0, got -1"),
        ({"ipo_tau": 0}, "inspo.ipo_tau: must be > 0, got 0"),
        ({"orpo_lambda": -0.5}, "inspo.orpo_lambda: must be >= 0, got -0.5"),
        ({"sft_weight": float("nan")}, "inspo.sft_weight: expected a number, got NaN"),
        ({"orpo_lambda": [1]}, "inspo.orpo_lambda: expected a number, got list"),
        ({"template": 3}, "inspo.template: expected a string, got int 3"),
        ({"reference": None}, "inspo.reference: must be set"),
        (
            {"on_invalid_rows": "skip"},
            "inspo.on_invalid_rows: unknown option. Valid options: loss_type, beta,",
        ),
    ],
)
def test_one_message_format_names_the_option(values, message):
    with pytest.raises(OptionError) as err:
        InSPOOptions.from_mapping(values)
    assert str(err.value).startswith(message)


def test_numbers_from_yaml_become_floats_and_defaults_fill_the_rest():
    options = InSPOOptions.from_mapping({"uncond_weight": 1, "template": "concat"})
    assert options.uncond_weight == 1.0 and isinstance(options.uncond_weight, float)
    assert options.to_dict() == {**InSPOOptions().to_dict(), "uncond_weight": 1.0, "template": "concat"}
    optional = InSPOOptions.from_mapping({"ipo_tau": 1, "orpo_lambda": None})  # float | None options
    assert optional.ipo_tau == 1.0 and isinstance(optional.ipo_tau, float) and optional.orpo_lambda is None


def test_ipo_tau_and_orpo_lambda_default_to_beta():
    for name in ("ipo_tau", "orpo_lambda"):
        f = next(f for f in dataclasses.fields(InSPOOptions) if f.name == name)
        assert f.default is None and "Default (null): β" in f.metadata["help"]


def test_reference_free_objectives_need_no_reference_unless_conditional():
    assert not InSPOOptions(loss_type="simpo").needs_reference
    assert InSPOOptions(loss_type="sigmoid").needs_reference
    assert InSPOOptions(loss_type="orpo", reference="conditional").needs_reference


def test_trl_config_shows_the_same_help_and_choices(tmp_path):
    from transformers import HfArgumentParser

    from inspo_plugin import InSPOConfig

    parser = HfArgumentParser(InSPOConfig)
    actions = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(InSPOOptions):
        assert actions[f.name].help == f.metadata["help"], f.name
        if f.metadata.get("choices"):
            assert tuple(actions[f.name].choices) == f.metadata["choices"]
    (config,) = parser.parse_args_into_dataclasses(
        [
            "--output_dir",
            str(tmp_path),
            "--use_cpu",
            "true",
            "--loss_type",
            "rdpo",
            "--uncond_weight",
            "0.5",
            "--beta",
            "0.2",
        ]
    )
    options = config.inspo_options()
    assert (options.loss_type, options.uncond_weight, options.beta) == ("rdpo", 0.5, 0.2)
    assert config.loss_type == ["rdpo"]  # TRL's own form, for TRL's code paths
    assert (options.ipo_tau, options.orpo_lambda) == (None, None)  # unset: β
    (tau,) = parser.parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--use_cpu", "true", "--loss_type", "ipo", "--ipo_tau", "0.3"]
    )
    assert tau.inspo_options().ipo_tau == 0.3
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(
            ["--output_dir", str(tmp_path), "--use_cpu", "true", "--template", "mirror"]
        )


def test_the_cli_offers_the_declared_templates():
    import argparse

    from inspo_plugin.cli import evaluate, preview

    for command in (preview, evaluate):
        parser = argparse.ArgumentParser()
        command.add_parser(parser.add_subparsers())
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        (child,) = sub.choices.values()
        template = next(a for a in child._actions if a.dest == "template")
        assert tuple(template.choices) == TEMPLATES


def test_label_smoothing_only_with_the_robust_loss():
    with pytest.raises(OptionError, match=r"inspo\.label_smoothing: only used by loss_type robust"):
        InSPOOptions.from_mapping({"label_smoothing": 0.1})
    assert InSPOOptions.from_mapping({"label_smoothing": 0.1, "loss_type": "robust"}).label_smoothing == 0.1
