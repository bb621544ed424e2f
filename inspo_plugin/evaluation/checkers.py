"""Verifiable-instruction constraints in the style of IFEval.

Each constraint is a small frozen dataclass with

- ``kind``: its registry name (see :data:`CONSTRAINT_KINDS`),
- its parameters as dataclass fields,
- :meth:`Constraint.instruction`: the sentence appended to a prompt,
- :meth:`Constraint.check`: a deterministic pass/fail test of a response,
- :meth:`Constraint.enforce` / :meth:`Constraint.violate`: deterministic, constraint-aware edits
  that turn any non-empty response into one that passes (respectively fails) the check. They build
  the missing side of a preference pair when sampling alone gives none.

An empty (or whitespace-only) response fails every constraint: following an instruction requires
answering. Checks are plain string and regular-expression tests, with no randomness and no model.

Round trip: ``constraint_from_dict(c.to_dict()) == c``; ``to_dict()`` gives
``{"kind": ..., "params": {...}}``, the shape stored in the shipped preference data.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "CONSTRAINT_KINDS",
    "FILLER_SENTENCES",
    "BulletCount",
    "Constraint",
    "EndPhrase",
    "ExcludeKeyword",
    "IncludeKeyword",
    "JsonFormat",
    "Lowercase",
    "MaxSentences",
    "MaxWords",
    "MinWords",
    "NoCommas",
    "ParagraphCount",
    "Postscript",
    "Quotation",
    "StartPhrase",
    "Title",
    "Uppercase",
    "constraint_from_dict",
    "count_bullets",
    "count_paragraphs",
    "count_sentences",
    "count_words",
    "split_sentences",
]

_WORD_RE = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+")
_BARE_NUMBER_RE = re.compile(r"\d+[.)]")
_PARAGRAPH_SPLIT_RE = re.compile(r"\n[ \t]*\n")
_BULLET_RE = re.compile(r"^[ \t]*[*\-•+][ \t]+\S", re.MULTILINE)
_LIST_MARKER_RE = re.compile(r"^\s*(?:[*\-•+]|\d+[.)])\s+")
_TITLE_RE = re.compile(r"<<[^<>\n]+>>")
_POSTSCRIPT_RE = re.compile(r"^[ \t]*P\.[ \t]?S\.", re.MULTILINE | re.IGNORECASE)
_FENCE_RE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)
_SENTENCE_END = (".", "!", "?")

FILLER_SENTENCES: tuple[str, ...] = (
    "This is a simple way to get started.",
    "Small steps make a big difference over time.",
    "It is worth keeping this in mind.",
    "Everyone can find an approach that works for them.",
    "Practice makes the whole process easier.",
    "A little planning goes a long way.",
    "Try it and see what works best for you.",
    "Being patient helps more than you might expect.",
)
"""Neutral sentences used, in order, when an edit needs more words, sentences or paragraphs."""


# --------------------------------------------------------------------------------------------
# text statistics shared by the checks and the edits
# --------------------------------------------------------------------------------------------
def count_words(text: str) -> int:
    """Number of words: runs of letters/digits, joined by an inner apostrophe or hyphen."""
    return len(_WORD_RE.findall(text))


def split_sentences(text: str) -> list[str]:
    """Split into sentences: every line break ends one, and so does ``.``/``!``/``?`` before a space.

    Pieces without a word are dropped, and so are bare list numbers (the ``1.`` of ``1. Buy milk``),
    so a numbered item counts as one sentence. Abbreviations such as ``e.g.`` are not recognised.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        for piece in _SENTENCE_SPLIT_RE.split(line.strip()):
            piece = piece.strip()
            if piece and _WORD_RE.search(piece) and not _BARE_NUMBER_RE.fullmatch(piece):
                sentences.append(piece)
    return sentences


def count_sentences(text: str) -> int:
    """Number of sentences as :func:`split_sentences` finds them."""
    return len(split_sentences(text))


def count_paragraphs(text: str) -> int:
    """Number of non-empty blocks separated by blank lines."""
    return sum(1 for block in _PARAGRAPH_SPLIT_RE.split(text.strip()) if block.strip())


