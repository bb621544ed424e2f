"""``InSPOConfig`` / ``InSPOTrainer``: InSPO on top of TRL 1.14's ``DPOConfig`` / ``DPOTrainer``.

What changes against DPO, and nothing else:

- dataset preparation: TRL's own tokenisation, then the reflective layout (bridge ids per row,
  truncation policy, double-BOS removal); every dropped row is counted and reported;
- collator: the plain DPO pairs (for the reference, exactly what DPO uses) plus the reflective
  sequences ``[A; B]`` with segment labels and an attention mask built from lengths;
- loss: one policy forward over ``[A; B]`` yields the four policy log-probs; the reference log-probs
  come from TRL's machinery (separate model, PEFT adapter disabled, or precomputed columns).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, IterableDataset
from trl import DPOConfig, DPOTrainer

from inspo_plugin.collator import (
    BRIDGE_A_COLUMN,
    BRIDGE_B_COLUMN,
    DROP_COLUMN,
    MESSAGES_COLUMN,
    ROW_COLUMN,
    SOURCE_COLUMN,
    DataCollatorForReflectivePreference,
    prepare_example,
)
from inspo_plugin.logprobs import reflective_forward, split_policy_logps
from inspo_plugin.objectives import LOSS_FUNCTIONS, ObjectiveConfig, ReferenceLogps, inspo_loss
from inspo_plugin.rows import DropReport, InvalidPreferenceRow, validate_trl_row
from inspo_plugin.sequences import (
    TEMPLATES,
    ReflectionFormat,
    RowTooLong,
    make_reflection_format,
)

logger = logging.getLogger(__name__)

ON_INVALID_ROW = ("error", "skip")


@dataclass(frozen=True)
class InSPOSettings:
    """Everything InSPO adds to a DPO run, independent of where it was configured."""

    objective: ObjectiveConfig
    template: str = "revise"
    reflection_prompt: str | None = None
    on_invalid_row: str = "error"

    @classmethod
    def from_options(cls, options: Mapping[str, Any], beta: float) -> InSPOSettings:
        """From InSPO option names (those of the ``inspo:`` block and of :class:`InSPOConfig`)."""
        objective_fields = {f.name for f in fields(ObjectiveConfig)} - {"beta"}
        return cls(
            objective=ObjectiveConfig(
                beta=beta, **{k: v for k, v in options.items() if k in objective_fields}
            ),
            template=options.get("template", "revise"),
            reflection_prompt=options.get("reflection_prompt"),
            on_invalid_row=options.get("on_invalid_row", "error"),
        )

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"unknown template {self.template!r}; valid: {', '.join(TEMPLATES)}")
        if self.on_invalid_row not in ON_INVALID_ROW:
            raise ValueError(f"on_invalid_row must be one of {ON_INVALID_ROW}, got {self.on_invalid_row!r}")


@dataclass
class InSPOConfig(DPOConfig):
    """``DPOConfig`` plus the InSPO options. ``beta``, ``label_smoothing`` and ``max_length`` are DPO's.

    ``max_length`` bounds each reflective sequence (prompt + both responses + bridge), so it should be
    about prompt + 2 × response length.
    """

    loss_type: Any = field(
        default="sigmoid",
        metadata={"help": f"InSPO objective, one of: {', '.join(LOSS_FUNCTIONS)}."},
    )
    template: str = field(
        default="revise", metadata={"help": "How the alternative is shown: revise, concat or custom."}
    )
    reflection_prompt: str | None = field(
        default=None, metadata={"help": "Reflection user message for template 'custom'."}
    )
    reference: str = field(
        default="unconditional",
        metadata={"help": "unconditional: π_ref(y|x) (the paper); conditional: π_ref(y|x,y') (ablation)."},
    )
    uncond_weight: float = field(
        default=0.0, metadata={"help": "Weight of the same loss on the unconditional log-probs π_θ(y|x)."}
    )
    sft_weight: float = field(default=0.0, metadata={"help": "Weight of the chosen response's mean NLL."})
    ipo_tau: float = field(default=0.1, metadata={"help": "IPO τ: target margin 1/(2τ)."})
    rdpo_alpha: float = field(default=0.01, metadata={"help": "R-DPO length coefficient α."})
    simpo_gamma: float = field(default=0.5, metadata={"help": "SimPO target reward margin γ."})
    orpo_lambda: float = field(default=0.1, metadata={"help": "ORPO odds-ratio weight λ."})
    on_invalid_row: str = field(
        default="error", metadata={"help": "error: stop at the first bad row; skip: drop, count and report."}
    )

    def __post_init__(self) -> None:
        loss = self.loss_type[0] if isinstance(self.loss_type, list) else self.loss_type
        if isinstance(self.loss_type, list) and len(self.loss_type) != 1:
            raise ValueError("InSPO takes a single loss_type")
        self.loss_type = loss
        self.inspo_settings()  # validate early, with the option names the user wrote
        super().__post_init__()  # TRL turns loss_type into a list

    def inspo_settings(self) -> InSPOSettings:
        loss = self.loss_type[0] if isinstance(self.loss_type, list) else self.loss_type
        options = {f.name: getattr(self, f.name) for f in fields(ObjectiveConfig) if hasattr(self, f.name)}
        options.update(
            loss_type=loss,
            template=self.template,
            reflection_prompt=self.reflection_prompt,
            on_invalid_row=self.on_invalid_row,
        )
        return InSPOSettings.from_options(options, beta=self.beta)


class InSPOTrainerMixin:
    """The InSPO parts of the trainer; combine with ``trl.DPOTrainer`` or a subclass of it."""

    _inspo: InSPOSettings | None = None
    _inspo_format: ReflectionFormat | None = None
    drop_reports: dict[str, DropReport]
    _signature_columns: Any  # set by transformers.Trainer

    # -- settings -----------------------------------------------------------------------------

    def resolve_inspo_settings(self, args: Any) -> InSPOSettings:
        """Where the InSPO options come from; :class:`InSPOConfig` by default."""
        if isinstance(args, InSPOConfig):
            return args.inspo_settings()
        raise TypeError(
            f"InSPOTrainer needs an InSPOConfig (got {type(args).__name__}); "
            "or override resolve_inspo_settings() to read the options from elsewhere"
        )

    def _settings(self, args: Any) -> InSPOSettings:
        if self._inspo is None:
            self._inspo = self.resolve_inspo_settings(args)
        return self._inspo

    # -- construction -------------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        training_args = kwargs.get("args")
        settings = self._settings(training_args)
        tokenizer = kwargs.get("processing_class")
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        if tokenizer is None:
            raise ValueError("InSPOTrainer needs processing_class (a tokenizer with a chat template)")
        if kwargs.get("data_collator") is None:
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            kwargs["data_collator"] = DataCollatorForReflectivePreference(
                pad_token_id=tokenizer.pad_token_id,
                pad_to_multiple_of=getattr(training_args, "pad_to_multiple_of", None),
            )
        self._inspo_format = make_reflection_format(tokenizer, settings.template, settings.reflection_prompt)
        self.drop_reports = {}
        super().__init__(*args, **kwargs)
        if getattr(self.args, "use_liger_kernel", False):  # type: ignore[attr-defined]
            raise ValueError("InSPOTrainer does not support use_liger_kernel (the chunked DPO path)")

    # -- data ---------------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()  # type: ignore[misc]
        cols = list(self._signature_columns or [])
        self._signature_columns = cols + [c for c in (BRIDGE_A_COLUMN, BRIDGE_B_COLUMN) if c not in cols]

    def _prepare_dataset(
        self, dataset: Dataset | IterableDataset, processing_class: Any, args: Any, dataset_name: str
    ) -> Dataset:
        if isinstance(dataset, IterableDataset):
            raise ValueError("InSPOTrainer needs a map-style Dataset (rows are counted and reported)")
        if BRIDGE_A_COLUMN in dataset.column_names:
            return dataset  # already prepared
        settings = self._settings(args)
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        fmt = self._inspo_format or make_reflection_format(
            tokenizer, settings.template, settings.reflection_prompt
        )
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
        dataset = self._drop_flagged(dataset, report, settings.on_invalid_row, raise_reasons=True)

        # 2. TRL's own tokenisation, without its silent filter of over-long prompts.
        trl_args = copy.copy(args)
        trl_args.max_length = None
        dataset = super()._prepare_dataset(dataset, processing_class, trl_args, dataset_name)  # type: ignore[misc]

        # 3. Reflective layout and truncation policy.
        dataset = dataset.map(
            _reflective_layout,
            fn_kwargs={"fmt": fmt, "max_length": args.max_length, "bos": tokenizer.bos_token_id},
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
        return super()._compute_ref_log_probs(model, plain)  # type: ignore[misc]

    def _reference_logps(
        self, model: Any, inputs: dict[str, Any], settings: InSPOSettings
    ) -> ReferenceLogps | None:
        needs_ref = settings.objective.needs_reference
        conditional = settings.objective.reference == "conditional"
        if not needs_ref and not conditional and "ref_chosen_logps" not in inputs:
            return None
        if "ref_chosen_logps" in inputs:
            chosen, rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_model = self.ref_model if self.ref_model is not None else self.model  # type: ignore[attr-defined]
            chosen, rejected = self._compute_ref_log_probs(ref_model, inputs)
        if not conditional:
            return ReferenceLogps(chosen=chosen, rejected=rejected)
        with torch.no_grad(), self._reference_context():
            ref_model = self.ref_model if self.ref_model is not None else self.model  # type: ignore[attr-defined]
            seg, _ = reflective_forward(ref_model, inputs)
            ref_cond, _, _ = split_policy_logps(seg)
        return ReferenceLogps(chosen, rejected, ref_cond.chosen_cond, ref_cond.rejected_cond)

    def _reference_context(self) -> Any:
        from accelerate.utils import is_peft_model
        from trl.models.utils import disable_gradient_checkpointing
        from trl.trainer.utils import use_adapter

        stack = contextlib.ExitStack()
        stack.enter_context(
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs)  # type: ignore[attr-defined]
        )
        if self.ref_model is None and is_peft_model(self.model):  # type: ignore[attr-defined]
            unwrapped = self.accelerator.unwrap_model(self.model)  # type: ignore[attr-defined]
            stack.enter_context(
                use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
            )
        return stack

    # -- loss ---------------------------------------------------------------------------------

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        settings = self._settings(self.args)  # type: ignore[attr-defined]
        mode = "train" if self.model.training else "eval"  # type: ignore[attr-defined]
        reference = self._reference_logps(model, inputs, settings)

        seg, outputs = reflective_forward(model, inputs)
        policy, chosen_len, rejected_len = split_policy_logps(seg)
        result = inspo_loss(policy, reference, chosen_len, rejected_len, settings.objective)
        loss = result.losses.mean()
        if getattr(self, "aux_loss_enabled", False) and getattr(outputs, "aux_loss", None) is not None:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss  # type: ignore[attr-defined]

        gather: Callable[[torch.Tensor], torch.Tensor] = self.accelerator.gather_for_metrics  # type: ignore[attr-defined]
        for name, values in result.metrics.items():
            self._metrics[mode][name].append(gather(values).float().mean().item())  # type: ignore[attr-defined]
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
        example = prepare_example(
            row["prompt_ids"], row["chosen_ids"], row["rejected_ids"], fmt, max_length, bos
        )
    except RowTooLong as err:
        return {DROP_COLUMN: f"too long: {err}", BRIDGE_A_COLUMN: [], BRIDGE_B_COLUMN: []}
    return {**example, DROP_COLUMN: ""}


class InSPOTrainer(InSPOTrainerMixin, DPOTrainer):
    """TRL's ``DPOTrainer`` with the InSPO objective. Use with :class:`InSPOConfig`.

    Example::

        trainer = InSPOTrainer(model=model, args=InSPOConfig(output_dir="out", loss_type="sigmoid"),
                               train_dataset=ds, processing_class=tokenizer)
        trainer.train()
    """
