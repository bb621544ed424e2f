"""Bootstrap statistics for evaluation results (numpy only).

- :func:`bootstrap_ci`: percentile bootstrap confidence interval of a mean.
- :func:`win_rate`: paired win rate of A over B (wins, losses, ties) with a paired bootstrap CI.
- :func:`paired_difference`: mean of the paired differences A - B (for pass/fail scores: the
  pass-rate gain) with a paired bootstrap CI.
- :func:`paired_seed_difference`: the same over several training seeds: scores indexed by
  (seed, item), paired by both, with a two-way bootstrap CI (items and seeds resampled).

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

__all__ = ["bootstrap_ci", "paired_difference", "paired_seed_difference", "win_rate"]


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


def paired_seed_difference(
    scores_a: Sequence[Sequence[float]] | np.ndarray,
    scores_b: Sequence[Sequence[float]] | Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Mean paired difference of two runs trained with the same seeds, with a two-way bootstrap CI.

    ``scores_a[s][i]`` is run A's score on item ``i`` (a held-out prompt) when trained with seed
    ``s``; ``scores_b`` the same for run B with the same seeds in the same order, or a single row
    ``scores_b[i]`` (a model that was not trained, such as the base model: the same for every seed).
    With ``D[s, i] = A[s, i] - B[s, i]`` over ``S`` seeds and ``I`` items, the estimate is

        mean = (1 / (S · I)) · Σ_s Σ_i D[s, i].

    Each bootstrap resample draws ``I`` items and, independently, ``S`` seeds with replacement and
    computes the same mean over the drawn (seed, item) cells, ``(1 / (S · I)) · Σ_s Σ_i
    c_s · k_i · D[s, i]`` with ``c`` and ``k`` the seeds' and items' draw counts; so A and B are
    always compared on the same prompts and seeds. The interval is the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` percentiles of the resampled means (``default_rng(seed)``); ``se`` is
    their standard deviation. With one seed this is :func:`paired_difference`'s item bootstrap.

    Resampling seeds keeps the seed-to-seed variation of the difference, which an item-only
    bootstrap would ignore; as every two-way bootstrap it also counts the per-cell noise in both
    draws, so the interval errs on the wide side (about 98% coverage at a nominal 95% for pass/fail
    scores of 3 seeds x 132 prompts in ``tests/test_stats.py``'s simulation).

    Returns:
        ``{"mean", "ci_low", "ci_high", "se", "confidence", "n_seeds", "n_items", "mean_a", "mean_b"}``.

    Raises:
        ValueError: shapes that do not pair up, no seeds or no items, a non-finite score,
        ``confidence`` outside (0, 1), or ``n_resamples`` < 1.
    """
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"scores_a must be a (seeds, items) table, got shape {a.shape}")
    if b.ndim == 1:
        b = np.broadcast_to(b, a.shape)
    if b.shape != a.shape:
        raise ValueError(f"scores_b has shape {b.shape}; it must pair with scores_a's {a.shape}")
    if a.size == 0:
        raise ValueError("paired_seed_difference needs at least one seed and one item")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired_seed_difference got a NaN or infinite score")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError("n_resamples must be positive")
    diff = a - b
    n_seeds, n_items = diff.shape
    rng = np.random.default_rng(seed)
    seed_counts = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_resamples)
    item_counts = rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_resamples)
    means = np.einsum("rs,si,ri->r", seed_counts, diff, item_counts) / (n_seeds * n_items)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    mean = float(diff.mean())
    if np.all(diff == diff.flat[0]):  # no variation: a zero-width interval at the value
        low = high = mean
    return {
        "mean": mean,
        "ci_low": float(low),
        "ci_high": float(high),
        "se": float(means.std(ddof=1)) if n_resamples > 1 else 0.0,
        "confidence": confidence,
        "n_seeds": int(n_seeds),
        "n_items": int(n_items),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
    }
