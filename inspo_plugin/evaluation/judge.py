"""Optional pairwise LLM judge through any OpenAI-compatible ``/v1/chat/completions`` endpoint.

The judge sees an instruction and two outputs and answers ``A`` or ``B`` (an AlpacaEval-style
pairwise prompt). Every comparison is asked twice, the second time with the two outputs swapped,
so a judge that always prefers one position gives a tie instead of a spurious win:

- the first output is preferred in both orders → score 1.0 (win),
- in neither order → 0.0 (loss),
- in one order only → 0.5 (tie: the judge followed the position, not the content).

Only the standard library is used (``urllib``). Each HTTP request has a timeout; connection
errors, timeouts, HTTP 429 and 5xx are retried a bounded number of times with exponential
back-off; other HTTP errors and replies that are not a clear ``A``/``B`` raise :class:`JudgeError`
at once.

Configuration: ``base_url`` (for example ``http://localhost:8000/v1``; ``/chat/completions`` is
appended unless already there) and ``model`` are required, as arguments or through
``INSPO_JUDGE_BASE_URL`` / ``INSPO_JUDGE_MODEL``; the API key comes from the argument or
``INSPO_JUDGE_API_KEY`` and may be absent for local servers that need none.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "JUDGE_SYSTEM_PROMPT",
    "JudgeError",
    "PairwiseJudge",
    "PairwiseVerdict",
    "build_judge_messages",
    "judge_pairwise",
    "parse_choice",
]

JUDGE_SYSTEM_PROMPT = (
    "You are a helpful assistant who evaluates the quality of answers written by AI models. You compare "
    "two outputs for the same instruction and decide which one is better: more helpful, more accurate, "
    "and more faithful to everything the instruction asks for. Answer with a single letter."
)

_USER_TEMPLATE = """Which of the two outputs below better follows the instruction?

## Instruction

{instruction}

## Output A

{output_a}

## Output B

{output_b}

## Your answer

Reply with exactly one letter: "A" if Output A is better, or "B" if Output B is better. Do not explain."""

_CHOICE_RE = re.compile(r"^(?:output\s*)?\(?\s*([AB])\s*\)?[.!]?$", re.IGNORECASE)


class JudgeError(RuntimeError):
    """The judge endpoint failed, or replied with something that is not a choice."""


def build_judge_messages(instruction: str, output_a: str, output_b: str) -> list[dict[str, str]]:
    """The chat messages for one comparison (system prompt + user prompt)."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": _USER_TEMPLATE.format(instruction=instruction, output_a=output_a, output_b=output_b),
        },
    ]


def parse_choice(content: str) -> str:
    """``"A"`` or ``"B"`` from a judge reply such as ``A``, ``"B"``, ``**A**``, ``Output (b)``.

    Raises:
        JudgeError: anything else (an empty reply, both letters, a sentence).
    """
    text = content.strip().strip("\"'`*_ \n\t")
    match = _CHOICE_RE.match(text)
    if match is None:
        excerpt = content.strip()[:80]
        raise JudgeError(f"the judge's reply is not 'A' or 'B': {excerpt!r}")
    return match.group(1).upper()


@dataclass(frozen=True)
class PairwiseVerdict:
    """Both orders of one comparison. ``score`` is for the first output: 1.0, 0.5 or 0.0."""

    first_order: str  # the judge's letter with (A = first output, B = second output)
    swapped_order: str  # the judge's letter with (A = second output, B = first output)

    @property
    def score(self) -> float:
        wins = (self.first_order == "A") + (self.swapped_order == "B")
        return wins / 2.0

    @property
    def consistent(self) -> bool:
        """True when both orders picked the same output."""
        return self.score != 0.5


