"""InSPO objectives: the DPO-family losses, cross-conditioned on the alternative response.

Paper: Li, Lan, Qi, "InSPO: Unlocking Intrinsic Self-Reflection for LLM Preference Optimization",
https://arxiv.org/abs/2512.23126

This module imports torch only. Every function takes per-pair **summed** response log-probs
(end-of-turn token included), each a tensor of shape ``[B]``, and returns per-pair losses ``[B]``.

Notation: x prompt, y_w chosen, y_l rejected, π_θ policy, π_ref reference, σ the logistic function.
The policy scores each response after seeing the other one:

    Δ_w = log π_θ(y_w | x, y_l) − log π_ref(y_w | x)
    Δ_l = log π_θ(y_l | x, y_w) − log π_ref(y_l | x)

Each base objective is written once against a :class:`ScoredPair` (the four numbers one scoring of
a pair yields); :func:`inspo_loss` builds the conditional pair (the InSPO terms) and, for the
optional ``uncond_weight`` term, the unconditional pair (standard DPO terms), and adds the extras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from inspo_plugin.options import InSPOOptions

REFERENCE_MODES: tuple[str, ...] = ("unconditional", "conditional")
"""``unconditional``: π_ref(y|x), as in the paper; ``conditional``: π_ref(y|x,y'), an ablation."""


@dataclass(frozen=True)
class PolicyLogps:
    """Policy log-probs of one batch of pairs, each ``[B]``.

    ``chosen``/``rejected`` are log π_θ(y|x) (segment 1 of the reflective sequences, identical to
    standard DPO); ``chosen_cond``/``rejected_cond`` are log π_θ(y_w|x,y_l) and log π_θ(y_l|x,y_w).
    """

    chosen: Tensor
    rejected: Tensor
    chosen_cond: Tensor
    rejected_cond: Tensor


@dataclass(frozen=True)
class ReferenceLogps:
    """Reference log-probs, each ``[B]``: log π_ref(y|x), and optionally log π_ref(y|x,y')."""

    chosen: Tensor
    rejected: Tensor
    chosen_cond: Tensor | None = None
    rejected_cond: Tensor | None = None


@dataclass(frozen=True)
class ScoredPair:
    """One scoring of a batch of pairs, each tensor ``[B]``.

    ``chosen``/``rejected`` are policy log-probs (conditional or not), ``ref_*`` the matching
    reference log-probs (``None`` for reference-free objectives), ``*_len`` response token counts.
    """

    chosen: Tensor
    rejected: Tensor
    ref_chosen: Tensor | None
    ref_rejected: Tensor | None
    chosen_len: Tensor
    rejected_len: Tensor

    def margin(self) -> Tensor:
        """Δ_w − Δ_l (log-prob units); without a reference, log π(y_w) − log π(y_l)."""
        if self.ref_chosen is None or self.ref_rejected is None:
            return self.chosen - self.rejected
        return (self.chosen - self.ref_chosen) - (self.rejected - self.ref_rejected)


# --- base objectives: one short function each ---------------------------------------------------


def sigmoid_loss(p: ScoredPair, c: InSPOOptions) -> Tensor:
    """InSPO-DPO:  −log σ(β (Δ_w − Δ_l))."""
    return -F.logsigmoid(c.beta * p.margin())


def one_sided_loss(p: ScoredPair, c: InSPOOptions) -> Tensor:
    """One-sided ablation ("formula 22"):  −log σ(−β Δ_l), pushes the rejected response down only."""
    assert p.ref_rejected is not None
    return -F.logsigmoid(-c.beta * (p.rejected - p.ref_rejected))


def ipo_loss(p: ScoredPair, c: InSPOOptions) -> Tensor:
    """IPO (Azar et al. 2023):  (Δ_w − Δ_l − 1/(2τ))²,  τ = ``ipo_tau``, or β when unset (TRL's convention)."""
    tau = c.ipo_tau if c.ipo_tau is not None else c.beta
    return (p.margin() - 1.0 / (2.0 * tau)) ** 2


def hinge_loss(p: ScoredPair, c: InSPOOptions) -> Tensor:
    """SLiC hinge:  max(0, 1 − β (Δ_w − Δ_l))."""
    return torch.relu(1.0 - c.beta * p.margin())


def robust_loss(p: ScoredPair, c: InSPOOptions) -> Tensor:
    """Label-smoothed (conservative) DPO, ε = ``label_smoothing``:

    −(1−ε) log σ(β m) − ε log σ(−β m),  m = Δ_w − Δ_l.

    This assumes each preference label is flipped with probability ε; with ε = 0 it equals
    ``sigmoid``. (TRL's ``robust`` additionally rescales by 1/(1−2ε) and flips the sign of the
    ε term; this form keeps a minimum at a finite margin instead.)
    """
    m = c.beta * p.margin()
    eps = c.label_smoothing
    return -(1.0 - eps) * F.logsigmoid(m) - eps * F.logsigmoid(-m)


def rdpo_loss(p: ScoredPair, c: InSPOOptions) -> Tensor:
    """R-DPO (Park et al. 2024), length-regularised:  −log σ(β (Δ_w − Δ_l) + α (|y_w| − |y_l|)).

    The α term credits length differences to length, so the log-ratio need not absorb them.
    """
    length_term = c.rdpo_alpha * (p.chosen_len - p.rejected_len).to(p.chosen.dtype)
    return -F.logsigmoid(c.beta * p.margin() + length_term)


def simpo_loss(p: ScoredPair, c: InSPOOptions) -> Tensor:
    """SimPO (Meng et al. 2024), reference-free, length-normalised:

    −log σ( β/|y_w| · log π_θ(y_w|·) − β/|y_l| · log π_θ(y_l|·) − γ ),  γ = ``simpo_gamma``.
    """
    reward_w = c.beta * p.chosen / p.chosen_len.clamp(min=1)
    reward_l = c.beta * p.rejected / p.rejected_len.clamp(min=1)
    return -F.logsigmoid(reward_w - reward_l - c.simpo_gamma)


def orpo_odds_ratio_loss(p: ScoredPair, c: InSPOOptions) -> Tensor:
    """ORPO's odds-ratio term (Hong et al. 2024):  −λ log σ(logodds(ȳ_w) − logodds(ȳ_l)),

    with ȳ the mean token log-prob, logodds(a) = a − log(1 − eᵃ), and λ = ``orpo_lambda``, or β when
    unset (TRL's and Axolotl's ORPO take λ from β). The NLL part of ORPO,
    −(1/|y_w|) log π_θ(y_w|x), is always on the unconditional (deployed) chosen log-prob and is
    added once by :func:`inspo_loss`, so the ``uncond_weight`` term does not count it twice.
    """
    mean_w = p.chosen / p.chosen_len.clamp(min=1)
    mean_l = p.rejected / p.rejected_len.clamp(min=1)
    lam = c.orpo_lambda if c.orpo_lambda is not None else c.beta
    return -lam * F.logsigmoid(_log_odds(mean_w) - _log_odds(mean_l))


def _log_odds(mean_logp: Tensor) -> Tensor:
    # log(1 - e^a) = log(-expm1(a)); clamp a < 0 so a response of probability 1 stays finite.
    a = mean_logp.clamp(max=-1e-6)
    return a - torch.log(-torch.expm1(a))


LossFunction = Callable[[ScoredPair, "InSPOOptions"], Tensor]


@dataclass(frozen=True)
class Objective:
    """One entry of the registry: the base loss, and what else it needs or adds."""

    loss: LossFunction
    needs_reference: bool = True
    """Whether the loss reads reference log-probs (SimPO and ORPO do not)."""
    adds_chosen_nll: bool = False
    """Whether the objective includes −(1/|y_w|) log π_θ(y_w|x), added once on the deployed policy."""


OBJECTIVES: dict[str, Objective] = {
    "sigmoid": Objective(sigmoid_loss),
    "one_sided": Objective(one_sided_loss),
    "ipo": Objective(ipo_loss),
    "hinge": Objective(hinge_loss),
    "robust": Objective(robust_loss),
    "rdpo": Objective(rdpo_loss),
    "simpo": Objective(simpo_loss, needs_reference=False),
    "orpo": Objective(orpo_odds_ratio_loss, needs_reference=False, adds_chosen_nll=True),
}
"""Loss type name → objective. Adding a loss type is one entry here (and its tests)."""


# --- the InSPO objective -------------------------------------------------------------------------


@dataclass
class InSPOLossOutput:
    """Per-pair losses ``[B]``, their parts, and per-pair metric values ``[B]`` (detached).

    Metrics stay per pair so a distributed trainer can gather them before averaging.
    """

    losses: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)
    metrics: dict[str, Tensor] = field(default_factory=dict)


