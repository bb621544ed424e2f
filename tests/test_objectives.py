"""Every objective against an independent scalar computation written from METHOD's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from inspo_plugin.core.objectives import OBJECTIVES, PolicyLogps, ReferenceLogps, inspo_loss
from inspo_plugin.options import InSPOOptions


def _log_sigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


def _naive(
    loss_type: str,
    c: InSPOOptions,
    pw: float,
    pl: float,
    rw: float,
    rl: float,
    lw: int,
    ll: int,
    pw_u: float,
) -> float:
    """One pair, plain Python. pw/pl: policy log-probs of the scored pair; rw/rl: reference; pw_u: log π(y_w|x)."""
    d_w, d_l = pw - rw, pl - rl
    m = d_w - d_l
    b = c.beta
    if loss_type == "sigmoid":
        return -_log_sigmoid(b * m)
    if loss_type == "one_sided":
        return -_log_sigmoid(-b * d_l)
    if loss_type == "ipo":
        tau = b if c.ipo_tau is None else c.ipo_tau
        return (m - 1 / (2 * tau)) ** 2
    if loss_type == "hinge":
        return max(0.0, 1 - b * m)
    if loss_type == "robust":
        e = c.label_smoothing
        return -(1 - e) * _log_sigmoid(b * m) - e * _log_sigmoid(-b * m)
    if loss_type == "rdpo":
        return -_log_sigmoid(b * m + c.rdpo_alpha * (lw - ll))
    if loss_type == "simpo":
        return -_log_sigmoid(b / lw * pw - b / ll * pl - c.simpo_gamma)
    if loss_type == "orpo":

        def logodds(a: float) -> float:
            return a - math.log(1 - math.exp(a))

        lam = b if c.orpo_lambda is None else c.orpo_lambda
        return -lam * _log_sigmoid(logodds(pw / lw) - logodds(pl / ll))
    raise AssertionError(loss_type)


def _random_batch(n: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lens_w = torch.randint(3, 40, (n,), generator=g)
    lens_l = torch.randint(3, 40, (n,), generator=g)

    # Log-probs of plausible size: about -0.5 … -3 nats per token.
    def lp(lens: torch.Tensor) -> torch.Tensor:
        return -(0.5 + 2.5 * torch.rand(n, generator=g, dtype=torch.float64)) * lens

    policy = PolicyLogps(
        chosen=lp(lens_w), rejected=lp(lens_l), chosen_cond=lp(lens_w), rejected_cond=lp(lens_l)
    )
    reference = ReferenceLogps(
        chosen=lp(lens_w), rejected=lp(lens_l), chosen_cond=lp(lens_w), rejected_cond=lp(lens_l)
    )
    return policy, reference, lens_w, lens_l


CONFIG = dict(beta=0.3, label_smoothing=0.2, ipo_tau=0.25, rdpo_alpha=0.05, simpo_gamma=0.4, orpo_lambda=0.7)
# TRL's and Axolotl's convention: IPO's τ and ORPO's λ are β unless set.
CONFIG_BETA = {k: v for k, v in CONFIG.items() if k not in {"ipo_tau", "orpo_lambda"}}


def _options(loss_type: str = "sigmoid", config: dict = CONFIG, **extra) -> InSPOOptions:
    """Options with the shared hyper-parameters; ε only with ``robust``, the one loss that reads it."""
    values = {k: v for k, v in config.items() if k != "label_smoothing" or loss_type == "robust"}
    return InSPOOptions(loss_type=loss_type, **values, **extra)


def test_loss_names_are_exactly_the_documented_ones():
    assert list(OBJECTIVES) == ["sigmoid", "one_sided", "ipo", "hinge", "robust", "rdpo", "simpo", "orpo"]


# Reference-free objectives (SimPO, ORPO) have no conditional-reference variant.
COMBINATIONS = [(t, "unconditional") for t in OBJECTIVES] + [
    (t, "conditional") for t in OBJECTIVES if t not in {"simpo", "orpo"}
]


@pytest.mark.parametrize("config", [CONFIG, CONFIG_BETA], ids=["tau_lambda_set", "tau_lambda_beta"])
@pytest.mark.parametrize("loss_type, reference_mode", COMBINATIONS)
def test_each_loss_matches_scalar_formula(loss_type, reference_mode, config):
    c = _options(loss_type, config, reference=reference_mode)
    policy, reference, lw, ll = _random_batch()
    out = inspo_loss(policy, reference, lw, ll, c)
    for i in range(len(lw)):
        rw = (reference.chosen_cond if reference_mode == "conditional" else reference.chosen)[i].item()
        rl = (reference.rejected_cond if reference_mode == "conditional" else reference.rejected)[i].item()
        expected = _naive(
            loss_type,
            c,
            policy.chosen_cond[i].item(),
            policy.rejected_cond[i].item(),
            rw,
            rl,
            int(lw[i]),
            int(ll[i]),
            policy.chosen[i].item(),
        )
        if loss_type == "orpo":
            expected += -policy.chosen[i].item() / int(lw[i])  # ORPO's NLL on the deployed policy
        assert out.losses[i].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("loss_type", list(OBJECTIVES))
def test_uncond_and_sft_terms(loss_type):
    c = _options(loss_type, uncond_weight=0.5, sft_weight=0.25)
    policy, reference, lw, ll = _random_batch(seed=1)
    out = inspo_loss(policy, reference, lw, ll, c)
    for i in range(len(lw)):
        args_u = (
            policy.chosen[i].item(),
            policy.rejected[i].item(),
            reference.chosen[i].item(),
            reference.rejected[i].item(),
            int(lw[i]),
            int(ll[i]),
            policy.chosen[i].item(),
        )
        args_c = (
            policy.chosen_cond[i].item(),
            policy.rejected_cond[i].item(),
            reference.chosen[i].item(),
            reference.rejected[i].item(),
            int(lw[i]),
            int(ll[i]),
            policy.chosen[i].item(),
        )
        nll = -policy.chosen[i].item() / int(lw[i])
        expected = _naive(loss_type, c, *args_c) + 0.5 * _naive(loss_type, c, *args_u) + 0.25 * nll
        if loss_type == "orpo":
            expected += nll
        assert out.losses[i].item() == pytest.approx(expected, rel=1e-9)
    assert set(out.parts) >= {"cond", "uncond", "sft"}


def test_metrics_are_the_documented_quantities():
    c = _options()
    policy, reference, lw, ll = _random_batch(seed=2)
    m = inspo_loss(policy, reference, lw, ll, c).metrics
    cond = (policy.chosen_cond - reference.chosen) - (policy.rejected_cond - reference.rejected)
    uncond = (policy.chosen - reference.chosen) - (policy.rejected - reference.rejected)
    assert torch.allclose(m["inspo/margin_cond"], cond)
    assert torch.allclose(m["inspo/margin_uncond"], uncond)
    assert torch.equal(m["inspo/acc_cond"], (cond > 0).float())
    assert torch.equal(m["inspo/acc_uncond"], (uncond > 0).float())
    assert torch.allclose(m["inspo/context_chosen"], policy.chosen_cond - policy.chosen)
    assert torch.allclose(m["inspo/context_rejected"], policy.rejected_cond - policy.rejected)


@pytest.mark.parametrize("loss_type, option", [("ipo", "ipo_tau"), ("orpo", "orpo_lambda")])
def test_beta_is_ipo_tau_and_orpo_lambda_unless_they_are_set(loss_type, option):
    policy, reference, lw, ll = _random_batch(seed=4)

    def losses(**values: float) -> torch.Tensor:
        return inspo_loss(policy, reference, lw, ll, InSPOOptions(loss_type=loss_type, **values)).losses

    assert InSPOOptions().to_dict()[option] is None
    assert not torch.allclose(losses(beta=0.1), losses(beta=0.5))  # unset: β acts
    assert torch.equal(
        losses(beta=0.1, **{option: 0.3}), losses(beta=0.5, **{option: 0.3})
    )  # set: β does not
    assert torch.equal(losses(beta=0.3), losses(beta=0.9, **{option: 0.3}))  # unset means β


def test_robust_with_zero_smoothing_equals_sigmoid():
    policy, reference, lw, ll = _random_batch(seed=3)
    a = inspo_loss(policy, reference, lw, ll, InSPOOptions(loss_type="robust", label_smoothing=0.0)).losses
    b = inspo_loss(policy, reference, lw, ll, InSPOOptions(loss_type="sigmoid")).losses
    assert torch.allclose(a, b)


def test_orpo_log_odds_stays_finite_at_probability_one():
    n = 2
    zeros = torch.zeros(n, dtype=torch.float64)
    policy = PolicyLogps(zeros, zeros - 1, zeros, zeros - 1)
    out = inspo_loss(policy, None, torch.ones(n), torch.ones(n), InSPOOptions(loss_type="orpo"))
    assert torch.isfinite(out.losses).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(loss_type="dpo"), "loss_type: 'dpo' is not one of sigmoid, "),
        (dict(reference="both"), "reference: 'both' is not one of unconditional, conditional"),
        (dict(beta=0.0), "beta: must be > 0"),
        (dict(label_smoothing=0.5), "label_smoothing"),
        (dict(ipo_tau=0.0), "ipo_tau: must be > 0"),
        (dict(orpo_lambda=-1.0), "orpo_lambda: must be >= 0"),
        (dict(ipo_tau="0.1"), "ipo_tau: expected a number"),
        (dict(uncond_weight=-1.0), "uncond_weight"),
    ],
)
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InSPOOptions(**kwargs)


def test_reference_based_loss_without_reference_is_an_error():
    policy, _, lw, ll = _random_batch()
    with pytest.raises(ValueError, match="needs reference"):
        inspo_loss(policy, None, lw, ll, InSPOOptions(loss_type="sigmoid"))
    with pytest.raises(ValueError, match="conditional reference"):
        ref = ReferenceLogps(policy.chosen, policy.rejected)
        inspo_loss(policy, ref, lw, ll, InSPOOptions(reference="conditional"))
