"""Swap InSPO into LLaMA-Factory 0.9.5 through the names it reads at call time.

LLaMA-Factory has no plugin mechanism; its DPO workflow reads these module attributes when it runs,
so replacing them before ``run_exp`` changes the run and nothing else:

==============================================================  ===========================================
name                                                            replaced by
==============================================================  ===========================================
``llamafactory.train.dpo.trainer.CustomDPOTrainer``             the InSPO subclass (:mod:`.trainer`)
``llamafactory.train.dpo.workflow.PairwiseDataCollatorWithPadding``  :func:`collator` (pads ``[A; B]``)
``llamafactory.data.loader.PairwiseDatasetProcessor``           :class:`.data.InSPOPairwiseDatasetProcessor`
``llamafactory.data.loader.align_dataset``                      row numbers and raw-row checks
``llamafactory.data.loader._get_preprocessed_dataset``          the drop report
==============================================================  ===========================================

The patch lives in the process that trains: under torchrun each worker runs the InSPO launcher
(:mod:`.launch`), which installs it before ``run_exp``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inspo_plugin.options import InSPOOptions

_ORIGINALS: dict[str, Any] = {}


def install(options: InSPOOptions) -> None:
    """Install InSPO with ``options`` into LLaMA-Factory (idempotent: a second call replaces the first)."""
    import llamafactory.data.loader as lf_loader
    import llamafactory.train.dpo.trainer as lf_trainer
    import llamafactory.train.dpo.workflow as lf_workflow

    from inspo_plugin.llamafactory import data
    from inspo_plugin.llamafactory.trainer import make_trainer_class

    if not _ORIGINALS:
        _ORIGINALS.update(
            trainer=lf_trainer.CustomDPOTrainer,
            collator=lf_workflow.PairwiseDataCollatorWithPadding,
            processor=lf_loader.PairwiseDatasetProcessor,
            align=lf_loader.align_dataset,
            preprocessed=lf_loader._get_preprocessed_dataset,
        )
    data.STATE.clear()
    data.STATE["options"] = options
    lf_trainer.CustomDPOTrainer = make_trainer_class(_ORIGINALS["trainer"], options)
    lf_workflow.PairwiseDataCollatorWithPadding = collator
    lf_loader.PairwiseDatasetProcessor = data.InSPOPairwiseDatasetProcessor
    lf_loader.align_dataset = data.wrap_align_dataset(_ORIGINALS["align"])
    lf_loader._get_preprocessed_dataset = data.wrap_preprocessed_dataset(_ORIGINALS["preprocessed"])


def uninstall() -> None:
    """Put LLaMA-Factory's own names back."""
    if not _ORIGINALS:
        return
    import llamafactory.data.loader as lf_loader
    import llamafactory.train.dpo.trainer as lf_trainer
    import llamafactory.train.dpo.workflow as lf_workflow

    lf_trainer.CustomDPOTrainer = _ORIGINALS["trainer"]
    lf_workflow.PairwiseDataCollatorWithPadding = _ORIGINALS["collator"]
    lf_loader.PairwiseDatasetProcessor = _ORIGINALS["processor"]
    lf_loader.align_dataset = _ORIGINALS["align"]
    lf_loader._get_preprocessed_dataset = _ORIGINALS["preprocessed"]


class _Collator:
    """Pads ``[A; B]``; refuses rows prepared without InSPO (a ``tokenized_path`` of a plain DPO run)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None) -> None:
        from inspo_plugin.core.collator import DataCollatorForReflectivePreference

        self.pad = DataCollatorForReflectivePreference(pad_token_id, pad_to_multiple_of)

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        from inspo_plugin.core.layout import IDS_A_COLUMN

        if features and IDS_A_COLUMN not in features[0]:
            raise ValueError(
                "InSPO: the training rows have no reflective sequences: they were tokenised without InSPO "
                "(a tokenized_path written by a plain DPO run?); remove tokenized_path or point it elsewhere"
            )
        from inspo_plugin.core.layout import ROW_COLUMN

        batch = self.pad(features)
        if ROW_COLUMN in features[0]:  # named in the message of a non-finite step
            batch[ROW_COLUMN] = torch.tensor([int(f[ROW_COLUMN]) for f in features], dtype=torch.long)
        return batch


def collator(
    template: Any = None,
    model: Any = None,
    pad_to_multiple_of: int | None = 8,
    label_pad_token_id: int | None = None,
    tokenizer: Any = None,
    processor: Any = None,
    **_: Any,
) -> _Collator:
    """Stands in for ``PairwiseDataCollatorWithPadding(...)`` in LLaMA-Factory's DPO workflow."""
    if processor is not None and getattr(processor, "image_processor", None) is not None:
        raise ValueError("InSPO on LLaMA-Factory does not support multimodal models (a processor was loaded)")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return _Collator(pad, pad_to_multiple_of)
