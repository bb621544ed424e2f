"""Every InSPO option, declared once.

Each option is one field of :class:`InSPOOptions`: its name, its type (numbers with bounds carry a
:class:`Range` in ``Annotated``), its default, its help text (``metadata["help"]``) and, for a
choice, its valid values (``metadata["choices"]``, read from the registry that defines them: the
loss types from :data:`~inspo_plugin.core.objectives.OBJECTIVES`, the templates from
:data:`~inspo_plugin.core.sequences.TEMPLATES`). Everything else derives from this class:

- TRL: :class:`~inspo_plugin.trl.InSPOConfig` is ``DPOConfig`` plus these fields (so
  ``HfArgumentParser`` shows the same help and choices);
- Axolotl: the ``inspo:`` block is read with :meth:`InSPOOptions.from_mapping` (β comes from
  ``rl_beta``), and reaches the trainer through its training arguments;
- the command line takes its ``--template`` choices from here.

Validation happens in one place, :meth:`InSPOOptions.validate`, with one message format:
``<where>.<option>: <problem>``. Adding an option means adding a field here (and reading it where it
acts); adding a loss type means adding an entry to ``OBJECTIVES``.

This module is framework-free (it imports the core registries only).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import NoneType, UnionType
from typing import Annotated, Any, Self

from inspo_plugin.core.context import DEFAULT_CONTEXT_GAIN_WARNING
from inspo_plugin.core.objectives import OBJECTIVES, REFERENCE_MODES
from inspo_plugin.core.rows import ON_INVALID_ROW
from inspo_plugin.core.sequences import TEMPLATES

ON_NONFINITE: tuple[str, ...] = ("stop", "skip")
"""What a training step with a non-finite loss or gradient does (option ``on_nonfinite``)."""


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric option (any of ``ge``, ``gt``, ``le``, ``lt``)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range, or ``None``."""
        inside = (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )
        return None if inside else f"must be {self.describe()}, got {value}"

    def describe(self) -> str:
        parts = [
            f"{word} {bound:g}"
            for bound, word in ((self.ge, ">="), (self.gt, ">"), (self.le, "<="), (self.lt, "<"))
            if bound is not None
        ]
        return " and ".join(parts)


