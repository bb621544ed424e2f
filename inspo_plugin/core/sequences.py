"""Reflective sequences: each response scored after the model has seen the alternative.

Per preference pair (x, y_w, y_l) two token sequences are built:

    A = x · y_w · bridge · y_l    segment 1: log π(y_w | x)    segment 2: log π(y_l | x, y_w)
    B = x · y_l · bridge · y_w    segment 1: log π(y_l | x)    segment 2: log π(y_w | x, y_l)

``x`` is the chat-formatted prompt ending with the assistant header, each response ends with its
end-of-turn tokens, and the bridge is what the chat template puts between two answers (template
``revise``: a user turn asking the model to reconsider, then a new assistant header). With causal
attention segment 1 never sees what follows it, so it is exactly the standard DPO log-prob, and one
forward over A and B yields all four log-probs InSPO and DPO need.

Boundaries come from token ids of separately tokenized pieces, never from searching rendered text:
a response that contains a literal end-of-turn string cannot move a boundary.

Truncation policy, when A or B would exceed ``max_length``: the prompt and the bridge are never
cut; responses are shortened from the tail, the longer one first, until both fit. A truncated
response loses its end-of-turn tokens; the bridge then supplies the full turn end, so the second
answer still starts in a well-formed turn. Rows whose prompt and bridge alone leave no room for one
token of each response are dropped and counted by the caller (:class:`RowTooLong`).

This module needs a tokenizer only (no torch, no training framework).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TEMPLATES: tuple[str, ...] = ("revise", "concat", "custom")
"""How the alternative is shown; see :func:`make_reflection_format`."""

DEFAULT_REFLECTION_PROMPT = (
    "Reconsider the answer above: what could be better or what is wrong with it? "
    "Then answer my original request again."
)

# Stand-in contents used only to read the chat template's own turn structure; they are not data.
_SENTINEL_USER = "INSPO_SENTINEL_USER_7f3a"
_SENTINEL_ANSWER = "INSPO_SENTINEL_ANSWER_7f3a"


class Segment(enum.IntEnum):
    """Per-token segment labels of a reflective sequence."""

    PAD = 0
    PROMPT = 1
    FIRST = 2  # first answer: scored given x only
    BRIDGE = 3
    SECOND = 4  # second answer: scored given x and the first answer


class RowTooLong(ValueError):
    """The prompt and bridge of a row leave no room for the responses within ``max_length``."""


@dataclass(frozen=True)
class ReflectionFormat:
    """How the alternative is shown: the token ids that follow an answer's content.

    ``turn_end_and_bridge`` is what the template renders after the first assistant answer's text:
    its end-of-turn tokens, then the bridge (for ``revise``/``custom``: the reflection user turn and
    the next assistant header; for ``concat``: nothing more).
    """

    template: str
    turn_end_and_bridge: tuple[int, ...]
    reflection_prompt: str | None
    text: str

    def bridge_after(self, response_ids: Sequence[int]) -> list[int]:
        """The bridge to put after ``response_ids``: the part of the turn end it does not already hold.

        Datasets differ in how much of the turn end a response carries (``answer<|im_end|>`` or
        ``answer<|im_end|>\\n``), so the longest prefix of the turn end that the response already
        ends with is skipped.
        """
        full = self.turn_end_and_bridge
        for k in range(min(len(full), len(response_ids)), 0, -1):
            if tuple(response_ids[-k:]) == full[:k]:
                return list(full[k:])
        return list(full)


def reflection_message(template: str, reflection_prompt: str | None) -> str | None:
    """The reflection user message of ``template``: none for ``concat``, the default for ``revise``."""
    if template == "concat":
        return None
    return DEFAULT_REFLECTION_PROMPT if template == "revise" else str(reflection_prompt)


def make_reflection_format(
    tokenizer: Any,
    template: str = "revise",
    reflection_prompt: str | None = None,
    chat_template: str | None = None,
) -> ReflectionFormat:
    """Read the bridge from the tokenizer's chat template.

    Args:
        tokenizer: a Hugging Face tokenizer with a chat template (or pass ``chat_template``).
        template: ``revise`` (default), ``concat`` or ``custom``.
        reflection_prompt: the reflection user message; required by ``custom``, not allowed otherwise.
        chat_template: a Jinja chat template overriding the tokenizer's.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; valid: {', '.join(TEMPLATES)}")
    if template == "custom":
        if not reflection_prompt or not reflection_prompt.strip():
            raise ValueError("template 'custom' needs a non-empty reflection_prompt")
    elif reflection_prompt is not None:
        raise ValueError(
            f"reflection_prompt is only used by template 'custom' (got template {template!r}); "
            "set template: custom to use your own reflection message"
        )
    if chat_template is None and not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; set one (e.g. chat_template: chatml)")

    user = {"role": "user", "content": _SENTINEL_USER}
    answer = {"role": "assistant", "content": _SENTINEL_ANSWER}
    message = reflection_message(template, reflection_prompt)
    if message is None:
        rendered = _render(tokenizer, [user, answer], False, chat_template)
    else:
        reflect = {"role": "user", "content": message}
        rendered = _render(tokenizer, [user, answer, reflect], True, chat_template)
    if rendered.count(_SENTINEL_ANSWER) != 1:
        raise ValueError("could not locate the assistant turn in the chat template's output")
    after_answer = rendered.split(_SENTINEL_ANSWER, 1)[1]
    ids = tokenizer(after_answer, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError("the chat template renders nothing after an assistant answer (no end-of-turn)")
    return ReflectionFormat(template, tuple(ids), message, after_answer)


def _render(
    tokenizer: Any, messages: list[dict[str, str]], generation: bool, chat_template: str | None
) -> str:
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation}
    if chat_template is not None:
        kwargs["chat_template"] = chat_template
    return str(tokenizer.apply_chat_template(messages, **kwargs))


