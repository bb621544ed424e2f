"""``InSPOTrainer``: InSPO on top of TRL 1.14's ``DPOTrainer``.

What changes against DPO, and nothing else:

- dataset preparation: TRL's own tokenisation, then the reflective layout
  (:func:`~inspo_plugin.core.layout.layout_row`: truncation policy, bridges, sequences A and B with
  segment labels, double-BOS removal); every dropped row is counted and reported;
- collator: TRL's own preference collator for the plain DPO pairs (what the reference scores,
  exactly as in DPO) plus the padded reflective sequences ``[A; B]``;
- loss: one policy forward over ``[A; B]`` yields the four policy log-probs; the reference log-probs
  come from TRL's machinery (separate model, PEFT adapter disabled, or precomputed columns).

The options come from the training arguments' ``inspo_options()``: :class:`InSPOConfig` here, the
Axolotl training-args mix-in in :mod:`inspo_plugin.axolotl`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from datasets import Dataset, IterableDataset
from trl import DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from inspo_plugin.core.collator import DataCollatorForReflectivePreference
from inspo_plugin.core.layout import (
    DROP_COLUMN,
    LAYOUT_COLUMNS,
    MESSAGES_COLUMN,
    ROW_COLUMN,
    SOURCE_COLUMN,
    layout_row,
)
from inspo_plugin.core.logprobs import reflective_forward, split_policy_logps
from inspo_plugin.core.objectives import ReferenceLogps, inspo_loss
from inspo_plugin.core.rows import DropReport, InvalidPreferenceRow, validate_trl_row
from inspo_plugin.core.sequences import ReflectionFormat, RowTooLong, make_reflection_format
from inspo_plugin.options import InSPOOptions

logger = logging.getLogger(__name__)

# For type checking, the mix-in is what it is combined with: TRL's DPOTrainer.
if TYPE_CHECKING:
    _TrainerBase = DPOTrainer
else:
    _TrainerBase = object


def inspo_options_of(args: Any) -> InSPOOptions:
    """The InSPO options of a trainer's training arguments (any class with ``inspo_options()``)."""
    read = getattr(args, "inspo_options", None)
    if not callable(read):
        raise TypeError(
            f"the InSPO trainer needs training arguments that carry the InSPO options (InSPOConfig), "
            f"got {type(args).__name__}"
        )
    options = read()
    assert isinstance(options, InSPOOptions)
    return options


@dataclass
class DataCollatorForInSPO:
    """TRL's preference collator (plain pairs, for the reference) plus the padded ``[A; B]``."""

    plain: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]
    reflective: DataCollatorForReflectivePreference

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {**self.plain(list(examples)), **self.reflective(examples)}


