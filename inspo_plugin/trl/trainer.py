"""``InSPOTrainer``: InSPO on top of TRL 1.14's ``DPOTrainer``.

What changes against DPO, and nothing else:

- dataset preparation: TRL's own tokenisation, then the reflective layout
  (:func:`~inspo_plugin.core.layout.layout_row`: truncation policy, bridges, sequences A and B with
  segment labels, double-BOS removal); every dropped row is counted and reported. Datasets TRL
  accepts are accepted: an implicit prompt (no ``prompt`` column) is extracted with TRL's
  ``extract_prompt``, and a streaming ``IterableDataset`` is prepared lazily, its dropped rows counted
  as they are read (:mod:`inspo_plugin.trl.streaming`);
- collator: TRL's own preference collator for the plain DPO pairs (what the reference scores,
  exactly as in DPO) plus the padded reflective sequences ``[A; B]``;
- loss: one policy forward over ``[A; B]`` yields the four policy log-probs, without full-vocabulary
  logits (:func:`~inspo_plugin.core.logprobs.reflective_forward`); the reference log-probs come from
  TRL's machinery (separate model, PEFT adapter disabled, or precomputed columns), for
  ``reference: conditional`` from one reference forward over ``[A; B]``; an objective without a
  reference (SimPO, ORPO) loads no reference copy;
- evaluation: ``compute_metrics`` receives per-pair InSPO values, not logits (see :class:`InSPOTrainer`).

The trainer takes ``DPOTrainer``'s arguments, in its order, with its defaults (a model path, no
``processing_class``, no ``args``).

The options come from the training arguments' ``inspo_options()``: :class:`InSPOConfig` here, the
Axolotl training-args mix-in in :mod:`inspo_plugin.axolotl`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from datasets import Dataset, IterableDataset
from transformers import TrainingArguments
from trl import DPOTrainer
from trl.data_utils import extract_prompt
from trl.trainer.dpo_trainer import DataCollatorForPreference

from inspo_plugin.core.collator import DataCollatorForReflectivePreference
from inspo_plugin.core.context import ContextGainMonitor
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
from inspo_plugin.core.rows import (
    DropReport,
    InvalidPreferenceRow,
    check_implicit_prompt_row,
    validate_trl_row,
)
from inspo_plugin.core.sequences import ReflectionFormat, RowTooLong, make_reflection_format
from inspo_plugin.options import InSPOOptions
from inspo_plugin.trl.compat import LIGER_REFUSAL, drop_copied_forward, refuse_data_parallel
from inspo_plugin.trl.nonfinite import NonFiniteGuard
from inspo_plugin.trl.parity import check_dpo_options
from inspo_plugin.trl.streaming import (
    POSITION_COLUMN,
    DropReportCallback,
    StreamingDrops,
    check_streaming_workers,
    invalid_row_error,
    reason_with_source,
)

logger = logging.getLogger(__name__)

# For type checking, the mix-in is what it is combined with: TRL's DPOTrainer.
if TYPE_CHECKING:
    _TrainerBase = DPOTrainer
else:
    _TrainerBase = object


PREDICTION_COLUMNS: tuple[str, ...] = (
    "margin_uncond",
    "margin_cond",
    "logps_chosen",
    "logps_rejected",
    "logps_chosen_cond",
    "logps_rejected_cond",
)
"""The columns of the per-pair predictions ``compute_metrics`` receives (the ``inspo/<name>`` metrics)."""


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


CONDITIONAL_REF_COLUMNS = ("ref_chosen_cond_logps", "ref_rejected_cond_logps")
"""Precomputed conditional reference log-probs, beside TRL's ``ref_chosen_logps``/``ref_rejected_logps``."""


@dataclass
class DataCollatorForInSPO:
    """TRL's preference collator (plain pairs, for the reference) plus the padded ``[A; B]``."""

    plain: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]
    reflective: DataCollatorForReflectivePreference

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        batch = {**self.plain(list(examples)), **self.reflective(examples)}
        if all(ROW_COLUMN in ex for ex in examples):  # the rows' indices, named if a step is non-finite
            batch[ROW_COLUMN] = torch.tensor([int(ex[ROW_COLUMN]) for ex in examples], dtype=torch.long)
        for column in CONDITIONAL_REF_COLUMNS:  # precomputed log π_ref(y|x,y') (reference: conditional)
            if all(column in ex for ex in examples):
                batch[column] = torch.tensor([float(ex[column]) for ex in examples])
        return batch