@dataclass(frozen=True)
class ReflectivePair:
    """Token ids of one pair after truncation, and the two reflective sequences built from them."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    bridge_after_chosen: list[int]
    bridge_after_rejected: list[int]
    truncated: bool = False

    def sequence_a(self) -> tuple[list[int], list[int]]:
        """A = x · y_w · bridge · y_l, with segment labels."""
        return _assemble(self.prompt_ids, self.chosen_ids, self.bridge_after_chosen, self.rejected_ids)

    def sequence_b(self) -> tuple[list[int], list[int]]:
        """B = x · y_l · bridge · y_w, with segment labels."""
        return _assemble(self.prompt_ids, self.rejected_ids, self.bridge_after_rejected, self.chosen_ids)

    @property
    def length(self) -> int:
        """Length of the longer of A and B."""
        shared = len(self.prompt_ids) + len(self.chosen_ids) + len(self.rejected_ids)
        return shared + max(len(self.bridge_after_chosen), len(self.bridge_after_rejected))


def _assemble(
    prompt: list[int], first: list[int], bridge: list[int], second: list[int]
) -> tuple[list[int], list[int]]:
    ids = prompt + first + bridge + second
    segments = (
        [Segment.PROMPT] * len(prompt)
        + [Segment.FIRST] * len(first)
        + [Segment.BRIDGE] * len(bridge)
        + [Segment.SECOND] * len(second)
    )
    return ids, [int(s) for s in segments]


def build_reflective_pair(
    prompt_ids: Sequence[int],
    chosen_ids: Sequence[int],
    rejected_ids: Sequence[int],
    fmt: ReflectionFormat,
    max_length: int | None = None,
) -> ReflectivePair:
    """Apply the truncation policy and attach the bridges.

    Raises:
        RowTooLong: the prompt and the bridge leave fewer than two tokens for the two responses.
    """
    prompt, chosen, rejected = list(prompt_ids), list(chosen_ids), list(rejected_ids)
    pair = _with_bridges(prompt, chosen, rejected, fmt, truncated=False)
    if max_length is None or pair.length <= max_length:
        return pair
    budget = max_length - len(prompt) - len(fmt.turn_end_and_bridge)
    if budget < 2:
        raise RowTooLong(
            f"prompt ({len(prompt)} tokens) + bridge ({len(fmt.turn_end_and_bridge)} tokens) leave "
            f"{max(budget, 0)} of max_length={max_length} tokens for the two responses"
        )
    keep_chosen, keep_rejected = _split_budget(len(chosen), len(rejected), budget)
    return _with_bridges(prompt, chosen[:keep_chosen], rejected[:keep_rejected], fmt, truncated=True)


def _split_budget(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Shorten the longer response first until ``a + b <= budget``; both keep >= 1 token."""
    if len_a + len_b <= budget:
        return len_a, len_b
    half = budget // 2
    if len_a <= half:
        return len_a, budget - len_a
    if len_b <= budget - half:
        return budget - len_b, len_b
    return half, budget - half