class InSPOTrainerMixin(_TrainerBase):
    """The InSPO parts of the trainer; combine with ``trl.DPOTrainer`` or a subclass of it."""

    inspo: InSPOOptions
    """The options of this run, read once from the training arguments."""
    drop_reports: dict[str, DropReport]
    """Dataset name (``train``, ``eval``) → the rows left out of it, with why."""
    _inspo_format: ReflectionFormat

    # -- construction -------------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        training_args = kwargs.get("args")
        self.inspo = inspo_options_of(training_args)
        tokenizer = kwargs.get("processing_class")
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        if tokenizer is None:
            raise ValueError("InSPOTrainer needs processing_class (a tokenizer with a chat template)")
        if kwargs.get("data_collator") is None:
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            multiple = getattr(training_args, "pad_to_multiple_of", None)
            kwargs["data_collator"] = DataCollatorForInSPO(
                plain=DataCollatorForPreference(
                    pad_token_id=tokenizer.pad_token_id, pad_to_multiple_of=multiple
                ),
                reflective=DataCollatorForReflectivePreference(tokenizer.pad_token_id, multiple),
            )
        self._inspo_format = make_reflection_format(
            tokenizer, self.inspo.template, self.inspo.reflection_prompt
        )
        self.drop_reports = {}
        super().__init__(*args, **kwargs)
        if getattr(self.args, "use_liger_kernel", False):
            raise ValueError("InSPOTrainer does not support use_liger_kernel (the chunked DPO path)")

    # -- data ---------------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        cols: list[str] = list(self._signature_columns or [])
        # transformers declares the attribute as None until this method fills it with column names.
        self._signature_columns = cols + [c for c in LAYOUT_COLUMNS if c not in cols]  # type: ignore[assignment]

    def _prepare_dataset(
        self, dataset: Dataset | IterableDataset, processing_class: Any, args: Any, dataset_name: str
    ) -> Dataset:
        if isinstance(dataset, IterableDataset):
            raise ValueError("InSPOTrainer needs a map-style Dataset (rows are counted and reported)")
        if LAYOUT_COLUMNS[0] in dataset.column_names:
            return dataset  # already prepared
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        report = DropReport(source=dataset_name, rows_in=len(dataset))
        num_proc = getattr(args, "dataset_num_proc", None)

        # 1. Validate rows (or take the verdict of a dataset strategy that already did).
        if ROW_COLUMN not in dataset.column_names:
            dataset = dataset.map(lambda _, i: {ROW_COLUMN: i}, with_indices=True, num_proc=num_proc)
        if MESSAGES_COLUMN in dataset.column_names:
            dataset = _use_normalised_messages(dataset, num_proc)
        if DROP_COLUMN not in dataset.column_names:
            dataset = dataset.map(
                _validation_verdict,
                fn_kwargs={"source": dataset_name},
                num_proc=num_proc,
                desc=f"Checking {dataset_name} rows",
            )
        dataset = self._drop_flagged(dataset, report, self.inspo.on_invalid_row, raise_reasons=True)

        # 2. TRL's own tokenisation, without its silent filter of over-long prompts.
        trl_args = copy.copy(args)
        trl_args.max_length = None
        dataset = super()._prepare_dataset(dataset, processing_class, trl_args, dataset_name)

        # 3. Reflective layout and truncation policy.
        dataset = dataset.map(
            _reflective_layout,
            fn_kwargs={
                "fmt": self._inspo_format,
                "max_length": args.max_length,
                "bos": tokenizer.bos_token_id,
            },
            num_proc=num_proc,
            desc=f"Building reflective sequences for {dataset_name}",
        )
        dataset = self._drop_flagged(dataset, report, "skip", raise_reasons=False)
        self._report(report, args)
        if len(dataset) == 0:
            raise ValueError(
                f"InSPO: no {dataset_name} rows left after dropping {len(report.dropped)}: {report.summary()}"
            )
        return dataset

    def _drop_flagged(self, dataset: Dataset, report: DropReport, mode: str, raise_reasons: bool) -> Dataset:
        reasons = dataset[DROP_COLUMN]
        flagged = [i for i, r in enumerate(reasons) if r]
        if not flagged:
            return dataset
        rows = dataset[ROW_COLUMN]
        sources = dataset[SOURCE_COLUMN] if SOURCE_COLUMN in dataset.column_names else None
        invalid = [i for i in flagged if reasons[i].startswith("invalid:")]
        if mode == "error" and raise_reasons and invalid:
            first = reasons[invalid[0]].removeprefix("invalid: ")
            raise ValueError(
                f"{first} ({len(invalid)} invalid rows in total; set on_invalid_row: skip to drop and "
                "report them instead)"
            )
        for i in flagged:
            reason = reasons[i]
            if sources is not None and sources[i] not in reason:
                kind, _, detail = reason.partition(": ")
                reason = f"{kind}: {sources[i]}: {detail}"
            report.add(rows[i], reason)
        keep = sorted(set(range(len(dataset))) - set(flagged))
        return dataset.select(keep)

    def _report(self, report: DropReport, args: Any) -> None:
        self.drop_reports[report.source] = report
        if not report.dropped:
            logger.info("InSPO: %s", report.summary())
            return
        logger.warning("InSPO: %s", report.summary())
        output_dir = getattr(args, "output_dir", None)
        if output_dir:
            path = report.write(Path(output_dir) / f"inspo_dropped_rows_{report.source}.jsonl")
            logger.warning("InSPO: the full list of dropped %s rows is in %s", report.source, path)

    # -- reference ----------------------------------------------------------------------------

    def _compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        plain = {k: v for k, v in inputs.items() if not k.startswith("inspo_")}
        return super()._compute_ref_log_probs(model, plain)

    def _reference_logps(self, model: Any, inputs: dict[str, Any]) -> ReferenceLogps | None:
        conditional = self.inspo.reference == "conditional"
        if not self.inspo.needs_reference and "ref_chosen_logps" not in inputs:
            return None
        if "ref_chosen_logps" in inputs:
            chosen, rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_model = self.ref_model if self.ref_model is not None else self.model
            chosen, rejected = self._compute_ref_log_probs(ref_model, inputs)
        if not conditional:
            return ReferenceLogps(chosen=chosen, rejected=rejected)
        with torch.no_grad(), self._reference_context():
            ref_model = self.ref_model if self.ref_model is not None else self.model
            seg, _ = reflective_forward(ref_model, inputs)
            ref_cond, _, _ = split_policy_logps(seg)
        return ReferenceLogps(chosen, rejected, ref_cond.chosen_cond, ref_cond.rejected_cond)

    def _reference_context(self) -> contextlib.ExitStack:
        from accelerate.utils import is_peft_model
        from trl.models.utils import disable_gradient_checkpointing
        from trl.trainer.utils import use_adapter

        stack = contextlib.ExitStack()
        # The model is set and the kwargs are a dict once the trainer is built (TrainingArguments' checks).
        model, checkpointing_kwargs = (
            cast(Any, self.model),
            cast(Any, self.args.gradient_checkpointing_kwargs),
        )
        stack.enter_context(disable_gradient_checkpointing(model, checkpointing_kwargs))
        if self.ref_model is None and is_peft_model(self.model):
            unwrapped = self.accelerator.unwrap_model(self.model)
            stack.enter_context(
                use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
            )
        return stack

    # -- loss ---------------------------------------------------------------------------------

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        mode = "train" if model.training else "eval"
        reference = self._reference_logps(model, inputs)

        seg, outputs = reflective_forward(model, inputs)
        policy, chosen_len, rejected_len = split_policy_logps(seg)
        result = inspo_loss(policy, reference, chosen_len, rejected_len, self.inspo)
        loss = result.losses.mean()
        if getattr(self, "aux_loss_enabled", False) and getattr(outputs, "aux_loss", None) is not None:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss

        gather: Callable[[torch.Tensor], torch.Tensor] = self.accelerator.gather_for_metrics
        for name, values in result.metrics.items():
            self._metrics[mode][name].append(gather(values).float().mean().item())
        return (loss, outputs) if return_outputs else loss