class InSPOTrainerMixin(_TrainerBase):
    """The InSPO parts of the trainer; combine with ``trl.DPOTrainer`` or a subclass of it."""

    inspo: InSPOOptions
    """The options of this run, read once from the training arguments."""
    drop_reports: dict[str, DropReport]
    """Dataset name (``train``, ``eval``) → the rows left out of it, with why."""
    _inspo_format: ReflectionFormat
    _last_pair_metrics: dict[str, torch.Tensor]

    # -- construction -------------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # DPOTrainer's arguments, by name, whichever way they were passed (TRL's conventions).
        call = _bind_dpo_arguments(args, kwargs)
        if call.get("args") is None:
            call["args"] = _default_config(call["model"])
        self.inspo = inspo_options_of(call["args"])
        # Every DPO option is honoured or refused, also when the options come from Axolotl's arguments.
        check_dpo_options(call["args"], reference=self.inspo.reference)
        if call.get("processing_class") is None:
            call["processing_class"] = _load_processing_class(call["model"], call["args"])
        processing_class = call["processing_class"]
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        if call.get("data_collator") is None:
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            multiple = getattr(call["args"], "pad_to_multiple_of", None)
            call["data_collator"] = DataCollatorForInSPO(
                plain=DataCollatorForPreference(
                    pad_token_id=tokenizer.pad_token_id, pad_to_multiple_of=multiple
                ),
                reflective=DataCollatorForReflectivePreference(tokenizer.pad_token_id, multiple),
            )
        self._inspo_format = make_reflection_format(
            tokenizer, self.inspo.template, self.inspo.reflection_prompt
        )
        self.drop_reports = {}
        # TRL >= 1.15 patches forward on the instance; a deep copy of a patched model must run itself.
        drop_copied_forward(call["model"])
        drop_copied_forward(call.get("ref_model"))
        # TRL loads a frozen copy of the policy as reference whenever none is given; an objective that
        # reads no reference (SimPO, ORPO, without the conditional ablation) never loads one.
        skip_reference_copy = not self.inspo.needs_reference and call.get("ref_model") is None
        if skip_reference_copy and getattr(call["args"], "sync_ref_model", False):
            raise ValueError(
                f"sync_ref_model=True: loss_type {self.inspo.loss_type!r} reads no reference model, so there is "
                "none to synchronise; set sync_ref_model=False (or reference: conditional)"
            )
        with _no_reference_copy(self) if skip_reference_copy else contextlib.nullcontext():
            super().__init__(**call)
        if getattr(self.args, "use_liger_kernel", False):
            raise ValueError(LIGER_REFUSAL)
        refuse_data_parallel(self.args, type(self).__name__)  # as TRL >= 1.15 does itself
        # Streaming datasets report their dropped rows as they are read (see inspo_plugin.trl.streaming).
        self.add_callback(
            DropReportCallback(self.drop_reports, lambda report: self._report(report, self.args))
        )
        if self.inspo.on_nonfinite == "skip" and getattr(self, "is_deepspeed_enabled", False):
            raise ValueError(
                "on_nonfinite: skip is not supported with DeepSpeed (its engine steps the optimizer inside "
                "the backward pass); use on_nonfinite: stop"
            )
        self._nonfinite = NonFiniteGuard(self, self.inspo.on_nonfinite)
        # One warning when the first training batches' conditional terms are mostly copying.
        self._context_gain = ContextGainMonitor(self.inspo.context_gain_warning)

    def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        """The trainer's step, then the non-finite check (:mod:`inspo_plugin.trl.nonfinite`)."""
        rows = inputs.get(ROW_COLUMN)
        loss = super().training_step(model, inputs, *args, **kwargs)
        self._nonfinite.after_backward(loss, rows)
        return loss

    # -- data ---------------------------------------------------------------------------------

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        cols: list[str] = list(self._signature_columns or [])
        # transformers declares the attribute as None until this method fills it with column names.
        self._signature_columns = cols + [
            c for c in (*LAYOUT_COLUMNS, ROW_COLUMN, *CONDITIONAL_REF_COLUMNS) if c not in cols
        ]  # type: ignore[assignment]

    def _prepare_dataset(
        self, dataset: Dataset | IterableDataset, processing_class: Any, args: Any, dataset_name: str
    ) -> Dataset | IterableDataset:
        columns = _column_names(dataset)
        if LAYOUT_COLUMNS[0] in columns:
            return dataset  # already prepared
        streaming = isinstance(dataset, IterableDataset)
        if streaming:
            check_streaming_workers(args, dataset_name)
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        rows_in = 0 if isinstance(dataset, IterableDataset) else len(dataset)
        report = DropReport(source=dataset_name, rows_in=rows_in, streaming=streaming)
        self.drop_reports[dataset_name] = report
        num_proc = getattr(args, "dataset_num_proc", None)

        # 1. Validate rows (or take the verdict of a dataset strategy that already did); without a
        #    prompt column, extract the prompt that chosen and rejected share, with TRL's function.
        dataset = _checked_rows(dataset, columns, dataset_name, num_proc)
        dataset = self._drop_rows(dataset, report, self.inspo.on_invalid_row == "error", first_stage=True)
        self._require_rows(dataset, report, args)  # before TRL reads the first row

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
            **_map_kwargs(dataset, num_proc, f"Building reflective sequences for {dataset_name}"),
        )
        dataset = self._drop_rows(dataset, report, raise_invalid=False, first_stage=False)
        self._require_rows(dataset, report, args)
        if not streaming:  # a stream's report grows as it is read: DropReportCallback publishes it
            self._report(report, args)
        return dataset

    def _drop_rows(
        self, dataset: Dataset | IterableDataset, report: DropReport, raise_invalid: bool, first_stage: bool
    ) -> Dataset | IterableDataset:
        """Drop the flagged rows into the report: at once from a Dataset, as they stream past otherwise."""
        if isinstance(dataset, IterableDataset):
            return dataset.filter(StreamingDrops(report, raise_invalid, counts_rows=first_stage))
        return self._drop_flagged(dataset, report, raise_invalid)

    def _drop_flagged(self, dataset: Dataset, report: DropReport, raise_invalid: bool) -> Dataset:
        reasons = dataset[DROP_COLUMN]
        flagged = [i for i, r in enumerate(reasons) if r]
        if not flagged:
            return dataset
        rows = dataset[ROW_COLUMN]
        sources = dataset[SOURCE_COLUMN] if SOURCE_COLUMN in dataset.column_names else None
        invalid = [i for i in flagged if reasons[i].startswith("invalid:")]
        if raise_invalid and invalid:
            raise invalid_row_error(reasons[invalid[0]], f"{len(invalid)} invalid rows in total")
        for i in flagged:
            report.add(rows[i], reason_with_source(reasons[i], sources[i] if sources is not None else None))
        keep = sorted(set(range(len(dataset))) - set(flagged))
        return dataset.select(keep)

    def _require_rows(self, dataset: Dataset | IterableDataset, report: DropReport, args: Any) -> None:
        """Fail with the drop report when no row is left (TRL would stop at its first read, unexplained)."""
        if isinstance(dataset, IterableDataset):
            empty = next(iter(dataset), None) is None  # reads up to the first kept row
        else:
            empty = len(dataset) == 0
        if empty:
            self._report(report, args)
            raise ValueError(
                f"InSPO: no {report.source} rows left after dropping {len(report.dropped)}: {report.summary()}"
            )

    def _report(self, report: DropReport, args: Any) -> None:
        self.drop_reports[report.source] = report
        if not report.dropped:
            logger.info("InSPO: %s", report.summary())
            return
        logger.warning("InSPO: %s", report.summary())
        output_dir = getattr(args, "output_dir", None)
        if output_dir and getattr(args, "should_save", True):  # one writer: the main process
            path = report.write(Path(output_dir) / f"inspo_dropped_rows_{report.source}.jsonl")
            logger.warning("InSPO: the full list of dropped %s rows is in %s", report.source, path)

    # -- evaluation ---------------------------------------------------------------------------

    def prediction_step(
        self,
        model: Any,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """The loss and, for ``compute_metrics``, per pair the :data:`PREDICTION_COLUMNS` (``[B, 6]``).

        DPO's ``prediction_step`` hands ``compute_metrics`` the model's logits with ``input_ids`` as
        labels; InSPO's logits are those of the reflective sequences ``[A; B]``, which line up with
        no labels, so ``compute_metrics`` gets the InSPO payload and zeros ``[B]`` as labels instead.
        """
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            if prediction_loss_only:
                return self.compute_loss(model, inputs, return_outputs=False).detach(), None, None
            loss = self.compute_loss(model, inputs, return_outputs=False)
            predictions = self._prediction_payload()
        labels = torch.zeros(len(predictions), dtype=torch.long, device=predictions.device)
        return loss.detach(), predictions, labels

    def _prediction_payload(self) -> torch.Tensor:
        """``[B, 6]`` float32, the :data:`PREDICTION_COLUMNS` of each pair, as the logged metrics.

        They are the per-pair metrics of the loss just computed (no second forward, policy or reference).
        """
        metrics = self._last_pair_metrics
        return torch.stack([metrics[f"inspo/{name}"] for name in PREDICTION_COLUMNS], dim=-1).float()

    # -- reference ----------------------------------------------------------------------------

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        """TRL's reference log-probs of the plain pairs (every TRL version; 1.15+ with its fused LM head)."""
        plain = {k: v for k, v in inputs.items() if not k.startswith("inspo_")}
        return super().compute_ref_log_probs(model, plain)

    def _reference_logps(self, model: Any, inputs: dict[str, Any]) -> ReferenceLogps | None:
        """The reference log-probs the objective reads, or ``None`` when it reads none (SimPO, ORPO).

        Precomputed columns are used when the batch has them. ``reference: conditional`` takes all four
        from one reference forward over ``[A; B]`` (its FIRST segments are log π_ref(y|x), on the same
        tokens as the policy's); otherwise TRL's reference forward over the plain pairs gives the two.
        A reference-free objective ignores precomputed columns too, so its ``inspo/margin_*`` metrics
        are policy log-prob differences however the run was set up.
        """
        if not self.inspo.needs_reference:
            return None
        conditional = self.inspo.reference == "conditional"
        if "ref_chosen_logps" in inputs and (not conditional or CONDITIONAL_REF_COLUMNS[0] in inputs):
            chosen_cond, rejected_cond = (inputs.get(c) for c in CONDITIONAL_REF_COLUMNS)
            return ReferenceLogps(
                inputs["ref_chosen_logps"], inputs["ref_rejected_logps"], chosen_cond, rejected_cond
            )
        ref_model = self.ref_model if self.ref_model is not None else self.model
        if conditional:
            return self._reflective_reference(ref_model, inputs)
        chosen, rejected = self.compute_ref_log_probs(ref_model, inputs)
        return ReferenceLogps(chosen=chosen, rejected=rejected)

    def _reflective_reference(self, ref_model: Any, inputs: dict[str, Any]) -> ReferenceLogps:
        """All four reference log-probs from one no-grad reference forward over ``[A; B]``."""
        with torch.no_grad(), self._reference_context():
            seg, _ = reflective_forward(ref_model, inputs)
        ref, _, _ = split_policy_logps(seg)
        return ReferenceLogps(ref.chosen, ref.rejected, ref.chosen_cond, ref.rejected_cond)

    def _precompute_ref_logps(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
        """``precompute_ref_log_probs``: every reference log-prob the objective reads, before training.

        Nothing for a reference-free objective; TRL's two columns for the unconditional reference; and
        for ``reference: conditional`` also the two conditional ones, so training runs no reference forward.
        """
        if not self.inspo.needs_reference:
            logger.info(
                "InSPO: loss_type %s reads no reference log-probs; none precomputed", self.inspo.loss_type
            )
            return dataset
        if self.inspo.reference != "conditional":
            return cast(Dataset, super()._precompute_ref_logps(dataset, name, batch_size))  # type: ignore[misc]
        return self._precompute_reflective_reference(dataset, name, batch_size)

    def _precompute_reflective_reference(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
        from torch.utils.data import DataLoader

        if isinstance(dataset, IterableDataset):
            raise ValueError(
                "precompute_ref_log_probs=True needs a map-style Dataset (TRL's rule), not an IterableDataset"
            )
        args = self.args
        loader = self.accelerator.prepare(
            DataLoader(
                dataset,
                batch_size=batch_size,
                collate_fn=self.data_collator,
                num_workers=args.dataloader_num_workers,
                pin_memory=args.dataloader_pin_memory,
                shuffle=False,
            )
        )
        model: Any = self.ref_model if self.ref_model is not None else self.model
        if self.ref_model is None and getattr(self, "is_deepspeed_enabled", False):
            # As TRL: before training, ZeRO-3 parameters are sharded; an inference engine gathers them.
            from trl.models import prepare_deepspeed

            if getattr(self, "_precompute_engine", None) is None:
                self._precompute_engine = prepare_deepspeed(cast(Any, self.model), self.accelerator)
            model = self._precompute_engine
        columns: dict[str, list[torch.Tensor]] = {
            c: [] for c in ("ref_chosen_logps", "ref_rejected_logps", *CONDITIONAL_REF_COLUMNS)
        }
        for batch in loader:
            ref = self._reflective_reference(model, batch)
            values = self.accelerator.gather_for_metrics(
                (ref.chosen, ref.rejected, ref.chosen_cond, ref.rejected_cond)
            )
            for column, value in zip(columns, values, strict=True):
                columns[column].append(value.float().cpu())
        logger.info("InSPO: precomputed the conditional reference log-probs of the %s dataset", name)
        for column, parts in columns.items():
            if column in dataset.column_names:
                dataset = dataset.remove_columns(column)
            dataset = dataset.add_column(column, torch.cat(parts).tolist())  # type: ignore[arg-type]
        return dataset

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

        # MoE: as TRL's DPO, ask the policy forward for router logits so it returns `aux_loss`.
        aux_loss_enabled = getattr(self, "aux_loss_enabled", False)
        extra = {"output_router_logits": True} if aux_loss_enabled else None
        seg, outputs = reflective_forward(model, inputs, extra)
        policy, chosen_len, rejected_len = split_policy_logps(seg)
        warning = self._context_gain.observe(policy, chosen_len, rejected_len) if mode == "train" else None
        if warning and self.is_world_process_zero():
            logger.warning(warning)
        result = inspo_loss(policy, reference, chosen_len, rejected_len, self.inspo)
        self._last_pair_metrics = result.metrics  # read by prediction_step for compute_metrics
        loss = result.losses.mean()

        gather: Callable[[torch.Tensor], torch.Tensor] = self.accelerator.gather_for_metrics
        if aux_loss_enabled:  # loss + c · L_balance, metric `aux_loss`: exactly TRL's DPO
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss
            self._metrics[mode]["aux_loss"].append(gather(outputs.aux_loss).float().mean().item())
        for name, values in result.metrics.items():
            self._metrics[mode][name].append(gather(values).float().mean().item())
        return (loss, outputs) if return_outputs else loss


# -- construction helpers -----------------------------------------------------------------------

_DPO_INIT = inspect.signature(DPOTrainer.__init__)


@contextlib.contextmanager
def _no_reference_copy(trainer: Any) -> Iterator[None]:
    """While TRL's ``__init__`` runs, its reference copy of the policy is not loaded.

    ``DPOTrainer`` builds the policy from a path first (``trainer.model`` unset), then the reference
    copy with the same function once ``trainer.model`` is set; only the second call is skipped, and
    TRL keeps ``ref_model = None`` as it does with PEFT or precomputed reference log-probs.
    """
    import trl.trainer.dpo_trainer as dpo_module

    original = dpo_module.create_model_from_path

    def create(path: str, **kwargs: Any) -> Any:
        if getattr(trainer, "model", None) is not None:
            return None
        return original(path, **kwargs)

    dpo_module.create_model_from_path = create  # type: ignore[assignment]
    try:
        yield
    finally:
        dpo_module.create_model_from_path = original


def _bind_dpo_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The trainer's arguments by name, bound positionally as ``DPOTrainer.__init__`` binds them.

    The mix-in must read ``args`` and ``processing_class`` however the caller passed them. Keywords
    that ``DPOTrainer`` does not take (a subclass's own, such as Axolotl's ``dataset_tags``) pass on.
    """
    known = {k: v for k, v in kwargs.items() if k in _DPO_INIT.parameters}
    extra = {k: v for k, v in kwargs.items() if k not in _DPO_INIT.parameters}
    bound = _DPO_INIT.bind(None, *args, **known)  # raises TypeError as DPOTrainer would
    call = {k: v for k, v in bound.arguments.items() if k != "self"}
    if isinstance(call.get("ref_model"), TrainingArguments):
        kind = type(call["ref_model"]).__name__
        raise TypeError(
            "InSPOTrainer takes DPOTrainer's arguments in DPOTrainer's order (model, ref_model, args, "
            f"data_collator, train_dataset, ...): the second positional argument is a {kind}, not a "
            "reference model; pass it as args=..."
        )
    return {**call, **extra}


def _default_config(model: Any) -> Any:
    """The training arguments TRL makes when none are given, as an ``InSPOConfig`` (``<model>-InSPO``)."""
    from inspo_plugin.trl.config import InSPOConfig

    return InSPOConfig(output_dir=f"{_model_id(model).split('/')[-1]}-InSPO")


def _model_id(model: Any) -> str:
    """The model's Hub id or local path, as TRL names it (a path given as ``model``, or its config's)."""
    from trl.trainer.utils import get_config_model_id

    return model if isinstance(model, str) else str(get_config_model_id(model.config))


def _load_processing_class(model: Any, args: Any) -> Any:
    """The processing class TRL loads when none is given: ``AutoProcessor`` of the model's id or path.

    TRL loads it inside ``DPOTrainer.__init__``; the mix-in needs the tokenizer earlier (collator,
    bridges), so it loads it the same way and passes it on.
    """
    from transformers import AutoProcessor

    revision = (args.model_init_kwargs or {}).get("revision") if isinstance(model, str) else None
    return AutoProcessor.from_pretrained(
        _model_id(model), revision=revision, trust_remote_code=args.trust_remote_code
    )


# -- dataset helpers ------------------------------------------------------------------------------


def _column_names(dataset: Dataset | IterableDataset) -> list[str]:
    """The columns; a stream of unknown features shows them in its first row (where TRL looks too)."""
    if dataset.column_names is not None:
        return list(dataset.column_names)
    first = next(iter(dataset), None)
    return list(first) if first is not None else []


def _map_kwargs(dataset: Dataset | IterableDataset, num_proc: int | None, desc: str) -> dict[str, Any]:
    """``map``'s worker count and progress label; an ``IterableDataset`` maps lazily and takes neither."""
    return {} if isinstance(dataset, IterableDataset) else {"num_proc": num_proc, "desc": desc}


def _checked_rows(
    dataset: Dataset | IterableDataset, columns: list[str], source: str, num_proc: int | None
) -> Dataset | IterableDataset:
    """Number the rows and give each a verdict (:data:`DROP_COLUMN`), unless a dataset strategy did.

    A stream also numbers its positions (:data:`POSITION_COLUMN`), by which its drops are counted once.
    """
    if isinstance(dataset, IterableDataset):
        numbered = ROW_COLUMN in columns
        dataset = dataset.map(
            lambda _, i: {POSITION_COLUMN: i} if numbered else {POSITION_COLUMN: i, ROW_COLUMN: i},
            with_indices=True,
        )
    elif ROW_COLUMN not in columns:
        dataset = dataset.map(lambda _, i: {ROW_COLUMN: i}, with_indices=True, num_proc=num_proc)
    if MESSAGES_COLUMN in columns:
        dataset = _use_normalised_messages(dataset, columns, num_proc)
    if DROP_COLUMN not in columns:
        implicit_prompt = "prompt" not in columns and MESSAGES_COLUMN not in columns
        dataset = dataset.map(
            _validation_verdict,
            fn_kwargs={"source": source, "implicit_prompt": implicit_prompt},
            **_map_kwargs(dataset, num_proc, f"Checking {source} rows"),
        )
    return dataset


def _use_normalised_messages(
    dataset: Dataset | IterableDataset, columns: list[str], num_proc: int | None
) -> Dataset | IterableDataset:
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
    dataset = dataset.map(unpack, **_map_kwargs(dataset, num_proc, "Reading normalised rows"))
    dataset = dataset.remove_columns([c for c in ("prompt", "chosen", "rejected") if c in columns])
    return dataset.rename_columns(
        {"inspo_prompt": "prompt", "inspo_chosen": "chosen", "inspo_rejected": "rejected"}
    )


def _validation_verdict(row: dict[str, Any], source: str, implicit_prompt: bool = False) -> dict[str, Any]:
    """Why the row cannot be trained on (``invalid: <source>: row <i>, field <f>: ...``), or ``""``.

    With ``implicit_prompt`` (no ``prompt`` column) the prompt is first extracted as TRL's
    ``DPOTrainer`` does, with TRL's ``extract_prompt``, and the row's ``prompt``/``chosen``/``rejected``
    are replaced by the result; a row that cannot be split keeps its ``chosen`` as a placeholder prompt
    of the column's type and is dropped before tokenisation.
    """
    index = row[ROW_COLUMN]
    try:
        if not implicit_prompt:
            validate_trl_row(row, index=index, source=source)
            return {DROP_COLUMN: ""}
        check_implicit_prompt_row(row, index=index, source=source)
        extracted = extract_prompt({"chosen": row["chosen"], "rejected": row["rejected"]})
        validate_trl_row(extracted, index=index, source=source, implicit_prompt=True)
        return {**extracted, DROP_COLUMN: ""}
    except InvalidPreferenceRow as err:
        verdict: dict[str, Any] = {DROP_COLUMN: f"invalid: {err}"}
        return {"prompt": row.get("chosen"), **verdict} if implicit_prompt else verdict


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

    The arguments are ``DPOTrainer``'s, positionally in its order ``(model, ref_model, args,
    data_collator, train_dataset, eval_dataset, processing_class, ...)``; ``model`` may be a path or
    hub id, and an omitted ``processing_class`` is loaded from it as TRL does.

    Data: TRL's shapes (strings or conversations, an explicit ``prompt`` or one implicit in
    ``chosen``/``rejected``), as a ``Dataset`` or a streaming ``IterableDataset`` (then with
    ``max_steps`` and ``dataloader_num_workers=0``). Rows that cannot be used raise an error naming
    source, row and field, or with ``on_invalid_row="skip"`` are dropped and listed in
    ``drop_reports`` and ``<output_dir>/inspo_dropped_rows_<dataset>.jsonl`` (for a stream: at each
    log step, after each evaluation and at the end of training, with the rows read so far).

    ``compute_metrics`` receives an ``EvalPrediction`` whose ``predictions`` are ``[N, 6]`` float32,
    one row per pair, the columns being :data:`PREDICTION_COLUMNS`:

    ====  ======================  =====================================================
    col   name                    value (log-prob units, summed over the answer tokens)
    ====  ======================  =====================================================
    0     ``margin_uncond``       (log π(y_w|x) − r_w) − (log π(y_l|x) − r_l), the deployed policy
    1     ``margin_cond``         (log π(y_w|x,y_l) − r_w) − (log π(y_l|x,y_w) − r_l)
    2     ``logps_chosen``        log π(y_w | x)
    3     ``logps_rejected``      log π(y_l | x)
    4     ``logps_chosen_cond``   log π(y_w | x, y_l)
    5     ``logps_rejected_cond`` log π(y_l | x, y_w)
    ====  ======================  =====================================================

    with r_w, r_l the reference log-probs log π_ref(y|x) (log π_ref(y|x,y') in ``margin_cond`` with
    ``reference="conditional"``; without a reference the margins are plain log-prob differences).
    These are the per-pair values whose means are logged as ``eval_inspo/<name>``. ``label_ids``
    are zeros ``[N]``: in every pair the preferred answer is answer 0, the chosen one. With
    ``compute_metrics`` set, each evaluation batch scores the reference once more, for the margins
    (free with precomputed reference log-probs).
    """
