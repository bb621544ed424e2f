"""Tests for the pairwise judge against a local stub of an OpenAI-compatible endpoint (loopback only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inspo_plugin.evaluation.judge import (
    JudgeError,
    PairwiseJudge,
    PairwiseVerdict,
    build_judge_messages,
    judge_pairwise,
    parse_choice,
)

Reply = tuple[int, Any]  # (HTTP status, JSON-able body or raw bytes)


class Stub:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers with ``respond``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.respond: Callable[[dict[str, Any]], Reply] = lambda body: (200, completion("A"))
        self.delay = 0.0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if stub.delay:
                    time.sleep(stub.delay)
                status, payload = stub.respond(body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(content: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }


def user_text(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"]


def prefers_good(body: dict[str, Any]) -> Reply:
    """A content-based judge: picks whichever output contains the word GOOD."""
    text = user_text(body)
    section_a = text.split("## Output A")[1].split("## Output B")[0]
    return 200, completion("A" if "GOOD" in section_a else "B")


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    yield server
    server.close()


def make_judge(stub: Stub, **kwargs: Any) -> PairwiseJudge:
    options: dict[str, Any] = {"model": "judge-model", "base_url": stub.base_url, "api_key": "sk-test"}
    options.update(timeout=5.0, max_retries=2, retry_backoff=0.0)
    options.update(kwargs)
    return PairwiseJudge(**options)


def test_request_shape(stub: Stub) -> None:
    judge = make_judge(stub)
    assert judge.choose("Say hi.", "hi", "hello") == "A"
    (request,) = stub.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert body["model"] == "judge-model"
    assert body["temperature"] == 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"] == build_judge_messages("Say hi.", "hi", "hello")
    assert "## Output A\n\nhi\n\n## Output B\n\nhello" in user_text(body)


def test_api_key_from_environment_and_no_key(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSPO_JUDGE_API_KEY", "sk-env")
    make_judge(stub, api_key=None).choose("x", "a", "b")
    assert stub.requests[-1]["headers"]["Authorization"] == "Bearer sk-env"
    monkeypatch.delenv("INSPO_JUDGE_API_KEY")
    make_judge(stub, api_key=None).choose("x", "a", "b")
    assert "Authorization" not in stub.requests[-1]["headers"]


def test_position_swap_cancels_a_position_biased_judge(stub: Stub) -> None:
    stub.respond = lambda body: (200, completion("A"))  # always the first position
    verdict = make_judge(stub).compare("Write.", "GOOD answer", "bad answer")
    assert verdict == PairwiseVerdict(first_order="A", swapped_order="A")
    assert verdict.score == 0.5 and not verdict.consistent
    first, second = (user_text(r["body"]) for r in stub.requests)
    assert first.index("GOOD answer") < first.index("bad answer")
    assert second.index("bad answer") < second.index("GOOD answer")


def test_content_judge_gives_clear_wins_and_losses(stub: Stub) -> None:
    stub.respond = prefers_good
    judge = make_judge(stub)
    assert judge.compare("Write.", "GOOD one", "meh").score == 1.0
    assert judge.compare("Write.", "meh", "GOOD one").score == 0.0
    result = judge_pairwise(
        judge,
        ["q1", "q2", "q3", "q4"],
        ["GOOD", "GOOD", "meh", "x"],
        ["meh", "meh", "GOOD", "y"],
        n_resamples=200,
    )
    # q4: neither contains GOOD → the stub answers B in both orders → tie
    assert result["scores"] == [1.0, 1.0, 0.0, 0.5]
    assert (result["wins"], result["losses"], result["ties"]) == (2, 1, 1)
    assert result["win_rate"] == pytest.approx(2.5 / 4)
    assert result["position_consistent"] == pytest.approx(0.75)
    assert len(stub.requests) == 4 + 8
    assert judge.compare_all(["q"], ["GOOD"], ["meh"], n_resamples=50)["win_rate"] == 1.0


def test_http_500_is_retried_then_succeeds(stub: Stub) -> None:
    replies = iter([(500, {"error": "boom"}), (503, b"unavailable"), (200, completion("B"))])
    stub.respond = lambda body: next(replies)
    sleeps: list[float] = []
    judge = make_judge(stub, retry_backoff=0.5, sleep=sleeps.append)
    assert judge.choose("x", "a", "b") == "B"
    assert len(stub.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_http_500_gives_up_after_bounded_retries(stub: Stub) -> None:
    stub.respond = lambda body: (500, {"error": "boom"})
    with pytest.raises(JudgeError, match=r"after 3 attempts.*HTTP 500"):
        make_judge(stub, max_retries=2).choose("x", "a", "b")
    assert len(stub.requests) == 3


def test_client_error_is_not_retried(stub: Stub) -> None:
    stub.respond = lambda body: (401, {"error": "bad key"})
    with pytest.raises(JudgeError, match=r"HTTP 401.*bad key"):
        make_judge(stub).choose("x", "a", "b")
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (completion("I think both are fine."), "not 'A' or 'B'"),
        (completion(""), "not 'A' or 'B'"),
        (completion(None), "not text"),
        ({"choices": []}, "no choices"),
        (b"<html>not json</html>", "invalid JSON"),
    ],
)
def test_malformed_replies_raise_clear_errors(stub: Stub, payload: Any, message: str) -> None:
    stub.respond = lambda body: (200, payload)
    with pytest.raises(JudgeError, match=message):
        make_judge(stub).choose("x", "a", "b")
    assert len(stub.requests) == 1


def test_timeout_is_bounded(stub: Stub) -> None:
    stub.delay = 1.0
    started = time.perf_counter()
    with pytest.raises(JudgeError, match="after 2 attempts"):
        make_judge(stub, timeout=0.2, max_retries=1).choose("x", "a", "b")
    assert time.perf_counter() - started < 5.0


def test_unreachable_endpoint() -> None:
    server = Stub()
    url = server.base_url
    server.close()
    with pytest.raises(JudgeError, match="cannot reach"):
        PairwiseJudge(model="m", base_url=url, timeout=1.0, max_retries=0).choose("x", "a", "b")


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSPO_JUDGE_MODEL", raising=False)
    monkeypatch.delenv("INSPO_JUDGE_BASE_URL", raising=False)
    with pytest.raises(JudgeError, match="no judge model"):
        PairwiseJudge(base_url="http://127.0.0.1:1/v1")
    with pytest.raises(JudgeError, match="no judge endpoint"):
        PairwiseJudge(model="m")
    with pytest.raises(JudgeError, match="http"):
        PairwiseJudge(model="m", base_url="127.0.0.1:1")
    with pytest.raises(JudgeError, match="max_retries"):
        PairwiseJudge(model="m", base_url="http://x/v1", max_retries=50)
    monkeypatch.setenv("INSPO_JUDGE_MODEL", "env-model")
    monkeypatch.setenv("INSPO_JUDGE_BASE_URL", "http://x/v1/chat/completions")
    judge = PairwiseJudge()
    assert judge.model == "env-model"
    assert judge.url == "http://x/v1/chat/completions"


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("A", "A"),
        ("b", "B"),
        (' "B" ', "B"),
        ("**A**", "A"),
        ("Output (b)", "B"),
        ("(A).", "A"),
        ("output A", "A"),
    ],
)
def test_parse_choice_accepts(reply: str, letter: str) -> None:
    assert parse_choice(reply) == letter


@pytest.mark.parametrize(
    "reply", ["", "C", "A or B", "AB", "a dog", "Both are good", "A because it is shorter"]
)
def test_parse_choice_rejects(reply: str) -> None:
    with pytest.raises(JudgeError):
        parse_choice(reply)
