"""bench/compare.py: configs for seeds, data variants and epochs; the seeded table; the plain-TRL engine."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from inspo_plugin.models.smollm2 import DEMO_RECIPE
from tests.bench_scripts import load_bench_module


@pytest.fixture(scope="module")
def bench():
    return load_bench_module("compare")


@pytest.fixture(scope="module")
def recipe():
    return yaml.safe_load(DEMO_RECIPE.read_text())


def _config(bench, recipe, name, tmp_path, **kw):
    values = dict(
        seed=43,
        train_file=tmp_path / "natural" / "train.jsonl",
        n_train_rows=468,
        out_dir=tmp_path / "out" / name,
        prepared_dir=tmp_path / "prep" / name,
    )
    values.update(kw)
    return bench.run_config(recipe, name, **values)


def test_run_configs_for_steps_epochs_seeds_and_data(bench, recipe, tmp_path):
    dpo = _config(bench, recipe, "dpo", tmp_path, steps=8)
    assert dpo["rl"] == "dpo" and "inspo" not in dpo
    assert dpo["seed"] == 43 and dpo["max_steps"] == 8 and "num_epochs" not in dpo
    assert dpo["datasets"][0]["path"] == str(tmp_path / "natural" / "train.jsonl")
    assert dpo["datasets"][0]["type"] == recipe["datasets"][0]["type"]
    assert dpo["warmup_steps"] == math.ceil(recipe["warmup_ratio"] * 8) and "warmup_ratio" not in dpo
    assert dpo["output_dir"] == str(tmp_path / "out" / "dpo") and dpo["save_steps"] == 8

    epochs = _config(bench, recipe, "inspo", tmp_path, epochs=2)
    assert "max_steps" not in epochs and epochs["num_epochs"] == 2 and epochs["save_strategy"] == "epoch"
    per_step = recipe["micro_batch_size"] * recipe["gradient_accumulation_steps"]
    assert epochs["warmup_steps"] == math.ceil(recipe["warmup_ratio"] * 2 * math.ceil(468 / per_step))
    assert epochs["inspo"]["loss_type"] == "sigmoid"
    assert epochs["inspo"]["template"] == recipe["inspo"]["template"]  # the recipe's options are kept

    uncond = _config(bench, recipe, "inspo-uncond", tmp_path, steps=4)
    concat = _config(bench, recipe, "inspo-concat", tmp_path, steps=4)
    beta = _config(bench, recipe, "inspo-beta0.05", tmp_path, steps=4)
    assert uncond["inspo"]["uncond_weight"] == 1.0 and concat["inspo"]["template"] == "concat"
    assert beta["rl_beta"] == 0.05 and beta["rl"] == "inspo"
    dpo_beta = _config(bench, recipe, "dpo-beta0.05", tmp_path, steps=4)
    assert dpo_beta["rl"] == "dpo" and dpo_beta["rl_beta"] == 0.05 and "inspo" not in dpo_beta
    both = _config(bench, recipe, "inspo-uncond-beta0.05", tmp_path, steps=4)
    assert both["rl_beta"] == 0.05 and both["inspo"]["uncond_weight"] == 1.0
    assert bench.label("inspo-uncond-beta0.05") == "InSPO-DPO, uncond_weight 1, β 0.05"
    # plain InSPO-DPO is the paper's objective whatever the (demo) recipe adds to it
    assert epochs["inspo"]["uncond_weight"] == 0.0
    # the recipe itself is untouched by the run overrides
    assert recipe == yaml.safe_load(DEMO_RECIPE.read_text()) and "max_steps" in recipe

    # configs equal up to their output locations train once
    inspo = _config(bench, recipe, "inspo", tmp_path, steps=4)
    revise = _config(bench, recipe, "inspo-revise", tmp_path, steps=4)
    assert bench.fingerprint(inspo) == bench.fingerprint(revise)  # the recipe's template is revise
    assert bench.fingerprint(inspo) != bench.fingerprint(concat)
    assert bench.fingerprint(inspo) != bench.fingerprint(
        _config(bench, recipe, "inspo", tmp_path, steps=4, seed=44)
    )

    assert bench.seeds_for(42, 3) == [42, 43, 44]
    assert bench.study_name("edited", None, 1, "trl") == "edited-epochs1-trl"
    assert bench.study_name("mixed", 32, None, "axolotl") == "mixed-steps32-axolotl"
    with pytest.raises(ValueError, match="exactly one"):
        _config(bench, recipe, "dpo", tmp_path, steps=4, epochs=1)
    with pytest.raises(ValueError, match="unknown run"):
        _config(bench, recipe, "ppo", tmp_path, steps=4)
    with pytest.raises(ValueError, match="seeds"):
        bench.seeds_for(42, 0)


def test_command_line(bench):
    args = bench.parse_args(
        ["--runs", "dpo", "inspo-beta0.3", "--seeds", "3", "--epochs", "1", "--data", "edited"]
    )
    assert (args.runs, args.seeds, args.epochs, args.steps, args.data) == (
        ["dpo", "inspo-beta0.3"],
        3,
        1.0,
        None,
        "edited",
    )
    for bad in (
        ["--steps", "4", "--epochs", "1"],
        ["--data", "other"],
        ["--seeds", "0"],
        ["--epochs", "1.5"],
    ):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_data_variants(bench, monkeypatch):
    import inspo_plugin.data as data

    rows = bench.load_variant("test", "mixed")
    assert rows and {"prompt", "chosen", "rejected"} <= set(rows[0])
    with pytest.raises(SystemExit, match=r"--data shuffled: unknown data variant"):
        bench.load_variant("train", "shuffled")

    def with_variants(split, name="ifeval_prefs", variant="mixed"):
        if variant == "edited":
            raise FileNotFoundError("edited/train.jsonl is missing")
        return [{"split": split, "variant": variant}]

    monkeypatch.setattr(data, "load_builtin_preferences", with_variants)
    assert bench.load_variant("test", "natural") == [{"split": "test", "variant": "natural"}]
    with pytest.raises(SystemExit, match=r"--data edited: the train split .*missing"):
        bench.load_variant("train", "edited")


def _result(passes, margins, history=None, seconds=60.0, beta=0.1):
    return {
        "passes": passes,
        "preference": {"per_pair": {"margin_uncond": margins, "margin_cond": margins}},
        "train_seconds": seconds,
        "log_history": history or [],
        "beta": beta,
    }


def test_study_summary_pairs_runs_by_item_and_seed(bench):
    rng = np.random.default_rng(0)
    base = {"passes": [False] * 10}
    dpo = {s: _result(list(rng.random(10) < 0.5), list(rng.normal(size=8))) for s in (42, 43)}
    inspo = {s: _result(list(rng.random(10) < 0.7), list(rng.normal(size=8))) for s in (42, 43, 44)}
    summary = bench.study_summary({"dpo": dpo, "inspo": inspo}, base, n_resamples=500)
    entry = summary["inspo"]
    assert entry["seeds"] == [42, 43, 44]
    own = np.array([inspo[s]["passes"] for s in (42, 43, 44)], dtype=float)
    assert entry["pass"]["mean"] == pytest.approx(own.mean())
    # vs DPO: only the seeds both have, paired cell by cell
    common = np.array([inspo[s]["passes"] for s in (42, 43)], dtype=float)
    other = np.array([dpo[s]["passes"] for s in (42, 43)], dtype=float)
    assert entry["pass"]["vs_dpo"]["n_seeds"] == 2
    assert entry["pass"]["vs_dpo"]["mean"] == pytest.approx((common - other).mean())
    assert entry["pass"]["vs_base"]["mean"] == pytest.approx(own.mean())  # the base passes nothing
    margins = np.array([inspo[s]["preference"]["per_pair"]["margin_uncond"] for s in (42, 43)])
    dpo_margins = np.array([dpo[s]["preference"]["per_pair"]["margin_uncond"] for s in (42, 43)])
    assert entry["margin"]["vs_dpo"]["mean"] == pytest.approx((margins - dpo_margins).mean())
    assert entry["acc"]["vs_dpo"]["mean"] == pytest.approx(((margins > 0) * 1.0 - (dpo_margins > 0)).mean())
    assert "vs_dpo" not in summary["dpo"]["pass"]
    table = bench.summary_markdown(summary, base)
    assert table.count("\n") == 4  # header, rule, base, dpo, inspo
    assert "(2 seeds)" in table and "42, 43, 44" in table

    with pytest.raises(ValueError, match="different numbers"):
        bench.study_summary({"dpo": dpo, "inspo": {42: _result([True] * 9, [0.1] * 8)}}, base)


def test_variants_of_inspo_dpo_are_also_compared_with_plain_inspo_dpo(bench):
    rng = np.random.default_rng(3)

    def runs(seeds, rate):
        return {s: _result(list(rng.random(12) < rate), list(rng.normal(size=6))) for s in seeds}

    results = {
        "dpo": runs((42, 43, 44), 0.6),
        "inspo": runs((42, 43), 0.4),
        "inspo-uncond": runs((42, 43, 44), 0.5),
        "simpo": runs((42,), 0.5),
    }
    summary = bench.study_summary(results, None, n_resamples=300)
    entry = summary["inspo-uncond"]

    def table(run, metric, seeds):
        return np.array(
            [
                results[run][s]["passes"]
                if metric == "pass"
                else results[run][s]["preference"]["per_pair"]["margin_uncond"]
                for s in seeds
            ],
            dtype=float,
        )

    # against plain InSPO-DPO over the seeds both have (42, 43), against DPO over all three
    for metric in ("pass", "margin"):
        vs = entry[metric]["vs_inspo"]
        assert vs["n_seeds"] == 2
        assert vs["mean"] == pytest.approx(
            (table("inspo-uncond", metric, (42, 43)) - table("inspo", metric, (42, 43))).mean()
        )
        assert entry[metric]["vs_dpo"]["n_seeds"] == 3
    # neither plain InSPO-DPO itself nor a run of another family is compared with it
    assert "vs_inspo" not in summary["inspo"]["pass"] and "vs_inspo" not in summary["simpo"]["pass"]
    rows = {
        line.split(" | ")[0].lstrip("| "): line.split(" | ")
        for line in bench.summary_markdown(summary, None).splitlines()
    }
    header = rows["run"]
    column = header.index("Δ pass vs InSPO-DPO")
    assert rows[bench.label("inspo-uncond")][column].endswith("(2 seeds)")
    assert rows[bench.label("simpo")][column] == "—"


def test_train_time_ratio_to_dpo_pairs_each_seed_with_dpo_on_the_same_machine(bench):
    passes, margins = [True, False] * 5, [0.5] * 8
    fast, slow = "CPU A, 2 cores", "CPU B, 2 cores"

    def run(seconds, machine, **extra):
        return {**_result(passes, margins, seconds=seconds), "machine": machine, **extra}

    dpo = {42: run(100.0, slow), 43: run(40.0, fast), 44: run(50.0, fast), 45: run(60.0, fast)}
    inspo = {
        42: run(150.0, slow),  # 1.5×
        43: run(60.0, fast),  # 1.5×
        44: run(90.0, slow),  # another machine than DPO's seed 44: left out
        45: run(10.0, fast, resumed_from="checkpoint-20"),  # a resumed run's time is partial: left out
    }
    summary = bench.study_summary({"dpo": dpo, "inspo": inspo}, None, n_resamples=200)
    ratio = summary["inspo"]["train_time_vs_dpo"]
    assert ratio["n_seeds"] == 2 and ratio["mean"] == pytest.approx(1.5)
    assert summary["inspo"]["train_seconds"] == pytest.approx((150.0 + 60.0 + 90.0) / 3)
    assert summary["inspo"]["train"][44] == {"seconds": 90.0, "machine": slow}
    assert summary["inspo"]["train"][45]["seconds"] is None
    assert summary["dpo"]["train_time_vs_dpo"] is None
    assert "1.50× (2 seeds)" in bench.summary_markdown(summary, None)
    # runs saved before machines were recorded count as one machine
    unrecorded = bench.study_summary(
        {
            "dpo": {42: _result(passes, margins, seconds=40.0)},
            "inspo": {42: _result(passes, margins, seconds=70.0)},
        },
        None,
        n_resamples=200,
    )
    assert unrecorded["inspo"]["train_time_vs_dpo"]["mean"] == pytest.approx(1.75)
    assert bench.machine_name(None).endswith(" cores")


def test_pass_rate_on_held_out_constraint_kinds_covers_only_those_prompts(bench, tmp_path):
    rng = np.random.default_rng(2)
    groups = ["prompt", "constraint", "constraint", "prompt", "constraint", "prompt", "prompt", "constraint"]
    new = np.array([g == "constraint" for g in groups])
    base = {"passes": [bool(v) for v in rng.random(8) < 0.5]}
    runs = {
        run: {s: _result([bool(v) for v in rng.random(8) < 0.6], [0.1, -0.2]) for s in (42, 43)}
        for run in ("dpo", "inspo")
    }
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    for run, by_seed in runs.items():
        for seed, result in by_seed.items():
            (runs_dir / f"{run}.seed{seed}.json").write_text(json.dumps(result))
    # saved results carry no labels: loading adds the test split's, one per answered prompt
    loaded = bench.load_study(runs_dir, groups + ["prompt"] * 4)
    assert loaded["inspo"][42]["item_groups"] == groups
    summary = bench.study_summary(loaded, bench.with_item_groups(dict(base), groups), n_resamples=500)

    def passes(run):
        return np.array([runs[run][s]["passes"] for s in (42, 43)], dtype=float)[:, new]

    entry = summary["inspo"]["pass_new_kinds"]
    assert entry["mean"] == pytest.approx(passes("inspo").mean())
    assert entry["vs_dpo"]["mean"] == pytest.approx((passes("inspo") - passes("dpo")).mean())
    base_new = np.array(base["passes"], dtype=float)[new]
    assert entry["vs_base"]["mean"] == pytest.approx((passes("inspo") - base_new).mean())
    assert summary["inspo"]["pass"]["mean"] != pytest.approx(entry["mean"])  # not all prompts
    table = bench.summary_markdown(summary, bench.with_item_groups(dict(base), groups))
    base_row = table.splitlines()[2].split(" | ")
    assert base_row[6] == f"{100 * base_new.mean():.1f}%"
    # without labels there is no such rate, and nothing else changes
    unlabelled = bench.study_summary(bench.load_study(runs_dir), base, n_resamples=500)
    assert "pass_new_kinds" not in unlabelled["inspo"]
    assert unlabelled["inspo"]["pass"]["mean"] == pytest.approx(summary["inspo"]["pass"]["mean"])


def test_contrast_of_two_data_variants_is_a_paired_difference_in_differences(bench, tmp_path):
    rng = np.random.default_rng(1)

    def study(dpo_rate, inspo_rate, seeds):
        return {
            "dpo": {
                s: _result(
                    [bool(v) for v in rng.random(12) < dpo_rate], [float(v) for v in rng.normal(size=6)]
                )
                for s in seeds
            },
            "inspo": {
                s: _result(
                    [bool(v) for v in rng.random(12) < inspo_rate], [float(v) for v in rng.normal(size=6)]
                )
                for s in seeds
            },
        }

    natural, mixed = study(0.5, 0.5, (42, 43)), study(0.9, 0.4, (42, 43, 44))
    del mixed["dpo"][43]  # InSPO has seed 43 on both; DPO on one only
    contrast = bench.study_contrast(natural, mixed, n_resamples=2000)

    def passes(results, run, seeds):
        return np.array([results[run][s]["passes"] for s in seeds], dtype=float)

    assert contrast["inspo"]["seeds"] == [42, 43] and contrast["dpo"]["seeds"] == [42]
    change = contrast["inspo"]["pass"]["change"]
    own = passes(mixed, "inspo", (42, 43)) - passes(natural, "inspo", (42, 43))
    assert change["mean"] == pytest.approx(own.mean()) and change["n_seeds"] == 2
    # the difference in differences pairs every (seed, prompt) cell of four trainings: seed 42 only
    did = (passes(mixed, "inspo", [42]) - passes(mixed, "dpo", [42])) - (
        passes(natural, "inspo", [42]) - passes(natural, "dpo", [42])
    )
    vs_dpo = contrast["inspo"]["pass"]["change_vs_dpo"]
    assert vs_dpo["mean"] == pytest.approx(did.mean()) and vs_dpo["n_seeds"] == 1
    assert vs_dpo["ci_low"] <= vs_dpo["mean"] <= vs_dpo["ci_high"]
    margins = [np.array(r["inspo"][42]["preference"]["per_pair"]["margin_uncond"]) for r in (natural, mixed)]
    dpo_margins = [
        np.array(r["dpo"][42]["preference"]["per_pair"]["margin_uncond"]) for r in (natural, mixed)
    ]
    expected = ((margins[1] - dpo_margins[1]) - (margins[0] - dpo_margins[0])).mean()
    assert contrast["inspo"]["margin"]["change_vs_dpo"]["mean"] == pytest.approx(expected)
    assert "change_vs_dpo" not in contrast["dpo"]["pass"]
    table = bench.contrast_markdown(contrast, "natural", "mixed")
    assert table.count("\n") == 3 and "natural → mixed" in table and "(1 seed)" in table

    # the command line writes the table next to the two studies, and refuses a missing study
    for data, results in (("natural", natural), ("mixed", mixed)):
        runs_dir = tmp_path / bench.study_name(data, None, 1, "axolotl") / "runs"
        runs_dir.mkdir(parents=True)
        for run, by_seed in results.items():
            for seed, result in by_seed.items():
                (runs_dir / f"{run}.seed{seed}.json").write_text(json.dumps(result))

    def contrast(first, second):
        argv = [
            "--contrast",
            first,
            second,
            "--epochs",
            "1",
            "--engine",
            "axolotl",
            "--output",
            str(tmp_path),
        ]
        return bench.main(argv)

    assert contrast("natural", "mixed") == 0
    written = json.loads((tmp_path / "contrast-natural-mixed-epochs1-axolotl.json").read_text())
    assert written["inspo"]["pass"]["change"]["mean"] == pytest.approx(own.mean())
    with pytest.raises(SystemExit, match="no saved runs"):
        contrast("natural", "edited")
    with pytest.raises(SystemExit):
        bench.parse_args(["--contrast", "mixed", "mixed"])


def test_saved_runs_are_reloaded_and_curves_cover_every_run(bench, tmp_path):
    from inspo_plugin.evaluation.plots import comparison_figure

    history = [{"step": s, "loss": 0.7 - 0.01 * s, "rewards/margins": 0.02 * s} for s in range(1, 6)]
    inspo_history = [{"step": s, "loss": 0.6, "inspo/margin_uncond": 0.1 * s} for s in range(1, 6)]
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    for name, seed, hist in (("dpo", 42, history), ("dpo", 43, history), ("inspo", 42, inspo_history)):
        (runs_dir / f"{name}.seed{seed}.json").write_text(json.dumps(_result([True], [0.1], hist)))
    (runs_dir / "unknown.seed42.json").write_text("{}")
    loaded = bench.load_study(runs_dir)
    assert list(loaded) == ["dpo", "inspo"] and sorted(loaded["dpo"]) == [42, 43]
    curves = bench.curve_histories(loaded)
    assert list(curves) == [bench.label("dpo"), bench.label("inspo")] and len(curves[bench.label("dpo")]) == 2
    # DPO's rewards/margins is β · the log-ratio margin
    assert curves[bench.label("dpo")][0][2]["inspo/margin_uncond"] == pytest.approx(0.06 / 0.1)
    fig = comparison_figure(curves)
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
        assert len(labels) == 2 and labels[0].startswith(bench.label("dpo"))


def test_trl_arguments_map_every_recipe_option(bench, recipe, tmp_path):
    cfg = _config(bench, recipe, "inspo-uncond", tmp_path, steps=4)
    rl, args = bench.trl_arguments(cfg, cuda=False)
    assert rl == "inspo"
    assert args["beta"] == recipe["rl_beta"] and args["max_length"] == recipe["sequence_len"]
    assert args["per_device_train_batch_size"] == recipe["micro_batch_size"]
    assert args["lr_scheduler_type"] == "cosine_with_min_lr"
    assert args["lr_scheduler_kwargs"] == {"min_lr_rate": recipe["cosine_min_lr_ratio"]}
    assert args["uncond_weight"] == 1.0 and args["template"] == "revise" and args["seed"] == 43
    assert args["optim"] == recipe["optimizer"] and args["use_cpu"] and not args["bf16"]
    assert bench.trl_arguments(cfg, cuda=True)[1]["bf16"] is True
    epochs = bench.trl_arguments(_config(bench, recipe, "dpo", tmp_path, epochs=1), cuda=False)[1]
    assert epochs["num_train_epochs"] == 1 and "max_steps" not in epochs and "uncond_weight" not in epochs
    with pytest.raises(ValueError, match=r"'lora_r'"):
        bench.trl_arguments({**cfg, "lora_r": 8}, cuda=False)
    with pytest.raises(ValueError, match="rl: simpo"):
        bench.trl_arguments(_config(bench, recipe, "simpo", tmp_path, steps=4), cuda=False)
    with pytest.raises(ValueError, match="sample_packing"):
        bench.trl_arguments({**cfg, "sample_packing": True}, cuda=False)
    with pytest.raises(ValueError, match="chat_template"):
        bench.trl_arguments({**cfg, "chat_template": "llama3"}, cuda=False)


@pytest.mark.slow
def test_trl_engine_trains_dpo_and_inspo_on_a_tiny_model(bench, recipe, tmp_path, tiny_checkpoint):
    """The plain-TRL engine end to end on a tiny checkpoint: one step each, DPO and InSPO-DPO."""
    from inspo_plugin.data import load_builtin_preferences

    rows = load_builtin_preferences("train")[:2]
    train_file = bench.write_train_file(rows, tmp_path / "data" / "train.jsonl")
    small = {
        **recipe,
        "base_model": str(tiny_checkpoint),
        "sequence_len": 256,
        "logging_steps": 1,
        "gradient_accumulation_steps": 1,
    }
    for name in ("dpo", "inspo"):
        cfg = _config(bench, small, name, tmp_path, steps=1, train_file=train_file, n_train_rows=2)
        cfg["save_strategy"] = "no"  # the final model is saved all the same
        del cfg["save_steps"]
        seconds = bench.train_trl(cfg, tmp_path / f"{name}.log")
        out = Path(cfg["output_dir"])
        assert (
            seconds > 0
            and (out / "model.safetensors").is_file()
            and (out / "tokenizer_config.json").is_file()
        )
        history = bench.log_history(out)
        losses = [e["loss"] for e in history if "loss" in e]
        assert len(losses) == 1 and math.isfinite(losses[0])
        key = "inspo/margin_uncond" if name == "inspo" else "rewards/margins"
        assert any(key in e for e in history)
        assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 1


def test_checkpoint_settings_stay_outside_the_fingerprint(bench, recipe, tmp_path):
    cfg = _config(bench, recipe, "inspo", tmp_path, epochs=1)
    key = bench.fingerprint(cfg)
    trained = bench.checkpointed(cfg, None)
    assert bench.fingerprint(cfg) == key and cfg["save_strategy"] == "epoch"  # cfg itself unchanged
    assert trained["save_strategy"] == "steps" and trained["save_steps"] == bench.CHECKPOINT_EVERY
    assert trained["save_total_limit"] == 1 and trained["save_only_model"] is False
    assert "resume_from_checkpoint" not in trained
    resumed = bench.checkpointed(cfg, tmp_path / "checkpoint-40")
    assert resumed["resume_from_checkpoint"] == str(tmp_path / "checkpoint-40")


def test_resume_point_is_the_newest_complete_checkpoint_of_the_same_config(bench, tmp_path):
    run_dir = tmp_path / "run"
    assert bench.resume_point(run_dir, "aaaa") is None  # fresh: nothing to resume
    assert (run_dir / bench.FINGERPRINT_FILE).read_text().strip() == "aaaa"
    for step, complete in ((20, True), (100, True), (120, False)):  # 120: cut off while saving
        (run_dir / f"checkpoint-{step}").mkdir()
        if complete:
            (run_dir / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert bench.resume_point(run_dir, "aaaa") == run_dir / "checkpoint-100"  # by step, not by name
    # another config's checkpoints are removed, not resumed
    assert bench.resume_point(run_dir, "bbbb") is None
    assert sorted(p.name for p in run_dir.iterdir()) == [bench.FINGERPRINT_FILE]
    # a directory without a fingerprint (written before it was recorded) is not trusted either
    (tmp_path / "old" / "checkpoint-20").mkdir(parents=True)
    (tmp_path / "old" / "checkpoint-20" / "trainer_state.json").write_text("{}")
    assert bench.resume_point(tmp_path / "old", "aaaa") is None


def test_an_interrupted_trl_run_resumes_to_the_uninterrupted_result(bench, recipe, tmp_path, tiny_checkpoint):
    """The trl engine trains 4 steps with a checkpoint every 2; a second run directory holding only
    that run's step-2 checkpoint (what an interruption after step 2 leaves) resumes to the same weights
    and the same logged losses."""
    import shutil

    from safetensors.torch import load_file

    from inspo_plugin.data import load_builtin_preferences

    rows = load_builtin_preferences("train")[:8]
    train_file = bench.write_train_file(rows, tmp_path / "data" / "train.jsonl")
    small = {**recipe, "base_model": str(tiny_checkpoint), "sequence_len": 256, "logging_steps": 1}
    small.update(micro_batch_size=1, gradient_accumulation_steps=1)
    runs = {}
    for name in ("whole", "resumed"):
        cfg = _config(bench, small, "inspo", tmp_path, steps=4, train_file=train_file, n_train_rows=8)
        cfg["output_dir"] = str(tmp_path / name)
        key = bench.fingerprint(cfg)
        if name == "resumed":
            assert bench.resume_point(tmp_path / name, key) is None
            shutil.copytree(tmp_path / "whole" / "checkpoint-2", tmp_path / name / "checkpoint-2")
            # a mark in the checkpoint's history: found at the end only if training resumed from it
            state_file = tmp_path / name / "checkpoint-2" / "trainer_state.json"
            state = json.loads(state_file.read_text())
            state["log_history"].append({"step": 2, "resumed_mark": 1.0})
            state_file.write_text(json.dumps(state))
        start = bench.resume_point(tmp_path / name, key)
        assert start == (tmp_path / name / "checkpoint-2" if name == "resumed" else None)
        cfg = {**bench.checkpointed(cfg, start, every=2), "save_total_limit": None}  # keep step 2
        bench.train_trl(cfg, tmp_path / f"{name}.log")
        runs[name] = cfg
    whole, resumed = (Path(runs[n]["output_dir"]) for n in ("whole", "resumed"))
    assert json.loads((resumed / "trainer_state.json").read_text())["global_step"] == 4

    def losses(out: Path) -> dict[int, float]:
        return {e["step"]: e["loss"] for e in bench.log_history(out) if "loss" in e}

    assert any("resumed_mark" in e for e in bench.log_history(resumed))
    assert not any("resumed_mark" in e for e in bench.log_history(whole))
    assert sorted(losses(whole)) == [1, 2, 3, 4] and losses(resumed) == losses(whole)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_an_answer_of_at_most_five_words_counts_as_a_fail_in_the_answered_pass_rate(bench):
    rng = np.random.default_rng(4)
    long_answer = "Rain falls, light bends in each drop and splits into colours."
    answers = ['"The Great Gatsby"', "one two three four five", "one two three four five six", long_answer]

    def run(seeds):
        out = {}
        for s in seeds:
            responses = [answers[i] for i in rng.integers(0, len(answers), size=10)]
            out[s] = {**_result(list(rng.random(10) < 0.7), [0.1] * 4), "responses": responses}
        return out

    results = {"dpo": run((42, 43)), "inspo": run((42, 43))}
    base = {"passes": [True] * 10, "responses": [long_answer] * 9 + ["Yes."]}
    summary = bench.study_summary(results, base, n_resamples=300)

    def cells(name, seeds=(42, 43)):  # computed here from the words, not with the bench's helper
        words = np.array([[len(t.split()) for t in results[name][s]["responses"]] for s in seeds])
        passes = np.array([results[name][s]["passes"] for s in seeds], dtype=float)
        return passes * (words > 5), (words <= 5) * 1.0

    answered, short = cells("inspo")
    entry = summary["inspo"]
    assert entry["pass_answered"]["mean"] == pytest.approx(answered.mean())
    assert entry["pass_answered"]["mean"] < entry["pass"]["mean"]  # some passing answers were short
    assert entry["short"]["mean"] == pytest.approx(short.mean())
    dpo_answered, dpo_short = cells("dpo")
    assert entry["pass_answered"]["vs_dpo"]["mean"] == pytest.approx((answered - dpo_answered).mean())
    assert entry["short"]["vs_dpo"]["mean"] == pytest.approx((short - dpo_short).mean())
    # the base model passes every prompt, but its one short answer counts as a fail
    assert entry["pass_answered"]["vs_base"]["mean"] == pytest.approx(answered.mean() - 0.9)
    table = bench.summary_markdown(summary, base).splitlines()
    header = table[0].split(" | ")
    base_row = table[2].split(" | ")
    assert base_row[header.index("pass rate, answers > 5 words")] == "90.0%"
    assert base_row[header.index("answers ≤ 5 words")] == "10.0%"
    inspo_row = next(line for line in table if line.startswith(f"| {bench.label('inspo')} ")).split(" | ")
    assert inspo_row[header.index("answers ≤ 5 words")] == f"{100 * short.mean():.1f}%"
    # results saved without their answers have neither metric, and nothing else changes
    bare = {name: {s: {k: v for k, v in r.items() if k != "responses"} for s, r in by.items()}
            for name, by in results.items()}  # fmt: skip
    plain = bench.study_summary(bare, {"passes": base["passes"]}, n_resamples=300)
    assert "pass_answered" not in plain["inspo"] and "short" not in plain["inspo"]
    assert plain["inspo"]["pass"]["mean"] == pytest.approx(entry["pass"]["mean"])
