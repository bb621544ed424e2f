"""The LLaMA-Factory YAML spelling of InSPO: ``stage: dpo`` + ``inspo:`` block, LF keys mapped or refused.

Framework-free (the config module reads mappings), so these run in every environment.
"""

from __future__ import annotations

import pytest

from inspo_plugin.llamafactory.config import REFUSED, ConfigError, split_config

BASE = {"stage": "dpo", "model_name_or_path": "m", "dataset": "d", "template": "llama3"}


def split(**extra):
    return split_config({**BASE, **extra}, where="cfg.yaml")


def test_the_block_switches_inspo_on_and_lf_keys_keep_their_meaning():
    args, options = split(
        inspo={"template": "concat", "uncond_weight": 0.5},
        pref_beta=0.25,
        pref_ftx=0.3,
        pref_loss="hinge",
    )
    assert "inspo" not in args and args["pref_beta"] == 0.25 and args["pref_loss"] == "hinge"
    assert (options.loss_type, options.beta, options.sft_weight) == ("hinge", 0.25, 0.3)
    assert (options.template, options.uncond_weight) == ("concat", 0.5)
    _, defaults = split(inspo=None)  # `inspo:` with nothing under it
    assert (defaults.loss_type, defaults.beta, defaults.simpo_gamma) == ("sigmoid", 0.1, 0.5)


@pytest.mark.parametrize(
    ("extra", "loss_type"),
    [
        ({"pref_loss": "ipo"}, "ipo"),
        ({"pref_loss": "orpo"}, "orpo"),
        ({"pref_loss": "simpo", "simpo_gamma": 1.5}, "simpo"),
        ({"pref_loss": "sigmoid", "dpo_label_smoothing": 0.2}, "robust"),
        ({"inspo": {"loss_type": "one_sided"}}, "one_sided"),
        ({"inspo": {"loss_type": "rdpo", "rdpo_alpha": 0.1}}, "rdpo"),
    ],
)
def test_every_loss_type_is_reachable(extra, loss_type):
    _, options = split(**{"inspo": {}, **extra})
    assert options.loss_type == loss_type
    if loss_type == "robust":
        assert options.label_smoothing == 0.2
    if loss_type == "simpo":
        assert options.simpo_gamma == 1.5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"pref_loss": "inspo", "inspo": {}}, "pref_loss: inspo is not how InSPO is switched on"),
        ({"pref_loss": "inspo"}, "add an `inspo:` block"),
        ({}, "no `inspo:` block"),
        ({"stage": "sft", "inspo": {}}, "stage: InSPO runs on LLaMA-Factory's DPO stage"),
        ({"inspo": {"beta": 0.2}}, "inspo.beta: set it with LLaMA-Factory's pref_beta"),
        ({"inspo": {"sft_weight": 0.2}}, "inspo.sft_weight: set it with LLaMA-Factory's pref_ftx"),
        (
            {"inspo": {"loss_typ": "ipo"}},
            "inspo.loss_typ: unknown option. Valid options: loss_type, template",
        ),
        ({"inspo": {"loss_type": "ipo"}}, "inspo.loss_type: ipo is LLaMA-Factory's pref_loss: ipo"),
        ({"inspo": {"loss_type": "robust"}}, "pref_loss: sigmoid with dpo_label_smoothing"),
        ({"inspo": {"loss_type": "one_sided"}, "pref_loss": "hinge"}, "both choose the objective"),
        ({"inspo": {"loss_type": "bogus"}}, "inspo.loss_type: 'bogus' is not one of"),
        ({"inspo": {"template": "nope"}}, "inspo.template: 'nope' is not one of revise, concat, custom"),
        ({"inspo": {"template": "custom"}}, "inspo.reflection_prompt: template custom needs"),
        ({"inspo": {"on_invalid_row": "drop"}}, "inspo.on_invalid_row: 'drop' is not one of error, skip"),
        ({"inspo": {"on_nonfinite": "skip"}}, "inspo.on_nonfinite: skip is not supported"),
        ({"inspo": {}, "pref_beta": 0}, "pref_beta: must be > 0, got 0"),
        ({"inspo": {}, "pref_ftx": -1}, "pref_ftx: must be >= 0"),
        ({"inspo": {}, "pref_loss": "kto_pair"}, "pref_loss: kto_pair is not an InSPO objective"),
        ({"inspo": {"reference": "conditional"}, "pref_loss": "simpo"}, "needs a reference model"),
        ({"inspo": [1, 2]}, "inspo: expected a mapping"),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_the_key(extra, message):
    with pytest.raises(ConfigError) as err:
        split(**extra)
    assert str(err.value).startswith("cfg.yaml: ") and message in str(err.value)


