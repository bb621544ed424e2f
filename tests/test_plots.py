"""Tests for the training-curve plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from inspo_plugin.evaluation.plots import (
    comparison_figure,
    ema,
    load_log_history,
    plot_run_comparison,
    plot_training_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _history(steps: int = 6, with_uncond: bool = True, with_loss: bool = True) -> list[dict]:
    history = []
    for step in range(1, steps + 1):
        entry: dict = {"step": step, "epoch": step / steps, "learning_rate": 1e-5}
        entry["inspo/margin_cond"] = 0.3 * step
        if with_uncond:
            entry["inspo/margin_uncond"] = 0.1 * step
        if with_loss:
            entry["loss"] = math.log(2) - 0.05 * step
        history.append(entry)
    history.append({"step": steps, "train_runtime": 12.0, "train_loss": 0.5})  # the usual final summary
    return history


def _write_state(path: Path, history: list[dict]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    state = path / "trainer_state.json"
    state.write_text(json.dumps({"global_step": len(history), "log_history": history}))
    return state


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_png_from_one_trainer_state(tmp_path: Path) -> None:
    state = _write_state(tmp_path / "run", _history())
    out = plot_training_curves(state, tmp_path / "plots" / "curves.png")
    assert out == tmp_path / "plots" / "curves.png"
    width, height = _png_size(out)
    assert width > 300 and height > 500  # two panels stacked
    assert out.stat().st_size > 5_000


def test_several_runs_directories_and_checkpoints(tmp_path: Path) -> None:
    _write_state(tmp_path / "inspo", _history())
    _write_state(tmp_path / "dpo" / "checkpoint-2", _history(2))
    _write_state(tmp_path / "dpo" / "checkpoint-10", _history(10))
    assert len(load_log_history(tmp_path / "dpo")) == 11  # the latest checkpoint, by step number
    out = plot_training_curves([tmp_path / "inspo", tmp_path / "dpo"], tmp_path / "both.png", title="cmp")
    assert _png_size(out)[0] > 300
    labelled = plot_training_curves({"a": _history(), "b": _history(3)}, tmp_path / "dict.png")
    assert labelled.is_file()


def test_log_history_list_and_missing_loss(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="loss panel is left out"):
        out = plot_training_curves(_history(with_loss=False), tmp_path / "noloss.png")
    _width, height = _png_size(out)
    assert height < 500  # one panel only


def test_missing_one_margin_warns(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="does not log"):
        plot_training_curves(_history(with_uncond=False), tmp_path / "cond.png")


def test_missing_metrics_raise_a_clear_error(tmp_path: Path) -> None:
    history = [{"step": 1, "loss": 0.7, "rewards/margins": 0.1}, {"step": 2, "loss": 0.6}]
    state = _write_state(tmp_path / "dpo-run", history)
    with pytest.raises(ValueError, match=r"run 'dpo-run' logs none of .*inspo/margin_cond.*rewards/margins"):
        plot_training_curves(state, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        plot_training_curves(tmp_path / "nowhere", tmp_path / "x.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no trainer_state\.json"):
        plot_training_curves(tmp_path / "empty", tmp_path / "x.png")
    bad = tmp_path / "bad" / "trainer_state.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"global_step": 3}))
    with pytest.raises(ValueError, match="no 'log_history'"):
        plot_training_curves(bad, tmp_path / "x.png")


def test_ema_is_the_bias_corrected_weighted_mean() -> None:
    pandas = pytest.importorskip("pandas")
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    expected = pandas.Series(values).ewm(alpha=1 - 0.7, adjust=True).mean().tolist()
    assert ema(values, 0.7) == pytest.approx(expected)
    assert ema(values, 0.0) == values and ema(values, 0.9)[0] == 3.0
    with pytest.raises(ValueError, match="weight"):
        ema(values, 1.0)


def test_run_comparison_one_line_per_run_over_seeds(tmp_path: Path) -> None:
    dpo = [_write_state(tmp_path / "dpo" / f"seed{s}", _history(6, with_uncond=False)) for s in (1, 2)]
    inspo = [_write_state(tmp_path / "inspo" / "seed1", _history(8))]
    runs = {"dpo": dpo, "inspo": inspo, "inspo-list": [_history(4)]}
    fig = comparison_figure(runs, smoothing=0.5)
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "training loss",
        "deployed log-ratio margin",
        "reflective log-ratio margin",
    ]
    loss_ax = fig.axes[0]
    labelled = [line for line in loss_ax.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in labelled] == ["dpo (mean of 2 seeds)", "inspo", "inspo-list"]
    faint = [line for line in loss_ax.get_lines() if line.get_label() == "_nolegend_"]
    assert len(faint) == 3 and all(line.get_alpha() < 0.5 for line in faint)
    # the solid line is the EMA of the per-step points
    assert list(labelled[1].get_ydata()) == pytest.approx(ema(list(faint[1].get_ydata()), 0.5))
    # dpo does not log the margins: no dpo line there
    margin_labels = [
        line.get_label() for line in fig.axes[1].get_lines() if not line.get_label().startswith("_")
    ]
    assert margin_labels == ["inspo", "inspo-list"]
    out = plot_run_comparison(runs, tmp_path / "cmp" / "curves.png")
    assert _png_size(out)[1] > 700  # three panels
    with pytest.raises(ValueError, match="list of trainer states"):
        comparison_figure({"dpo": tmp_path / "dpo"})
    with pytest.raises(ValueError, match="no run logs"):
        comparison_figure({"x": [[{"step": 1, "other": 1.0}]]})