@dataclass
class PairwiseJudge:
    """A pairwise judge on an OpenAI-compatible chat-completions endpoint.

    Args:
        model: the model name sent in the request (or ``INSPO_JUDGE_MODEL``).
        base_url: endpoint root such as ``https://api.example.com/v1`` (or ``INSPO_JUDGE_BASE_URL``).
        api_key: bearer token (or ``INSPO_JUDGE_API_KEY``); omitted from the request when empty.
        timeout: seconds per HTTP request.
        max_retries: extra attempts after a retryable failure (0 to 10).
        retry_backoff: seconds before the first retry, doubled for each further one.
        max_tokens: completion budget per reply.
    """

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 60.0
    max_retries: int = 2
    retry_backoff: float = 1.0
    max_tokens: int = 4
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        self.model = self.model or os.environ.get("INSPO_JUDGE_MODEL")
        self.base_url = self.base_url or os.environ.get("INSPO_JUDGE_BASE_URL")
        if self.api_key is None:
            self.api_key = os.environ.get("INSPO_JUDGE_API_KEY")
        if not self.model:
            raise JudgeError("no judge model: pass model=... or set INSPO_JUDGE_MODEL")
        if not self.base_url:
            raise JudgeError("no judge endpoint: pass base_url=... (for example http://localhost:8000/v1)")
        if not self.base_url.startswith(("http://", "https://")):
            raise JudgeError(f"the judge base_url must start with http:// or https://, got {self.base_url!r}")
        if not 0 <= self.max_retries <= 10:
            raise JudgeError("max_retries must be between 0 and 10")
        if self.timeout <= 0:
            raise JudgeError("timeout must be positive")

    @property
    def url(self) -> str:
        """The full chat-completions URL."""
        base = str(self.base_url).rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    def _request_once(self, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read()
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise JudgeError(f"the judge endpoint returned invalid JSON: {raw[:80]!r}") from error
        if not isinstance(data, dict):
            raise JudgeError(f"the judge endpoint returned unexpected JSON: {str(data)[:80]}")
        return data

    def chat(self, messages: list[dict[str, str]]) -> str:
        """Send one chat-completions request and return the reply text, with bounded retries."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": 0,
                "max_tokens": self.max_tokens,
            }
        ).encode("utf-8")
        last_error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(self.retry_backoff * 2 ** (attempt - 1))
            try:
                data = self._request_once(body)
            except urllib.error.HTTPError as error:
                detail = error.read()[:200].decode("utf-8", "replace") if error.fp else ""
                if error.code == 429 or error.code >= 500:
                    last_error = JudgeError(f"HTTP {error.code} from {self.url}: {detail}")
                    continue
                raise JudgeError(f"HTTP {error.code} from {self.url}: {detail}") from error
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                last_error = JudgeError(f"cannot reach the judge at {self.url}: {error}")
                continue
            try:
                content = data["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError) as error:
                raise JudgeError(
                    f"the judge reply has no choices[0].message.content: {str(data)[:120]}"
                ) from error
            if not isinstance(content, str):
                raise JudgeError(f"the judge reply content is not text: {content!r}")
            return content
        raise JudgeError(
            f"the judge failed after {self.max_retries + 1} attempts: {last_error}"
        ) from last_error

    def choose(self, instruction: str, output_a: str, output_b: str) -> str:
        """One judgement in one order: ``"A"`` or ``"B"``."""
        return parse_choice(self.chat(build_judge_messages(instruction, output_a, output_b)))

    def compare(self, instruction: str, first: str, second: str) -> PairwiseVerdict:
        """Judge ``first`` against ``second`` in both orders."""
        return PairwiseVerdict(
            first_order=self.choose(instruction, first, second),
            swapped_order=self.choose(instruction, second, first),
        )

    def compare_all(
        self,
        instructions: Sequence[str],
        candidate: Sequence[str],
        baseline: Sequence[str],
        *,
        n_resamples: int = 10_000,
        seed: int = 0,
    ) -> dict[str, Any]:
        """Win rate of ``candidate`` over ``baseline`` on many prompts; see :func:`judge_pairwise`."""
        return judge_pairwise(self, instructions, candidate, baseline, n_resamples=n_resamples, seed=seed)


def judge_pairwise(
    judge: PairwiseJudge,
    instructions: Sequence[str],
    candidate: Sequence[str],
    baseline: Sequence[str],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Judge win rate of ``candidate`` over ``baseline`` (ties half), with a paired bootstrap CI.

    Returns the :func:`~inspo_plugin.evaluation.generation.win_rate` dict plus ``"scores"``
    (1.0 / 0.5 / 0.0 per prompt) and ``"position_consistent"`` (share of prompts where both
    orders agreed).
    """
    from inspo_plugin.evaluation.stats import win_rate

    if not len(instructions) == len(candidate) == len(baseline):
        raise ValueError("instructions, candidate and baseline must have the same length")
    verdicts = [judge.compare(i, c, b) for i, c, b in zip(instructions, candidate, baseline, strict=True)]
    scores = [v.score for v in verdicts]
    result = win_rate(scores, [0.5] * len(scores), n_resamples=n_resamples, seed=seed)
    result["scores"] = scores
    result["position_consistent"] = sum(v.consistent for v in verdicts) / max(1, len(verdicts))
    return result