def _use_normalised_messages(dataset: Dataset, num_proc: int | None) -> Dataset:
    """Swap in the conversational rows a dataset strategy stored as JSON (TRL renders them itself)."""

    def unpack(row: dict[str, Any]) -> dict[str, Any]:
        if row.get(DROP_COLUMN):
            # A flagged row keeps placeholders; it is dropped before tokenisation.
            placeholder = [{"role": "user", "content": "-"}]
            answer = [{"role": "assistant", "content": "-"}]
            return {"inspo_prompt": placeholder, "inspo_chosen": answer, "inspo_rejected": answer}
        data = json.loads(row[MESSAGES_COLUMN])
        return {
            "inspo_prompt": data["prompt"],
            "inspo_chosen": data["chosen"],
            "inspo_rejected": data["rejected"],
        }

    # New column names first: datasets keeps a column's old type for a same-named output.
    dataset = dataset.map(unpack, num_proc=num_proc, desc="Reading normalised rows")
    dataset = dataset.remove_columns(
        [c for c in ("prompt", "chosen", "rejected") if c in dataset.column_names]
    )
    return dataset.rename_columns(
        {"inspo_prompt": "prompt", "inspo_chosen": "chosen", "inspo_rejected": "rejected"}
    )


def _validation_verdict(row: dict[str, Any], source: str) -> dict[str, str]:
    try:
        validate_trl_row(row, index=row[ROW_COLUMN], source=source)
    except InvalidPreferenceRow as err:
        return {DROP_COLUMN: f"invalid: {err}"}
    return {DROP_COLUMN: ""}


def _reflective_layout(
    row: dict[str, Any], fmt: ReflectionFormat, max_length: int | None, bos: int | None
) -> dict[str, Any]:
    try:
        columns = layout_row(row["prompt_ids"], row["chosen_ids"], row["rejected_ids"], fmt, max_length, bos)
    except RowTooLong as err:
        return {DROP_COLUMN: f"too long: {err}", **{key: [] for key in LAYOUT_COLUMNS}}
    return {**columns, DROP_COLUMN: ""}


class InSPOTrainer(InSPOTrainerMixin, DPOTrainer):
    """TRL's ``DPOTrainer`` with the InSPO objective. Use with :class:`InSPOConfig`.

    Example::

        trainer = InSPOTrainer(model=model, args=InSPOConfig(output_dir="out", loss_type="sigmoid"),
                               train_dataset=ds, processing_class=tokenizer)
        trainer.train()
    """