def count_bullets(text: str) -> int:
    """Number of markdown bullet lines (``* item``, ``- item``, ``• item`` or ``+ item``).

    Numbered items (``1. item``) and bold text (``**bold**``) are not bullets.
    """
    return len(_BULLET_RE.findall(text))


def _keyword_re(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![^\W_]){re.escape(keyword)}(?![^\W_])", re.IGNORECASE)


def _cut_words(text: str, n_words: int) -> str:
    """The text up to the end of its ``n_words``-th word (all of it when shorter)."""
    matches = list(_WORD_RE.finditer(text))
    if n_words <= 0:
        return ""
    if len(matches) <= n_words:
        return text
    return text[: matches[n_words - 1].end()]


def _with_full_stop(text: str) -> str:
    text = text.rstrip()
    return text if text.endswith(_SENTENCE_END) else text + "."


def _append_sentences(text: str, needed: Callable[[str], bool]) -> str:
    """Append filler sentences, one at a time (cycling), until ``needed(text)`` is false."""
    out = _with_full_stop(text) if text.strip() else ""
    i = 0
    while needed(out):
        sep = " " if out else ""
        out = out + sep + FILLER_SENTENCES[i % len(FILLER_SENTENCES)]
        i += 1
        if i > 10_000:  # pragma: no cover - every caller's condition is reachable
            raise RuntimeError("could not lengthen the text")
    return out


def _strip_markers(sentence: str) -> str:
    out = sentence.strip()
    for _ in range(100):
        new = _LIST_MARKER_RE.sub("", out).strip()
        if new == out:
            break
        out = new
    return out


def _plain_sentences(text: str) -> list[str]:
    """Sentences with any list markers (``*``, ``-``, ``1.``) removed from their start."""
    return [p for p in (_strip_markers(s) for s in split_sentences(text)) if _WORD_RE.search(p)]


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --------------------------------------------------------------------------------------------
# base class and registry
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Constraint:
    """A verifiable instruction. Subclasses set ``kind`` and implement the four methods."""

    kind: ClassVar[str] = ""

    def instruction(self) -> str:
        """The instruction sentence to append to a prompt."""
        raise NotImplementedError

    def check(self, response: str) -> bool:
        """True when ``response`` follows the instruction. Empty responses always fail."""
        if not response or not response.strip():
            return False
        return self._check(response)

    def _check(self, response: str) -> bool:
        raise NotImplementedError

    def enforce(self, response: str) -> str:
        """A minimal deterministic edit of ``response`` that passes :meth:`check` (unchanged if it does)."""
        if self.check(response):
            return response
        out = self._enforce(response.strip() or FILLER_SENTENCES[0])
        if not self.check(out):  # pragma: no cover - guarded by the unit tests
            raise AssertionError(f"{self.kind}: enforce() produced a failing response")
        return out

    def violate(self, response: str) -> str:
        """A minimal deterministic edit of ``response`` that fails :meth:`check` (unchanged if it does)."""
        if not self.check(response):
            return response
        out = self._violate(response.strip())
        if self.check(out):  # pragma: no cover - guarded by the unit tests
            raise AssertionError(f"{self.kind}: violate() produced a passing response")
        return out

    def _enforce(self, response: str) -> str:
        raise NotImplementedError

    def _violate(self, response: str) -> str:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The constraint's parameters as a plain dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., "params": {...}}``, JSON-serialisable."""
        return {"kind": self.kind, "params": self.params()}

    def apply_to(self, prompt: str) -> str:
        """``prompt`` followed by the instruction, separated by a space."""
        return f"{prompt.rstrip()} {self.instruction()}"


CONSTRAINT_KINDS: dict[str, type[Constraint]] = {}
"""Registry: kind name → constraint class."""


def _register[C: type[Constraint]](cls: C) -> C:
    if not cls.kind or cls.kind in CONSTRAINT_KINDS:
        raise ValueError(f"bad or duplicate constraint kind {cls.kind!r}")
    CONSTRAINT_KINDS[cls.kind] = cls
    return cls


