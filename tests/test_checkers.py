"""Unit tests for the verifiable-instruction checkers."""

from __future__ import annotations

import json

import pytest

from inspo_plugin.evaluation.checkers import (
    CONSTRAINT_KINDS,
    BulletCount,
    Constraint,
    EndPhrase,
    ExcludeKeyword,
    IncludeKeyword,
    JsonFormat,
    Lowercase,
    MaxSentences,
    MaxWords,
    MinWords,
    NoCommas,
    ParagraphCount,
    Postscript,
    Quotation,
    StartPhrase,
    Title,
    Uppercase,
    constraint_from_dict,
    count_bullets,
    count_paragraphs,
    count_sentences,
    count_words,
    split_sentences,
)

# (constraint, responses that pass, responses that fail)
CASES: list[tuple[Constraint, list[str], list[str]]] = [
    (
        MaxWords(5),
        ["One two three four five.", "Don't over-think it, please."],
        ["One two three four five six.", "a b c d e f g h"],
    ),
    (
        MinWords(4),
        ["One two three four.", "It's a well-known fact here."],
        ["One two three.", "Hi!", "   "],
    ),
    (
        MaxSentences(2),
        ["First one. Second one!", "1. Buy milk\n2. Buy eggs", "Use e.g. salt."],
        ["One. Two. Three.", "Line one\nline two\nline three", "A? B! C."],
    ),
    (
        ParagraphCount(2),
        ["First paragraph.\n\nSecond paragraph.", "A.\nstill A.\n \nB."],
        ["Only one paragraph.", "A.\n\nB.\n\nC."],
    ),
    (
        Lowercase(),
        ["all lowercase here, 100%.", "émile likes café."],
        ["Not all lowercase.", "ALL CAPS", "123 456", ""],
    ),
    (
        Uppercase(),
        ["ALL CAPS HERE, 100%.", "ÉMILE"],
        ["ALL CAPS but one", "123", "lower"],
    ),
    (
        IncludeKeyword("garden"),
        ["My Garden is green.", "the garden."],
        ["Gardening is fun.", "A gardens path.", "nothing here"],
    ),
    (
        ExcludeKeyword("water"),
        ["Drink plenty of fluids.", "Waterproof boots help."],
        ["Drink water.", "WATER is key", "water-based paint"],
    ),
    (
        BulletCount(3),
        ["* one\n* two\n* three", "Intro:\n- a\n- b\n  - c\nThe end."],
        ["* one\n* two", "1. one\n2. two\n3. three", "**bold** text\n* one\n* two", "*one\n*two\n*three"],
    ),
    (
        JsonFormat(),
        ['{"answer": "yes"}', "[1, 2, 3]", '```json\n{"a": 1}\n```', '  {"a": {"b": [1]}}  '],
        ["Answer: yes", "42", '"just a string"', '{"a": 1', 'Here it is: {"a": 1}'],
    ),
    (
        EndPhrase("Hope this helps!"),
        ["Some text. Hope this helps!", "Text.\n\nhope this helps!  \n"],
        ["Hope this helps! More text.", "Hope this helps", "Some text."],
    ),
    (
        StartPhrase("Sure"),
        ["Sure, here you go.", "  sure thing.", "Sure"],
        ["Surely not.", "Of course. Sure.", "Yes"],
    ),
    (
        NoCommas(),
        ["No commas at all.", "Semicolons; dashes - fine."],
        ["One, two.", "Full-width，comma."],
    ),
    (
        Quotation(),
        ['"Wrapped in quotes."', "“Curly quotes.”", '  "spaces around"  '],
        ["Not wrapped.", '"Only at the start.', '"', '“Mixed."'],
    ),
    (
        Title(),
        ["<<My Title>>\n\nBody.", "Body then <<title>>."],
        ["No title.", "<<>> empty", "<single>", "<<broken\ntitle>>"],
    ),
    (
        Postscript(),
        ["Body.\n\nP.S. Remember this.", "Body.\np.s. lowercase works", "Body.\nP. S. spaced"],
        ["Body. P.S. inline is not a postscript line.", "No postscript.", "PS without dots"],
    ),
]


def test_registry_has_all_kinds() -> None:
    assert len(CONSTRAINT_KINDS) >= 10
    tested = {c.kind for c, _, _ in CASES}
    assert tested == set(CONSTRAINT_KINDS), f"untested kinds: {set(CONSTRAINT_KINDS) - tested}"
    for kind, cls in CONSTRAINT_KINDS.items():
        assert cls.kind == kind


@pytest.mark.parametrize(("constraint", "passing", "failing"), CASES, ids=[c.kind for c, _, _ in CASES])
def test_check_positive_and_negative(constraint: Constraint, passing: list[str], failing: list[str]) -> None:
    for text in passing:
        assert constraint.check(text), f"{constraint.kind} should pass: {text!r}"
    for text in failing:
        assert not constraint.check(text), f"{constraint.kind} should fail: {text!r}"