def inspo_loss(
    policy: PolicyLogps,
    reference: ReferenceLogps | None,
    chosen_len: Tensor,
    rejected_len: Tensor,
    config: InSPOOptions,
) -> InSPOLossOutput:
    """Per-pair InSPO loss.

        L = base(cond pair) + λ_u · base(uncond pair) + λ_sft · NLL(y_w|x)/|y_w| [+ ORPO NLL]

    - cond pair: policy log π_θ(y|x,y'), reference log π_ref(y|x) (or log π_ref(y|x,y') with
      ``reference="conditional"``, an ablation matching the official code's trainer);
    - uncond pair: policy log π_θ(y|x), reference log π_ref(y|x) — standard DPO, on the policy
      that is deployed; weight ``uncond_weight`` (off by default).

    Args:
        policy: policy log-probs, each ``[B]``.
        reference: reference log-probs, each ``[B]``; may be ``None`` for SimPO and ORPO.
        chosen_len, rejected_len: response token counts ``[B]`` (end-of-turn included).
        config: loss type and hyper-parameters.
    """
    objective = OBJECTIVES[config.loss_type]
    if objective.needs_reference and reference is None:
        raise ValueError(f"loss_type {config.loss_type!r} needs reference log-probs")
    base = objective.loss

    ref_w = ref_l = ref_w_cond = ref_l_cond = None
    if reference is not None:
        ref_w, ref_l = reference.chosen, reference.rejected
        ref_w_cond, ref_l_cond = ref_w, ref_l
        if config.reference == "conditional":
            if reference.chosen_cond is None or reference.rejected_cond is None:
                raise ValueError("reference='conditional' needs conditional reference log-probs")
            ref_w_cond, ref_l_cond = reference.chosen_cond, reference.rejected_cond

    cond = ScoredPair(
        policy.chosen_cond, policy.rejected_cond, ref_w_cond, ref_l_cond, chosen_len, rejected_len
    )
    uncond = ScoredPair(policy.chosen, policy.rejected, ref_w, ref_l, chosen_len, rejected_len)

    parts: dict[str, Tensor] = {"cond": base(cond, config)}
    if config.uncond_weight > 0:
        parts["uncond"] = config.uncond_weight * base(uncond, config)
    nll_chosen = -policy.chosen / chosen_len.clamp(min=1)
    if objective.adds_chosen_nll:
        parts["orpo_nll"] = nll_chosen
    if config.sft_weight > 0:
        parts["sft"] = config.sft_weight * nll_chosen
    losses = torch.stack(list(parts.values())).sum(dim=0)

    with torch.no_grad():
        margin_cond = cond.margin()
        margin_uncond = uncond.margin()
        metrics = {
            "inspo/margin_cond": margin_cond,
            "inspo/acc_cond": (margin_cond > 0).float(),
            "inspo/margin_uncond": margin_uncond,
            "inspo/acc_uncond": (margin_uncond > 0).float(),
            "inspo/context_chosen": policy.chosen_cond - policy.chosen,
            "inspo/context_rejected": policy.rejected_cond - policy.rejected,
            "inspo/logps_chosen": policy.chosen,
            "inspo/logps_rejected": policy.rejected,
            "inspo/logps_chosen_cond": policy.chosen_cond,
            "inspo/logps_rejected_cond": policy.rejected_cond,
        }
        for name, value in parts.items():
            metrics[f"inspo/loss_{name}"] = value
        metrics = {k: v.detach() for k, v in metrics.items()}
    return InSPOLossOutput(losses=losses, parts=parts, metrics=metrics)
