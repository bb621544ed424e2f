"""The framework-free core of InSPO: torch and a tokenizer only, no TRL, Axolotl or LLaMA-Factory.

- :mod:`~inspo_plugin.core.objectives`: the DPO-family losses, cross-conditioned, and their registry;
- :mod:`~inspo_plugin.core.rows`: the accepted preference-row shapes, errors naming source, row and
  field, and the report of dropped rows;
- :mod:`~inspo_plugin.core.sequences`: how the alternative is shown (the bridge read from the chat
  template), the truncation policy and the reflective sequences A and B;
- :mod:`~inspo_plugin.core.layout`: the one per-row step from tokenised pieces to dataset columns;
- :mod:`~inspo_plugin.core.collator`: padding a batch of laid-out rows;
- :mod:`~inspo_plugin.core.logprobs`: one forward over ``[A; B]`` → the four per-pair log-probs.

Framework adapters (:mod:`inspo_plugin.trl`, :mod:`inspo_plugin.axolotl`) build on these modules;
nothing here imports them.
"""
