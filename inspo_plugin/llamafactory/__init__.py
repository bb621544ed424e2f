"""InSPO for LLaMA-Factory 0.9.5: ``inspo-llamafactory train config.yaml``.

A LLaMA-Factory DPO YAML plus an ``inspo:`` block (:mod:`~inspo_plugin.llamafactory.config`) trains
with the InSPO objective on LLaMA-Factory's own templates, datasets, LoRA / full fine-tuning,
DeepSpeed and FSDP. LLaMA-Factory pins ``trl<=0.24`` and ``transformers<=5.6``, so it lives in its own
environment (``make llamafactory-env``); this package imports LLaMA-Factory only when a run starts.
See ``README.md`` next to this file.
"""