@pytest.mark.parametrize("constraint", [c for c, _, _ in CASES], ids=[c.kind for c, _, _ in CASES])
def test_empty_response_fails_everything(constraint: Constraint) -> None:
    assert not constraint.check("")
    assert not constraint.check(" \n\t ")


SAMPLES = [
    "Paris is the capital of France. It is known for the Eiffel Tower, museums, and food.",
    "Here are some tips:\n1. Drink water.\n2. Sleep well.\n3. Exercise daily.\n\nStay healthy!",
    "* Water the garden\n* Pull weeds\n* Enjoy the sun",
    '{"answer": "yes", "why": "because"}',
    "Sure! Gardening is a relaxing hobby, and it keeps you active",
    '"Quoted answer, with a comma."',
    "<<A Title>>\n\nSome body text.\n\nP.S. Thanks for reading.",
    "ALL CAPS RESPONSE WITHOUT ANY PUNCTUATION",
    "hope this helps! hope this helps!",
    "word",
    "12345",
    "- one\n- two\n- three\n- four\n- five\n- six",
]

PARAMETRISED = [
    MaxWords(1),
    MaxWords(8),
    MaxWords(40),
    MinWords(1),
    MinWords(10),
    MinWords(60),
    MaxSentences(1),
    MaxSentences(3),
    ParagraphCount(1),
    ParagraphCount(2),
    ParagraphCount(4),
    Lowercase(),
    Uppercase(),
    IncludeKeyword("garden"),
    IncludeKeyword("hope this"),
    ExcludeKeyword("water"),
    ExcludeKeyword("hope"),
    BulletCount(1),
    BulletCount(3),
    BulletCount(5),
    JsonFormat(),
    EndPhrase("Hope this helps!"),
    EndPhrase("hope this helps!"),
    StartPhrase("Sure"),
    StartPhrase("In summary,"),
    NoCommas(),
    Quotation(),
    Title(),
    Postscript(),
]


@pytest.mark.parametrize("constraint", PARAMETRISED, ids=[repr(c) for c in PARAMETRISED])
def test_enforce_and_violate_always_verify(constraint: Constraint) -> None:
    for text in SAMPLES:
        enforced = constraint.enforce(text)
        violated = constraint.violate(text)
        assert constraint.check(enforced), (constraint, text, enforced)
        assert not constraint.check(violated), (constraint, text, violated)
        assert enforced.strip() and violated.strip()
        # idempotent on their own output, and deterministic
        assert constraint.enforce(enforced) == enforced
        assert constraint.violate(violated) == violated
        assert constraint.enforce(text) == enforced
        assert constraint.violate(text) == violated


def test_enforce_keeps_a_passing_response_unchanged() -> None:
    text = "A short answer."
    assert MaxWords(10).enforce(text) == text
    assert NoCommas().violate("a, b") == "a, b"


def test_edits_are_small() -> None:
    text = "Paris is lovely. It has museums. The food is great."
    assert MaxSentences(2).enforce(text) == "Paris is lovely. It has museums."
    assert MaxWords(6).enforce(text) == "Paris is lovely. It has museums."
    assert Lowercase().enforce(text) == text.lower()
    assert ExcludeKeyword("museums").enforce(text) == "Paris is lovely. It has. The food is great."
    assert EndPhrase("Bye.").enforce(text) == text + "\n\nBye."
    assert BulletCount(2).enforce(text) == "* Paris is lovely.\n* It has museums."
    assert json.loads(JsonFormat().enforce(text)) == {"answer": text}


@pytest.mark.parametrize("constraint", PARAMETRISED, ids=[repr(c) for c in PARAMETRISED])
def test_dict_round_trip(constraint: Constraint) -> None:
    data = constraint.to_dict()
    assert set(data) == {"kind", "params"}
    assert json.loads(json.dumps(data)) == data
    rebuilt = constraint_from_dict(json.loads(json.dumps(data)))
    assert rebuilt == constraint
    assert type(rebuilt) is type(constraint)
    assert rebuilt.instruction() == constraint.instruction()


def test_from_dict_errors() -> None:
    with pytest.raises(ValueError, match="unknown constraint kind"):
        constraint_from_dict({"kind": "nope", "params": {}})
    with pytest.raises(ValueError, match="needs a 'kind'"):
        constraint_from_dict({"params": {}})
    with pytest.raises(ValueError, match="missing"):
        constraint_from_dict({"kind": "max_words", "params": {}})
    with pytest.raises(ValueError, match="unknown"):
        constraint_from_dict({"kind": "lowercase", "params": {"x": 1}})
    with pytest.raises(ValueError, match="positive integer"):
        constraint_from_dict({"kind": "max_words", "params": {"max_words": 0}})
    with pytest.raises(ValueError, match="positive integer"):
        MaxWords(True)
    with pytest.raises(ValueError, match="non-empty string"):
        IncludeKeyword("  ")
    assert constraint_from_dict({"kind": "lowercase"}) == Lowercase()