@pytest.mark.parametrize("key", sorted(REFUSED))
def test_lf_dpo_options_inspo_cannot_honour_are_refused(key):
    value = 0.5 if key in ("pref_bco_weight", "ld_alpha") else True
    with pytest.raises(ConfigError, match=rf"cfg.yaml: {key}: not supported with InSPO \("):
        split(inspo={}, **{key: value})
    split(inspo={}, **{key: False if value is True else 0.0})  # the default is fine


@pytest.mark.parametrize(
    ("env", "starts_torchrun"),
    [
        ({}, False),
        ({"FORCE_TORCHRUN": "1"}, True),
        # A worker of torchrun or `accelerate launch` (FSDP from an accelerate config) trains itself.
        ({"FORCE_TORCHRUN": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2"}, False),
    ],
)
def test_the_launcher_starts_torchrun_only_outside_a_launcher(monkeypatch, env, starts_torchrun):
    from inspo_plugin.llamafactory import launch

    for name in ("FORCE_TORCHRUN", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(launch, "_device_count", lambda: 0)
    assert launch._distributed() is starts_torchrun


@pytest.mark.parametrize(("world_size", "ends_without_finalizing"), [("2", True), ("1", False)])
def test_a_finished_worker_of_several_processes_ends_without_interpreter_finalization(
    monkeypatch, world_size, ends_without_finalizing
):
    from inspo_plugin.llamafactory import launch

    class Ended(Exception):
        pass

    def end(code):
        raise Ended(code)

    trained = []
    monkeypatch.setenv("WORLD_SIZE", world_size)
    monkeypatch.setattr(launch, "read_config", lambda path, overrides=(): {})
    monkeypatch.setattr(launch, "split_config", lambda config, where: ({}, None))
    monkeypatch.setattr(launch, "train", lambda path, overrides: trained.append(path))
    monkeypatch.setattr(launch, "exit_without_finalizing", end)
    if ends_without_finalizing:
        with pytest.raises(Ended) as ended:
            launch.main(["_worker", "cfg.yaml"])
        assert ended.value.args == (0,)
    else:
        assert launch.main(["_worker", "cfg.yaml"]) == 0
    assert trained == ["cfg.yaml"]


def test_exit_without_finalizing_runs_atexit_handlers_flushes_streams_and_skips_finalization(tmp_path):
    """What the worker's exit keeps (atexit handlers, buffered output, the exit code) and what it skips:
    the interpreter's finalization, where gloo's worker threads can abort the process (see the function)."""
    import subprocess
    import sys
    import textwrap

    marks = tmp_path / "marks.txt"
    script = textwrap.dedent(
        f"""
        import atexit, os, sys
        from inspo_plugin.llamafactory.launch import exit_without_finalizing

        def mark(text):
            with open({str(marks)!r}, "a") as f:
                f.write(text)

        class FinalizedAtShutdown:
            # os.write bound now: at finalization the module's globals and builtins may be gone.
            def __del__(self, write=os.write):
                write(2, b"finalized")

        kept = FinalizedAtShutdown()
        atexit.register(mark, "atexit")
        sys.stdout.write("buffered, no newline")
        ENDING
        """
    )
    for ending in ("exit_without_finalizing(3)", "sys.exit(3)"):
        ran = script.replace("ENDING", ending)
        proc = subprocess.run([sys.executable, "-c", ran], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 3, proc.stderr
        assert proc.stdout == "buffered, no newline"
        assert marks.read_text() == "atexit"
        marks.unlink()
        # The module-level object is finalized by a normal exit (the control), never by this one.
        assert ("finalized" in proc.stderr) is (ending == "sys.exit(3)"), proc.stderr
