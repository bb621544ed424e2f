"""Row normalisation: accepted shapes and precise errors (source, row, field)."""

from __future__ import annotations

import pytest

from inspo_plugin.core.rows import (
    DropReport,
    InvalidPreferenceRow,
    RowFields,
    normalize_row,
    validate_trl_row,
)

U = {"role": "user", "content": "Hi?"}


def test_orca_shape_with_system_message():
    row = normalize_row({"system": "Be brief.", "question": "Hi?", "chosen": "Hello.", "rejected": "Bye."})
    assert row["prompt"] == [{"role": "system", "content": "Be brief."}, U]


def test_multi_turn_conversations_share_their_prompt_turns():
    history = [U, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "And?"}]
    row = normalize_row(
        {
            "chosen": [*history, {"role": "assistant", "content": "Good."}],
            "rejected": [*history, {"role": "assistant", "content": "Bad."}],
        }
    )
    assert row["prompt"] == history and row["chosen"][0]["content"] == "Good."


@pytest.mark.parametrize(
    "sample, field, reason",
    [
        ({"prompt": "p", "rejected": "b"}, "chosen", "missing"),
        ({"prompt": "p", "chosen": "a", "rejected": None}, "rejected", "missing"),
        ({"prompt": "  ", "chosen": "a", "rejected": "b"}, "prompt", "empty"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, "prompt", "expected a string or a list of messages"),
        ({"prompt": "p", "chosen": 1.5, "rejected": "b"}, "chosen", "expected a string or messages"),
        (
            {"prompt": "p", "chosen": [{"role": "assistant", "content": 7}], "rejected": "b"},
            "chosen",
            "message 0 content is int",
        ),
        (
            {"prompt": "p", "chosen": "a", "rejected": [{"content": "b"}]},
            "rejected",
            "message 0 has no 'role'",
        ),
        ({"prompt": "p", "chosen": "Same.", "rejected": " Same. "}, "rejected", "identical to chosen"),
        (
            {
                "chosen": [U, {"role": "assistant", "content": "a"}],
                "rejected": [{"role": "user", "content": "Other?"}, {"role": "assistant", "content": "b"}],
            },
            "rejected",
            "prompt turns differ",
        ),
        (
            {"prompt": "p", "chosen": {"role": "user", "content": "a"}, "rejected": "b"},
            "chosen",
            "role is 'user', expected 'assistant'",
        ),
        (
            {"prompt": [U, {"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"},
            "prompt",
            "ends with an assistant turn",
        ),
    ],
)
def test_errors_name_source_row_and_field(sample, field, reason):
    with pytest.raises(InvalidPreferenceRow) as err:
        normalize_row(sample, index=12, source="data/train.jsonl")
    assert (err.value.source, err.value.row, err.value.field) == ("data/train.jsonl", 12, field)
    assert reason in str(err.value) and str(err.value).startswith("data/train.jsonl: row 12, field")


def test_custom_field_names_are_named_in_errors():
    with pytest.raises(InvalidPreferenceRow, match="field 'bad': missing"):
        normalize_row({"q": "p", "good": "a"}, fields=RowFields(prompt="q", chosen="good", rejected="bad"))


def test_trl_rows_are_checked_without_changes():
    validate_trl_row({"prompt": "p", "chosen": "a", "rejected": "b"})
    with pytest.raises(InvalidPreferenceRow, match="row 3, field 'chosen': empty"):
        validate_trl_row({"prompt": "p", "chosen": "", "rejected": "b"}, index=3)


def test_drop_report_summary_and_file(tmp_path):
    report = DropReport("train", rows_in=10)
    report.add(7, "too long: prompt (900 tokens) ...")
    report.add(2, "invalid: f.jsonl: row 2, field 'chosen': empty")
    assert [r for r, _ in report.dropped] == [2, 7]
    summary = report.summary()
    assert "dropped 2 of 10 rows" in summary and "1× invalid" in summary and "1× too long" in summary
    lines = report.write(tmp_path / "r.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"row": 2' in lines[0]