def constraint_from_dict(data: Mapping[str, Any]) -> Constraint:
    """Build a constraint from ``{"kind": ..., "params": {...}}`` (the inverse of ``to_dict``).

    Raises:
        ValueError: unknown kind, or parameters that do not match the kind.
    """
    if not isinstance(data, Mapping) or "kind" not in data:
        raise ValueError(f"a constraint needs a 'kind' key, got {data!r}")
    kind = data["kind"]
    cls = CONSTRAINT_KINDS.get(kind)
    if cls is None:
        raise ValueError(
            f"unknown constraint kind {kind!r}; known kinds: {', '.join(sorted(CONSTRAINT_KINDS))}"
        )
    params = dict(data.get("params") or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    missing = sorted(
        f.name for f in dataclasses.fields(cls) if f.name not in params and f.default is dataclasses.MISSING
    )
    if unknown or missing:
        raise ValueError(
            f"constraint {kind!r} takes parameters {sorted(names)}; unknown: {unknown}, missing: {missing}"
        )
    return cls(**params)


def _positive_int(kind: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{kind}: {name} must be a positive integer, got {value!r}")


def _phrase(kind: str, name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{kind}: {name} must be a non-empty string, got {value!r}")


# --------------------------------------------------------------------------------------------
# length
# --------------------------------------------------------------------------------------------
@_register
@dataclass(frozen=True)
class MaxWords(Constraint):
    """At most ``max_words`` words (see :func:`count_words`)."""

    kind: ClassVar[str] = "max_words"
    max_words: int

    def __post_init__(self) -> None:
        _positive_int(self.kind, "max_words", self.max_words)

    def instruction(self) -> str:
        return f"Answer in at most {self.max_words} words."

    def _check(self, response: str) -> bool:
        return count_words(response) <= self.max_words

    def _enforce(self, response: str) -> str:
        kept: list[str] = []
        for sentence in split_sentences(response):
            if count_words(" ".join([*kept, sentence])) > self.max_words:
                break
            kept.append(sentence)
        if kept:
            return " ".join(kept)
        return _with_full_stop(_cut_words(response, self.max_words))

    def _violate(self, response: str) -> str:
        return _append_sentences(response, lambda t: count_words(t) <= self.max_words)


@_register
@dataclass(frozen=True)
class MinWords(Constraint):
    """At least ``min_words`` words."""

    kind: ClassVar[str] = "min_words"
    min_words: int

    def __post_init__(self) -> None:
        _positive_int(self.kind, "min_words", self.min_words)

    def instruction(self) -> str:
        return f"Answer with at least {self.min_words} words."

    def _check(self, response: str) -> bool:
        return count_words(response) >= self.min_words

    def _enforce(self, response: str) -> str:
        return _append_sentences(response, lambda t: count_words(t) < self.min_words)

    def _violate(self, response: str) -> str:
        if self.min_words == 1:
            return "..."  # no words at all: the only text with fewer than one word
        kept: list[str] = []
        for sentence in split_sentences(response):
            if count_words(" ".join([*kept, sentence])) >= self.min_words:
                break
            kept.append(sentence)
        if kept:
            return " ".join(kept)
        return _with_full_stop(_cut_words(response, max(1, (self.min_words - 1) // 2)))


@_register
@dataclass(frozen=True)
class MaxSentences(Constraint):
    """At most ``max_sentences`` sentences (see :func:`split_sentences`; line breaks also end one)."""

    kind: ClassVar[str] = "max_sentences"
    max_sentences: int

    def __post_init__(self) -> None:
        _positive_int(self.kind, "max_sentences", self.max_sentences)

    def instruction(self) -> str:
        unit = "sentence" if self.max_sentences == 1 else "sentences"
        return f"Answer in at most {self.max_sentences} {unit}."

    def _check(self, response: str) -> bool:
        return count_sentences(response) <= self.max_sentences

    def _enforce(self, response: str) -> str:
        sentences = _plain_sentences(response)[: self.max_sentences] or [FILLER_SENTENCES[0]]
        return " ".join(_with_full_stop(s) for s in sentences)

    def _violate(self, response: str) -> str:
        return _append_sentences(response, lambda t: count_sentences(t) <= self.max_sentences)


@_register
@dataclass(frozen=True)
class ParagraphCount(Constraint):
    """Exactly ``count`` paragraphs, separated by blank lines."""

    kind: ClassVar[str] = "paragraph_count"
    count: int

    def __post_init__(self) -> None:
        _positive_int(self.kind, "count", self.count)

    def instruction(self) -> str:
        if self.count == 1:
            return "Answer in a single paragraph, with no blank lines."
        return f"Answer in exactly {self.count} paragraphs, separated by a blank line."

    def _check(self, response: str) -> bool:
        return count_paragraphs(response) == self.count

    def _enforce(self, response: str) -> str:
        sentences = [_with_full_stop(s) for s in _plain_sentences(response)]
        i = 0
        while len(sentences) < self.count:
            sentences.append(FILLER_SENTENCES[i % len(FILLER_SENTENCES)])
            i += 1
        size, extra = divmod(len(sentences), self.count)
        groups, start = [], 0
        for g in range(self.count):
            end = start + size + (1 if g < extra else 0)
            groups.append(" ".join(sentences[start:end]))
            start = end
        return "\n\n".join(groups)

    def _violate(self, response: str) -> str:
        sentences = [_with_full_stop(s) for s in _plain_sentences(response)] or [FILLER_SENTENCES[0]]
        if self.count != 1:
            return " ".join(sentences)
        if len(sentences) == 1:
            sentences.append(FILLER_SENTENCES[1])
        half = (len(sentences) + 1) // 2
        return " ".join(sentences[:half]) + "\n\n" + " ".join(sentences[half:])


# --------------------------------------------------------------------------------------------
# case
# --------------------------------------------------------------------------------------------
def _has_cased(text: str) -> bool:
    return any(c.lower() != c.upper() for c in text)


@_register
@dataclass(frozen=True)
class Lowercase(Constraint):
    """The whole response in lowercase letters (at least one letter, no capital)."""

    kind: ClassVar[str] = "lowercase"

    def instruction(self) -> str:
        return "Your entire response must be in lowercase letters; no capital letters are allowed."

    def _check(self, response: str) -> bool:
        return _has_cased(response) and response == response.lower()

    def _enforce(self, response: str) -> str:
        return response.lower() if _has_cased(response) else "note: " + response

    def _violate(self, response: str) -> str:
        for i, c in enumerate(response):
            if c.lower() != c.upper():
                return response[:i] + c.upper() + response[i + 1 :]
        return "Note: " + response


@_register
@dataclass(frozen=True)
class Uppercase(Constraint):
    """The whole response in capital letters (at least one letter, no lowercase)."""

    kind: ClassVar[str] = "uppercase"

    def instruction(self) -> str:
        return "Your entire response must be in English and in capital letters only."

    def _check(self, response: str) -> bool:
        return _has_cased(response) and response == response.upper()

    def _enforce(self, response: str) -> str:
        return response.upper() if _has_cased(response) else "NOTE: " + response

    def _violate(self, response: str) -> str:
        return response.lower() if _has_cased(response) else "Note: " + response


# --------------------------------------------------------------------------------------------
# keywords
# --------------------------------------------------------------------------------------------
def _remove_keyword(response: str, keyword: str) -> str:
    pattern = _keyword_re(keyword)
    out = response
    for _ in range(100):
        new = _tidy(pattern.sub("", out))
        if new == out:
            break
        out = new
    return out


@_register
@dataclass(frozen=True)
class IncludeKeyword(Constraint):
    """The response contains ``keyword`` as a whole word (case-insensitive)."""

    kind: ClassVar[str] = "include_keyword"
    keyword: str

    def __post_init__(self) -> None:
        _phrase(self.kind, "keyword", self.keyword)

    def instruction(self) -> str:
        return f'Include the word "{self.keyword}" in your response.'

    def _check(self, response: str) -> bool:
        return _keyword_re(self.keyword).search(response) is not None

    def _enforce(self, response: str) -> str:
        return f"{_with_full_stop(response)} Keep {self.keyword} in mind."

    def _violate(self, response: str) -> str:
        out = _remove_keyword(response, self.keyword)
        return out if out.strip() else FILLER_SENTENCES[0]


@_register
@dataclass(frozen=True)
class ExcludeKeyword(Constraint):
    """The response does not contain ``keyword`` as a whole word (case-insensitive)."""

    kind: ClassVar[str] = "exclude_keyword"
    keyword: str

    def __post_init__(self) -> None:
        _phrase(self.kind, "keyword", self.keyword)

    def instruction(self) -> str:
        return f'Do not use the word "{self.keyword}" anywhere in your response.'

    def _check(self, response: str) -> bool:
        return _keyword_re(self.keyword).search(response) is None

    def _enforce(self, response: str) -> str:
        out = _remove_keyword(response, self.keyword)
        return out if out.strip() else FILLER_SENTENCES[0]

    def _violate(self, response: str) -> str:
        return f"{_with_full_stop(response)} Keep {self.keyword} in mind."


# --------------------------------------------------------------------------------------------
# format
# --------------------------------------------------------------------------------------------
@_register
@dataclass(frozen=True)
class BulletCount(Constraint):
    """Exactly ``count`` markdown bullet points (see :func:`count_bullets`)."""

    kind: ClassVar[str] = "bullet_count"
    count: int

    def __post_init__(self) -> None:
        _positive_int(self.kind, "count", self.count)

    def instruction(self) -> str:
        unit = "bullet point" if self.count == 1 else "bullet points"
        return (
            f"Your answer must contain exactly {self.count} {unit}, in markdown such as:\n* This is a point."
        )

    def _check(self, response: str) -> bool:
        return count_bullets(response) == self.count

    def _enforce(self, response: str) -> str:
        sentences = _plain_sentences(response)
        i = 0
        while len(sentences) < self.count:
            sentences.append(FILLER_SENTENCES[i % len(FILLER_SENTENCES)])
            i += 1
        return "\n".join(f"* {s}" for s in sentences[: self.count])

    def _violate(self, response: str) -> str:
        sentences = [_with_full_stop(s) for s in _plain_sentences(response)] or [FILLER_SENTENCES[0]]
        return " ".join(sentences)


def _strip_fence(text: str) -> str:
    text = text.strip()
    match = _FENCE_RE.match(text)
    return match.group(1).strip() if match else text


@_register
@dataclass(frozen=True)
class JsonFormat(Constraint):
    """The whole response is one JSON object or array (an enclosing markdown code fence is allowed)."""

    kind: ClassVar[str] = "json_format"

    def instruction(self) -> str:
        return "Wrap your entire output in JSON format: a single JSON object, and nothing else."

    def _check(self, response: str) -> bool:
        try:
            value = json.loads(_strip_fence(response))
        except ValueError:
            return False
        return isinstance(value, dict | list)

    def _enforce(self, response: str) -> str:
        return json.dumps({"answer": response.strip()}, ensure_ascii=False)

    def _violate(self, response: str) -> str:
        value = json.loads(_strip_fence(response))
        parts = [str(v) for v in (value.values() if isinstance(value, dict) else value) if str(v).strip()]
        return "Answer: " + (" ".join(parts) if parts else response)


@_register
@dataclass(frozen=True)
class StartPhrase(Constraint):
    """The response starts with ``phrase`` (case-insensitive, as whole words, leading spaces ignored)."""

    kind: ClassVar[str] = "start_phrase"
    phrase: str

    def __post_init__(self) -> None:
        _phrase(self.kind, "phrase", self.phrase)

    def instruction(self) -> str:
        return f'Start your response with the exact phrase "{self.phrase}".'

    def _check(self, response: str) -> bool:
        text, phrase = response.lstrip(), self.phrase.strip()
        if not text.lower().startswith(phrase.lower()):
            return False
        rest = text[len(phrase) :]
        return not (rest and phrase[-1].isalnum() and (rest[0].isalnum() or rest[0] == "_"))

    def _enforce(self, response: str) -> str:
        return f"{self.phrase.strip()} {response.lstrip()}"

    def _violate(self, response: str) -> str:
        out = response.lstrip()
        phrase = self.phrase.strip()
        for _ in range(100):
            if not self._check(out):
                break
            out = out[len(phrase) :].lstrip(" \t\n,;:.!?-")
        if not out.strip():
            out = FILLER_SENTENCES[0]
        return out


@_register
@dataclass(frozen=True)
class EndPhrase(Constraint):
    """The response ends with ``phrase`` (case-insensitive; trailing whitespace ignored)."""

    kind: ClassVar[str] = "end_phrase"
    phrase: str

    def __post_init__(self) -> None:
        _phrase(self.kind, "phrase", self.phrase)

    def instruction(self) -> str:
        return (
            f'Finish your response with this exact phrase: "{self.phrase}". No other words should follow it.'
        )

    def _check(self, response: str) -> bool:
        return response.rstrip().lower().endswith(self.phrase.strip().lower())

    def _enforce(self, response: str) -> str:
        return f"{_with_full_stop(response)}\n\n{self.phrase.strip()}"

    def _violate(self, response: str) -> str:
        out = response.rstrip()
        phrase = self.phrase.strip()
        for _ in range(100):
            if not self._check(out):
                break
            out = out[: -len(phrase)].rstrip()
        if not out.strip():
            out = FILLER_SENTENCES[0]
        return out


@_register
@dataclass(frozen=True)
class NoCommas(Constraint):
    """No comma anywhere in the response (ASCII ``,`` or full-width ``，``)."""

    kind: ClassVar[str] = "no_commas"

    def instruction(self) -> str:
        return "In your entire response, refrain from the use of any commas."

    def _check(self, response: str) -> bool:
        return "," not in response and "，" not in response

    def _enforce(self, response: str) -> str:
        out = re.sub(r"[,，]\s*", " ", response)
        return _tidy(out) or FILLER_SENTENCES[0]

    def _violate(self, response: str) -> str:
        text = response.lstrip()
        if len(text) > 1 and text[0].isupper() and text[1].islower():
            text = text[0].lower() + text[1:]
        return "In short, " + text


def _strip_quotes(text: str) -> str:
    return text.strip().strip('"“”').strip()


@_register
@dataclass(frozen=True)
class Quotation(Constraint):
    """The whole response is wrapped in double quotation marks (``"..."`` or ``“...”``)."""

    kind: ClassVar[str] = "quotation"

    def instruction(self) -> str:
        return "Wrap your entire response with double quotation marks."

    def _check(self, response: str) -> bool:
        text = response.strip()
        if len(text) < 2:
            return False
        return (text[0] == '"' and text[-1] == '"') or (text[0] == "“" and text[-1] == "”")

    def _enforce(self, response: str) -> str:
        return f'"{_strip_quotes(response) or FILLER_SENTENCES[0]}"'

    def _violate(self, response: str) -> str:
        return _strip_quotes(response) or FILLER_SENTENCES[0]


@_register
@dataclass(frozen=True)
class Title(Constraint):
    """The response contains a title wrapped in double angular brackets, such as ``<<My Title>>``."""

    kind: ClassVar[str] = "title"

    def instruction(self) -> str:
        return (
            "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."
        )

    def _check(self, response: str) -> bool:
        return _TITLE_RE.search(response) is not None

    def _enforce(self, response: str) -> str:
        words = _WORD_RE.findall(_strip_markers(response))[:4]
        title = " ".join(w[:1].upper() + w[1:] for w in words) or "Answer"
        return f"<<{title}>>\n\n{response}"

    def _violate(self, response: str) -> str:
        out = response
        for _ in range(100):
            new = _TITLE_RE.sub("", out)
            if new == out:
                break
            out = new
        return _tidy(out) or FILLER_SENTENCES[0]


@_register
@dataclass(frozen=True)
class Postscript(Constraint):
    """The response has a postscript: a line starting with ``P.S.``."""

    kind: ClassVar[str] = "postscript"

    def instruction(self) -> str:
        return "At the end of your response, please explicitly add a postscript starting with P.S."

    def _check(self, response: str) -> bool:
        return _POSTSCRIPT_RE.search(response) is not None

    def _enforce(self, response: str) -> str:
        return f"{_with_full_stop(response)}\n\nP.S. {FILLER_SENTENCES[2]}"

    def _violate(self, response: str) -> str:
        match = _POSTSCRIPT_RE.search(response)
        out = response[: match.start()] if match else response
        return _tidy(out) or FILLER_SENTENCES[0]