def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with its help text and, for a choice, the valid values."""
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["help"] = f"{help} One of: {', '.join(choices)}."
        metadata["choices"] = choices
    return field(default=default, metadata=metadata)


class OptionError(ValueError):
    """An InSPO option that is unknown, of the wrong type or out of range; the message names it."""


@dataclass
class InSPOOptions:
    """The InSPO options (everything InSPO adds to a DPO run). Defaults follow the paper's scripts."""

    loss_type: str = option(
        "sigmoid",
        "InSPO objective on the cross-conditioned log-probs: sigmoid −log σ(β(Δ_w−Δ_l)) (InSPO-DPO), "
        "one_sided −log σ(−βΔ_l), ipo (Δ_w−Δ_l−1/(2τ))², hinge max(0, 1−β(Δ_w−Δ_l)), robust "
        "(label-smoothed), rdpo (+α(|y_w|−|y_l|)), simpo (length-normalised, reference-free), orpo "
        "(odds ratio + NLL, reference-free).",
        choices=tuple(OBJECTIVES),
    )
    beta: Annotated[float, Range(gt=0)] = option(
        0.1, "β, the inverse temperature of the objective (> 0). Axolotl: rl_beta."
    )
    template: str = option(
        "revise",
        "How the alternative answer is shown: revise (a user turn asks to reconsider, then the "
        "answer), concat (the answer follows the alternative's end of turn), custom (revise with "
        "reflection_prompt).",
        choices=TEMPLATES,
    )
    reflection_prompt: str | None = option(
        None, "The reflection user message of template custom (required there, refused otherwise)."
    )
    reference: str = option(
        "unconditional",
        "Reference terms: unconditional π_ref(y|x) as in the paper; conditional π_ref(y|x,y') (ablation).",
        choices=REFERENCE_MODES,
    )
    uncond_weight: Annotated[float, Range(ge=0)] = option(
        0.0,
        "Weight (>= 0) of the same loss on the unconditional log-probs π_θ(y|x), the deployed policy; "
        "0: the paper's objective.",
    )
    sft_weight: Annotated[float, Range(ge=0)] = option(
        0.0, "Weight (>= 0) of the chosen answer's mean negative log-likelihood given x."
    )
    label_smoothing: Annotated[float, Range(ge=0, lt=0.5)] = option(
        0.0, "ε of loss_type robust, in [0, 0.5): −(1−ε) log σ(βm) − ε log σ(−βm)."
    )
    ipo_tau: Annotated[float | None, Range(gt=0)] = option(
        None,
        "τ of loss_type ipo (> 0): target margin 1/(2τ). Default (null): β, as DPO users set IPO's τ "
        "through β.",
    )
    rdpo_alpha: float = option(0.01, "α of loss_type rdpo: weight of the length difference |y_w|−|y_l|.")
    simpo_gamma: float = option(0.5, "γ of loss_type simpo: the target reward margin.")
    orpo_lambda: Annotated[float | None, Range(ge=0)] = option(
        None,
        "λ of loss_type orpo (>= 0): weight of the odds-ratio term. Default (null): β, as DPO users set "
        "ORPO's λ through β.",
    )
    on_invalid_row: str = option(
        "error",
        "What an unusable row does: error stops at the first one (naming file, row and field); "
        "skip drops it, counts it and lists it in the dropped-rows report.",
        choices=ON_INVALID_ROW,
    )
    on_nonfinite: str = option(
        "stop",
        "What a training step whose loss or gradients hold a NaN or Inf does: stop ends the run with an "
        "error naming the step and the rows of its batch; skip logs it the same way and leaves the "
        "weights and the optimizer state as they were before that step.",
        choices=ON_NONFINITE,
    )
    context_gain_warning: Annotated[float | None, Range(gt=0)] = option(
        DEFAULT_CONTEXT_GAIN_WARNING,
        "Threshold (> 0), in nats per answer token, of the mean context gain log π(y|x,y') − log π(y|x) "
        "over the first training batches: above it one warning says the conditional terms are mostly "
        "copying the alternative (near-duplicate pairs, such as minimal edits). null: no check.",
    )

    def __post_init__(self) -> None:
        self.validate()

    # -- reading and checking ---------------------------------------------------------------------

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(InSPOOptions))

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], where: str = "inspo", elsewhere: Mapping[str, str] | None = None
    ) -> Self:
        """Options from a mapping (a YAML block), refusing unknown keys with the list of valid ones.

        Args:
            values: option name → value; missing options take their defaults.
            where: prefix of error messages (``inspo`` → ``inspo.loss_type: ...``).
            elsewhere: options a framework sets through its own key (``{"beta": "rl_beta"}``); the
                mapping must not hold them.
        """
        elsewhere = elsewhere or {}
        valid = [n for n in cls.names() if n not in elsewhere]
        for key in values:
            if key in elsewhere:
                raise OptionError(f"{where}.{key}: set it with {elsewhere[key]}, not in this block")
            if key not in valid:
                raise OptionError(f"{where}.{key}: unknown option. Valid options: {', '.join(valid)}")
        options = cls.__new__(cls)  # filled and checked below, so that errors carry `where`
        for f in dataclasses.fields(InSPOOptions):
            setattr(options, f.name, values.get(f.name, f.default))
        options.validate(where)
        for name, hint in _type_hints().items():  # YAML's 1 is an int: store numbers as floats
            if float in _allowed_types(hint) and isinstance(getattr(options, name), int):
                setattr(options, name, float(getattr(options, name)))
        return options

    def validate(self, where: str = "") -> None:
        """Check every option's type, choices and range, and the rules that join options.

        Raises:
            OptionError: ``<where>.<option>: <problem>``, naming the first bad option.
        """
        prefix = f"{where}." if where else ""
        hints = _type_hints()
        for f in dataclasses.fields(InSPOOptions):
            value = getattr(self, f.name)
            problem = _type_problem(value, hints[f.name], f.metadata.get("choices"))
            if problem:
                raise OptionError(f"{prefix}{f.name}: {problem}")
        if self.template == "custom" and not (self.reflection_prompt or "").strip():
            raise OptionError(f"{prefix}reflection_prompt: template custom needs a reflection message")
        if self.template != "custom" and self.reflection_prompt is not None:
            raise OptionError(
                f"{prefix}reflection_prompt: only used by template custom (template is {self.template!r})"
            )
        if self.label_smoothing and self.loss_type != "robust":
            raise OptionError(
                f"{prefix}label_smoothing: only used by loss_type robust (loss_type is {self.loss_type!r})"
            )

    def to_dict(self) -> dict[str, Any]:
        """The options as plain values, in declaration order."""
        return {name: getattr(self, name) for name in InSPOOptions.names()}

    @property
    def needs_reference(self) -> bool:
        """Whether the objective reads reference log-probs (the conditional ablation always does)."""
        return OBJECTIVES[self.loss_type].needs_reference or self.reference == "conditional"


@cache
def _type_hints() -> dict[str, Any]:
    return typing.get_type_hints(InSPOOptions, include_extras=True)


def _allowed_types(hint: Any) -> tuple[Any, ...]:
    """The types an option accepts: ``Annotated[float | None, …]`` → ``(float, NoneType)``."""
    base = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
    return typing.get_args(base) if isinstance(base, UnionType) else (base,)


def _type_problem(value: Any, hint: Any, choices: tuple[str, ...] | None) -> str | None:
    bounds: Range | None = None
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        bounds = next((e for e in extras if isinstance(e, Range)), None)
    allowed = typing.get_args(hint) if isinstance(hint, UnionType) else (hint,)
    if value is None:
        return None if NoneType in allowed else "must be set (got null)"
    if float in allowed:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {type(value).__name__} {value!r}"
        if value != value:  # NaN
            return "expected a number, got NaN"
        return bounds.problem(value) if bounds else None
    if str in allowed:
        if not isinstance(value, str):
            return f"expected a string, got {type(value).__name__} {value!r}"
        if choices is not None and value not in choices:
            return f"{value!r} is not one of {', '.join(choices)}"
        return None
    raise TypeError(f"InSPOOptions: no check for type {hint!r}")  # a new option with a new type