def test_instructions_mention_parameters() -> None:
    assert "40" in MaxWords(40).instruction()
    assert '"garden"' in IncludeKeyword("garden").instruction()
    assert "exactly 3 bullet points" in BulletCount(3).instruction()
    assert "1 sentence." in MaxSentences(1).instruction()
    assert MaxWords(3).apply_to("Describe a cat.  ") == "Describe a cat. Answer in at most 3 words."
    for cls in CONSTRAINT_KINDS.values():
        assert cls.instruction is not Constraint.instruction


def test_text_statistics() -> None:
    assert count_words("It's a well-known fact: 3 cats, 2 dogs.") == 8
    assert count_words("") == 0
    assert split_sentences("One. Two? Three!\nFour\n\n1. Five") == ["One.", "Two?", "Three!", "Four", "Five"]
    assert count_sentences('He said "stop." Then left.') == 2
    assert count_paragraphs("a\n\nb\n   \nc") == 3
    assert count_paragraphs("\n\n a \n\n") == 1
    assert count_bullets("* a\n- b\n• c\n+ d\n**e**\n1. f") == 4


def assert_pair_verifies(row: dict) -> None:
    """A shipped row's prompt is its task with its constraint applied; chosen passes, rejected fails."""
    constraint = constraint_from_dict(row["constraint"])
    assert row["prompt"] == constraint.apply_to(row["task"]), row["id"]
    assert constraint.check(row["chosen"]), row["id"]
    assert not constraint.check(row["rejected"]), row["id"]


def test_shipped_preference_data_verifies() -> None:
    from inspo_plugin.data import builtin_preferences_path, load_builtin_preferences

    train, test = load_builtin_preferences("train"), load_builtin_preferences("test")
    assert 400 <= len(train) <= 600
    assert 120 <= len(test) <= 200
    size = builtin_preferences_path("train").stat().st_size + builtin_preferences_path("test").stat().st_size
    assert size < 2_000_000
    assert len({row["id"] for row in train + test}) == len(train) + len(test)
    for row in train + test:
        assert_pair_verifies(row)
        assert {row["chosen_source"], row["rejected_source"]} <= {"sampled", "edited"}
        assert "sampled" in (row["chosen_source"], row["rejected_source"]), row["id"]
    train_kinds = {row["constraint"]["kind"] for row in train}
    train_tasks = {row["task"] for row in train}
    assert all("heldout" not in row for row in train)
    by_reason = {"prompt": [r for r in test if r["heldout"] == "prompt"], "constraint": []}
    by_reason["constraint"] = [r for r in test if r["heldout"] == "constraint"]
    assert len(by_reason["prompt"]) + len(by_reason["constraint"]) == len(test)
    assert by_reason["prompt"] and by_reason["constraint"]
    for row in by_reason["prompt"]:
        assert row["task"] not in train_tasks and row["constraint"]["kind"] in train_kinds
    heldout_kinds = {row["constraint"]["kind"] for row in by_reason["constraint"]}
    assert 2 <= len(heldout_kinds) <= 3 and not heldout_kinds & train_kinds


def test_shipped_natural_pairs_are_verified_sampled_pairs_of_training_prompts() -> None:
    """The ``natural`` train split: at least 400 pairs, both answers sampled and verified, at most 2
    distinct pairs per prompt, only training prompts (no held-out task or kind leaks in)."""
    from collections import Counter

    from inspo_plugin.data import load_builtin_preferences

    natural = load_builtin_preferences("train", variant="natural")
    mixed, test = load_builtin_preferences("train"), load_builtin_preferences("test")
    assert len(natural) >= 400
    assert len({row["id"] for row in natural}) == len(natural)
    for row in natural:
        assert_pair_verifies(row)
        assert (row["chosen_source"], row["rejected_source"]) == ("sampled", "sampled"), row["id"]
    pairs = Counter((row["prompt"], row["chosen"], row["rejected"]) for row in natural)
    assert max(pairs.values()) == 1  # distinct pairs
    assert max(Counter(row["prompt"] for row in natural).values()) <= 2
    assert {row["prompt"] for row in natural} <= {row["prompt"] for row in mixed}
    assert not {row["task"] for row in natural} & {r["task"] for r in test if r["heldout"] == "prompt"}
    assert "heldout" not in {key for row in natural for key in row}


def test_load_builtin_preferences_errors() -> None:
    from inspo_plugin.data import load_builtin_preferences

    with pytest.raises(ValueError, match="unknown split"):
        load_builtin_preferences("validation")
    with pytest.raises(ValueError, match="unknown built-in"):
        load_builtin_preferences("train", name="nope")
