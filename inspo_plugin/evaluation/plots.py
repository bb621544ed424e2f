"""Training-curve plots from Hugging Face ``trainer_state.json`` files.

:func:`plot_training_curves` draws, for one or more runs, the conditional margin
``inspo/margin_cond`` (the InSPO training signal: log-ratio margin with the alternative shown)
against the unconditional margin ``inspo/margin_uncond`` (the deployed policy, prompted with x
alone) over the training steps, and the training ``loss`` in a second panel.

:func:`plot_run_comparison` draws several runs, each possibly trained with several seeds, on shared
panels (one panel per logged metric, by default the loss and both margins): per run one line, the
exponential moving average (:func:`ema`) of the seed-averaged value at each step, over that value's
per-step points drawn faint.

Rendering uses matplotlib's Agg canvas directly, so no display is needed and the global pyplot
backend is left alone.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "COMPARISON_METRICS",
    "DEFAULT_METRICS",
    "comparison_figure",
    "ema",
    "load_log_history",
    "plot_run_comparison",
    "plot_training_curves",
]

DEFAULT_METRICS = ("inspo/margin_cond", "inspo/margin_uncond")
COMPARISON_METRICS = ("loss", "inspo/margin_uncond", "inspo/margin_cond")
_PANEL_LABELS = {
    "loss": "training loss",
    "inspo/margin_uncond": "deployed log-ratio margin",
    "inspo/margin_cond": "reflective log-ratio margin",
}

RunSource = str | Path | Sequence[Mapping[str, Any]]


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The ``checkpoint-N`` folder of ``run_dir`` with the largest step N that holds a
    ``trainer_state.json`` (one cut off while saving has none), or ``None``."""
    checkpoints = [
        p.parent
        for p in run_dir.glob("checkpoint-*/trainer_state.json")
        if p.parent.name.split("-")[-1].isdigit()
    ]
    return max(checkpoints, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _find_state_file(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        direct = path / "trainer_state.json"
        if direct.is_file():
            return direct
        checkpoint = latest_checkpoint(path)
        if checkpoint is not None:
            return checkpoint / "trainer_state.json"
        raise FileNotFoundError(f"no trainer_state.json in {path} or its checkpoint-* folders")
    raise FileNotFoundError(f"{path} does not exist")


def load_log_history(source: RunSource) -> list[dict[str, Any]]:
    """The ``log_history`` list of a run.

    ``source`` is a ``trainer_state.json`` path, a run directory (its ``trainer_state.json``, or
    that of its latest ``checkpoint-*`` folder), or an already loaded ``log_history`` list.
    """
    if isinstance(source, str | Path):
        state_file = _find_state_file(Path(source))
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{state_file} is not valid JSON: {error}") from error
        history = state.get("log_history") if isinstance(state, dict) else None
        if not isinstance(history, list):
            raise ValueError(f"{state_file} has no 'log_history' list")
        return [entry for entry in history if isinstance(entry, dict)]
    return [dict(entry) for entry in source]


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for i, entry in enumerate(history):
        value = entry.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            steps.append(float(entry.get("step", i)))
            values.append(float(value))
    return steps, values


def _normalise_runs(
    runs: RunSource | Sequence[RunSource] | Mapping[str, RunSource],
) -> list[tuple[str, RunSource]]:
    if isinstance(runs, Mapping):
        return [(str(label), source) for label, source in runs.items()]
    if isinstance(runs, str | Path):
        return [(_label(runs), runs)]
    items: list[Any] = list(runs)
    if items and all(isinstance(item, Mapping) for item in items):
        return [("run", items)]  # one log_history list
    return [
        (_label(item) if isinstance(item, str | Path) else f"run {i + 1}", item)
        for i, item in enumerate(items)
    ]


def _label(path: str | Path) -> str:
    p = Path(path)
    if p.name == "trainer_state.json":
        p = p.parent
    if p.name.startswith("checkpoint-"):
        p = p.parent
    return p.name or str(path)


def plot_training_curves(
    runs: RunSource | Sequence[RunSource] | Mapping[str, RunSource],
    out_png: str | Path,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    loss_key: str = "loss",
    title: str | None = None,
) -> Path:
    """Plot the InSPO margins (and the loss) of one or more runs over training steps.

    Args:
        runs: one run or several: ``trainer_state.json`` paths, run directories, ``log_history``
            lists, or a mapping from a legend label to any of these.
        out_png: where to write the PNG (parent folders are created).
        metrics: the margin keys drawn in the first panel (solid line for the first, dashed for
            the next ones).
        loss_key: the key drawn in the second panel; the panel is left out when no run logs it.
        title: figure title.

    Returns:
        ``out_png`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: a run logs none of ``metrics`` (the message lists the keys it does log).
        FileNotFoundError: a path has no ``trainer_state.json``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    loaded = [(label, load_log_history(source)) for label, source in _normalise_runs(runs)]
    if not loaded:
        raise ValueError("plot_training_curves needs at least one run")
    for label, history in loaded:
        present = [key for key in metrics if _series(history, key)[0]]
        if not present:
            logged = sorted({k for entry in history for k in entry})
            raise ValueError(
                f"run {label!r} logs none of {list(metrics)} in its log_history (keys found: {logged}). "
                "Was it trained with the InSPO trainer, and with logging_steps small enough to log at least once?"
            )
        missing = [key for key in metrics if key not in present]
        if missing:
            warnings.warn(f"run {label!r} does not log {missing}; plotting {present} only", stacklevel=2)

    has_loss = any(_series(history, loss_key)[0] for _, history in loaded)
    if not has_loss:
        warnings.warn(f"no run logs {loss_key!r}; the loss panel is left out", stacklevel=2)
    n_panels = 2 if has_loss else 1
    fig = Figure(figsize=(7.0, 3.6 * n_panels), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    styles = ["-", "--", ":", "-."]
    colours = [f"C{i}" for i in range(10)]
    for r, (label, history) in enumerate(loaded):
        colour = colours[r % len(colours)]
        for m, key in enumerate(metrics):
            steps, values = _series(history, key)
            if steps:
                short = key.split("/")[-1]
                name = f"{label}: {short}" if len(loaded) > 1 else short
                axes[0].plot(steps, values, styles[m % len(styles)], color=colour, marker=".", label=name)
        if has_loss:
            steps, values = _series(history, loss_key)
            if steps:
                axes[1].plot(steps, values, "-", color=colour, marker=".", label=label)
    axes[0].axhline(0.0, color="grey", linewidth=0.8)
    axes[0].set_ylabel("log-ratio margin (chosen − rejected)")
    axes[0].legend(fontsize="small")
    axes[0].grid(alpha=0.3)
    if has_loss:
        axes[1].set_ylabel(loss_key)
        axes[1].grid(alpha=0.3)
        if len(loaded) > 1:
            axes[1].legend(fontsize="small")
    axes[-1].set_xlabel("step")
    fig.suptitle(title or "InSPO margins: conditional (training signal) vs unconditional (deployed)")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def ema(values: Sequence[float], weight: float = 0.8) -> list[float]:
    """Bias-corrected exponential moving average (TensorBoard's smoothing).

    ``s_t = weight · s_{t-1} + (1 - weight) · x_t`` from ``s_0 = 0``, reported as
    ``s_t / (1 - weight^t)``: the weighted mean ``Σ_k weight^k x_{t-k} / Σ_k weight^k`` of the
    values so far, so the first point is ``x_1`` itself. ``weight`` 0 returns the values unchanged.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"ema weight must be in [0, 1), got {weight}")
    out, state, norm = [], 0.0, 0.0
    for value in values:
        state = weight * state + (1.0 - weight) * float(value)
        norm = weight * norm + (1.0 - weight)
        out.append(state / norm)
    return out


def _seed_mean(histories: Sequence[list[dict[str, Any]]], key: str) -> tuple[list[float], list[float]]:
    """Per step, the mean over the seeds that log ``key`` at that step."""
    by_step: dict[float, list[float]] = {}
    for history in histories:
        for step, value in zip(*_series(history, key), strict=True):
            by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    return steps, [sum(by_step[s]) / len(by_step[s]) for s in steps]


def comparison_figure(
    runs: Mapping[str, Sequence[RunSource]],
    *,
    metrics: Sequence[str] = COMPARISON_METRICS,
    smoothing: float = 0.8,
    title: str | None = None,
) -> Any:
    """The matplotlib ``Figure`` of :func:`plot_run_comparison` (see there), not saved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not runs:
        raise ValueError("plot_run_comparison needs at least one run")
    loaded: dict[str, list[list[dict[str, Any]]]] = {}
    for label, sources in runs.items():
        if isinstance(sources, str | Path) or not sources:
            raise ValueError(f"run {label!r}: give a list of trainer states (one per seed), got {sources!r}")
        loaded[label] = [load_log_history(source) for source in sources]
    panels = [key for key in metrics if any(_series(h, key)[0] for hs in loaded.values() for h in hs)]
    if not panels:
        logged = sorted({k for hs in loaded.values() for h in hs for e in h for k in e})
        raise ValueError(f"no run logs any of {list(metrics)} (keys found: {logged})")
    fig = Figure(figsize=(7.5, 3.2 * len(panels)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, panels, strict=True):
        for r, (label, histories) in enumerate(loaded.items()):
            steps, values = _seed_mean(histories, key)
            if not steps:
                continue
            colour = f"C{r % 10}"
            seeds = sum(1 for h in histories if _series(h, key)[0])
            ax.plot(steps, values, ".", color=colour, alpha=0.25, markersize=4, label="_nolegend_")
            name = label if seeds == 1 else f"{label} (mean of {seeds} seeds)"
            ax.plot(steps, ema(values, smoothing), "-", color=colour, linewidth=1.6, label=name)
        if key.startswith("inspo/margin"):
            ax.axhline(0.0, color="grey", linewidth=0.8, label="_nolegend_")
        ax.set_ylabel(_PANEL_LABELS.get(key, key))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    axes[-1].set_xlabel("step")
    fig.suptitle(title or f"Training curves (lines: EMA {smoothing}; points: per step, mean over seeds)")
    return fig


def plot_run_comparison(
    runs: Mapping[str, Sequence[RunSource]],
    out_png: str | Path,
    *,
    metrics: Sequence[str] = COMPARISON_METRICS,
    smoothing: float = 0.8,
    title: str | None = None,
) -> Path:
    """Training curves of several runs, each trained with one or more seeds, on shared panels.

    Args:
        runs: legend label → that run's trainer states, one per seed (``trainer_state.json`` paths,
            run directories or ``log_history`` lists).
        out_png: where to write the PNG (parent folders are created).
        metrics: one panel per key that at least one run logs (others are left out); a run that
            does not log a key (DPO has no reflective margin) has no line in that panel.
        smoothing: the :func:`ema` weight of the lines; the faint points are the unsmoothed
            per-step means over seeds.
        title: figure title.

    Returns:
        ``out_png`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: no runs, a run without states, or no run logs any of ``metrics``.
        FileNotFoundError: a path has no ``trainer_state.json``.
    """
    fig = comparison_figure(runs, metrics=metrics, smoothing=smoothing, title=title)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out