def _with_bridges(
    prompt: list[int], chosen: list[int], rejected: list[int], fmt: ReflectionFormat, truncated: bool
) -> ReflectivePair:
    return ReflectivePair(
        prompt, chosen, rejected, fmt.bridge_after(chosen), fmt.bridge_after(rejected), truncated=truncated
    )


def strip_duplicate_bos(ids: Sequence[int], bos_token_id: int | None) -> list[int]:
    """Drop a second BOS that appears when a template writes BOS and the tokenizer adds one too."""
    ids = list(ids)
    if bos_token_id is not None and len(ids) >= 2 and ids[0] == bos_token_id and ids[1] == bos_token_id:
        return ids[1:]
    return ids


# --- standalone tokenisation (preview, evaluation), matching TRL's DPO preprocessing -----------


def is_conversational(value: Any) -> bool:
    """Whether a prompt/response value is a list of chat messages."""
    return isinstance(value, list) and all(isinstance(m, Mapping) and "role" in m for m in value)


def tokenize_preference_row(tokenizer: Any, row: Mapping[str, Any]) -> dict[str, list[int]]:
    """Tokenize a normalised row into ``prompt_ids``, ``chosen_ids``, ``rejected_ids``.

    Same rules as TRL's ``DPOTrainer`` preprocessing, so that segment 1 of the reflective sequences
    is the sequence DPO scores: conversational rows render prompt (with generation header) and
    prompt + response with the chat template, and the response ids are what follows the prompt;
    string rows get the EOS appended to responses that lack it.
    """
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    if is_conversational(prompt):
        prompt_ids = _template_ids(tokenizer, prompt, True)
        chosen_full = _template_ids(tokenizer, prompt + chosen, False)
        rejected_full = _template_ids(tokenizer, prompt + rejected, False)
    else:
        eos = tokenizer.eos_token or ""
        chosen = chosen if chosen.endswith(eos) else chosen + eos
        rejected = rejected if rejected.endswith(eos) else rejected + eos
        prompt_ids = tokenizer(prompt)["input_ids"]
        chosen_full = tokenizer(prompt + chosen)["input_ids"]
        rejected_full = tokenizer(prompt + rejected)["input_ids"]
    return {
        "prompt_ids": strip_duplicate_bos(prompt_ids, tokenizer.bos_token_id),
        "chosen_ids": list(chosen_full[len(prompt_ids) :]),
        "rejected_ids": list(rejected_full[len(prompt_ids) :]),
    }


def _template_ids(tokenizer: Any, messages: list[Any], generation: bool) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=generation, return_dict=True
    )
    return list(out["input_ids"])


# --- preview -------------------------------------------------------------------------------------

_SEGMENT_LABELS = {
    ("A", Segment.FIRST): "FIRST ANSWER = chosen · scores log π(y_w | x)",
    ("A", Segment.SECOND): "SECOND ANSWER = rejected · scores log π(y_l | x, y_w)",
    ("B", Segment.FIRST): "FIRST ANSWER = rejected · scores log π(y_l | x)",
    ("B", Segment.SECOND): "SECOND ANSWER = chosen · scores log π(y_w | x, y_l)",
}


def render_preview(tokenizer: Any, pair: ReflectivePair, title: str = "") -> str:
    """Human-readable A and B with every segment boundary marked."""
    lines: list[str] = []
    for name, (ids, segments) in (("A", pair.sequence_a()), ("B", pair.sequence_b())):
        head = f"── {title} sequence {name} ({len(ids)} tokens"
        head += ", responses truncated)" if pair.truncated else ")"
        lines.append(head + " " + "─" * max(4, 72 - len(head)))
        for segment, chunk in _runs(ids, segments):
            label = _SEGMENT_LABELS.get((name, segment), segment.name)
            lines.append(f"▶ {label} [{len(chunk)} tokens]")
            lines.append(tokenizer.decode(chunk, skip_special_tokens=False))
        lines.append("")
    return "\n".join(lines)


def _runs(ids: list[int], segments: list[int]) -> list[tuple[Segment, list[int]]]:
    runs: list[tuple[Segment, list[int]]] = []
    for token, segment in zip(ids, segments, strict=True):
        if runs and runs[-1][0] == segment:
            runs[-1][1].append(token)
        else:
            runs.append((Segment(segment), [token]))
    return runs
