"""Bootstrap statistics for evaluation results (numpy only).

- :func:`bootstrap_ci`: percentile bootstrap confidence interval of a mean.
- :func:`win_rate`: paired win rate of A over B (wins, losses, ties) with a paired bootstrap CI.
- :func:`paired_difference`: mean of the paired differences A - B (for pass/fail scores: the
  pass-rate gain) with a paired bootstrap CI.

Win-rate convention: for each item, A *wins* when its score is higher than B's (for pass/fail
scores: A passes and B fails), *loses* when lower, and *ties* otherwise (both pass or both fail).
Ties count half: ``win_rate = (wins + 0.5 * ties) / n``, so 0.5 means "no difference". The
confidence interval is a paired bootstrap: items are resampled, each keeping its A/B outcome.

Every interval is reproducible: the resamples come from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["bootstrap_ci", "paired_difference", "win_rate"]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    ``n_resamples`` resamples of ``len(values)`` items drawn with replacement (numpy's
    ``default_rng(seed)``, so the interval is reproducible); the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means.
    A single value, or values that are all equal, give a zero-width interval at that value.

    Raises:
        ValueError: no values, a non-finite value, or ``confidence`` outside (0, 1).
    """
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not np.all(np.isfinite(data)):
        raise ValueError("bootstrap_ci got a NaN or infinite value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError("n_resamples must be positive")
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    n = data.size
    means = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, 2_000_000 // n)  # bound the index matrix to ~16 MB
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = data[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _as_scores(name: str, scores: Sequence[bool | float]) -> np.ndarray:
    arr = np.asarray([float(s) for s in scores], dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains a NaN or infinite score")
    return arr


def win_rate(
    scores_a: Sequence[bool | float],
    scores_b: Sequence[bool | float],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired win rate of A over B, with a paired bootstrap CI.

    Item ``i`` is a win for A when ``scores_a[i] > scores_b[i]`` (with pass/fail scores: A passes
    and B fails), a loss when lower, a tie when equal; ``win_rate = (wins + 0.5 * ties) / n``.

    Returns:
        ``{"n", "wins", "losses", "ties", "win_rate", "ci_low", "ci_high", "confidence"}``.

    Raises:
        ValueError: the two lists differ in length or are empty.
    """
    a, b = _as_scores("scores_a", scores_a), _as_scores("scores_b", scores_b)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need equal lengths, got {a.size} and {b.size}")
    if a.size == 0:
        raise ValueError("win_rate needs at least one pair")
    outcome = np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))
    low, high = bootstrap_ci(outcome, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return {
        "n": int(a.size),
        "wins": int(np.sum(a > b)),
        "losses": int(np.sum(a < b)),
        "ties": int(np.sum(a == b)),
        "win_rate": float(outcome.mean()),
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
    }


def paired_difference(
    scores_a: Sequence[bool | float],
    scores_b: Sequence[bool | float],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Mean of ``scores_a - scores_b`` (for pass/fail: the pass-rate gain) with a paired bootstrap CI."""
    a, b = _as_scores("scores_a", scores_a), _as_scores("scores_b", scores_b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired scores need equal, non-zero lengths, got {a.size} and {b.size}")
    diff = a - b
    low, high = bootstrap_ci(diff, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return {
        "n": int(a.size),
        "mean": float(diff.mean()),
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
    }
