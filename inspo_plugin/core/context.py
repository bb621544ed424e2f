"""Context gain: how much seeing the alternative answer raises an answer's log-prob.

For a pair (x, y_w, y_l) the context gains are

    log π(y_w | x, y_l) − log π(y_w | x)     (``inspo/context_chosen``)
    log π(y_l | x, y_w) − log π(y_l | x)     (``inspo/context_rejected``)

in nats; divided by the answer's token count they are nats per answer token. When the two answers
are near-copies of each other (one a minimal edit of the other), the second answer is mostly
predictable from the first and the gains are large: the conditional terms InSPO trains then measure
copying rather than answering from x. :class:`ContextGainMonitor` watches the gains over the first
training batches and produces one warning when they are that large; ``inspo preview
--context-gains`` measures them on a data set before training. Framework-free: any trainer that has
the four policy log-probs and the answer lengths of a batch can feed the monitor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from inspo_plugin.core.objectives import PolicyLogps

CONTEXT_GAIN_BATCHES = 8
"""Training batches (micro-batches, on this process) averaged before the gain is judged."""

DEFAULT_CONTEXT_GAIN_WARNING = 0.5
"""Default threshold, in nats per answer token, of the mean context gain (both answers pooled).

Measured with ``inspo preview --context-gains`` on SmolLM2-135M-Instruct (template ``revise``), the
first 120 rows of the shipped ``ifeval_prefs`` train split (numbers in its data card,
``inspo_plugin/data/ifeval_prefs/README.md``): pairs whose answers were both sampled gain −0.30 nats
per answer token (every such pair below −0.1), pairs where one answer is an edit of the other gain
+1.0 to +1.2 (71 of 79 above 0.5), the mixed split as a whole +0.69. At 0.5 a data set is flagged
when more than about 55% of its pairs are near-copies; the mixed split is, independently sampled
pairs are not."""


def context_gain_message(
    per_token: float, chosen: float, rejected: float, threshold: float, batches: int
) -> str:
    """The warning text for a measured mean context gain (nats per answer token) above ``threshold``."""
    return (
        f"InSPO: over the first {batches} training batches, seeing the alternative answer raised the "
        f"log-prob of the answers by {per_token:.2f} nats per answer token on average (chosen {chosen:+.2f}, "
        f"rejected {rejected:+.2f}), above the warning threshold {threshold:g} (option "
        "context_gain_warning). The conditional terms log π(y|x, y') are then mostly copying the "
        "alternative: the answers of a pair are near-duplicates (for example one is a minimal edit of the "
        "other), and the conditional margin can grow by learning to edit the alternative rather than to "
        "answer better from the prompt alone (in the README's SmolLM2-135M study, such pairs raised DPO's "
        "instruction following and not InSPO-DPO's). Prefer pairs whose answers were produced independently, add the "
        "prompt-only loss (uncond_weight > 0), and check a data set before training with "
        "`python -m inspo_plugin preview --context-gains` (README: 'Checking a data set's context "
        "gains'). Set context_gain_warning: null to silence this check."
    )


@dataclass
class ContextGainMonitor:
    """Accumulates the context gains of the first ``batches`` training batches; :meth:`observe` returns
    the warning once, at the batch that completes the window, when their mean per answer token is
    above ``threshold`` (``None``: never)."""

    threshold: float | None
    batches: int = CONTEXT_GAIN_BATCHES
    seen: int = 0
    gain_chosen: float = 0.0
    gain_rejected: float = 0.0
    tokens_chosen: float = 0.0
    tokens_rejected: float = 0.0
    done: bool = field(default=False)

    def observe(self, policy: PolicyLogps, chosen_len: Tensor, rejected_len: Tensor) -> str | None:
        """Add one batch: its policy log-probs and answer token counts (each ``[B]``)."""
        if self.done or self.threshold is None:
            return None
        self.gain_chosen += float((policy.chosen_cond - policy.chosen).detach().double().sum())
        self.gain_rejected += float((policy.rejected_cond - policy.rejected).detach().double().sum())
        self.tokens_chosen += float(chosen_len.detach().double().sum())
        self.tokens_rejected += float(rejected_len.detach().double().sum())
        self.seen += 1
        if self.seen < self.batches:
            return None
        self.done = True
        per_token = self.per_token()
        if per_token is None or not per_token > self.threshold:
            return None
        chosen_pt = self.gain_chosen / max(self.tokens_chosen, 1.0)
        rejected_pt = self.gain_rejected / max(self.tokens_rejected, 1.0)
        return context_gain_message(per_token, chosen_pt, rejected_pt, self.threshold, self.seen)

    def per_token(self) -> float | None:
        """Mean context gain so far, nats per answer token, both answers pooled (``None`` before any)."""
        tokens = self.tokens_chosen + self.tokens_rejected
        return (self.gain_chosen + self.gain_rejected) / tokens if tokens else None
