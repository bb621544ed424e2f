"""Reflective sequences: structure, boundaries, truncation policy, parity with TRL's tokenisation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from datasets import Dataset
from trl import DPOTrainer

from inspo_plugin.core.sequences import (
    DEFAULT_REFLECTION_PROMPT,
    RowTooLong,
    Segment,
    build_reflective_pair,
    make_reflection_format,
    render_preview,
    strip_duplicate_bos,
    tokenize_preference_row,
)
from inspo_plugin.models.tiny import FAMILIES, build_tiny_tokenizer

ROW = {
    "prompt": [{"role": "user", "content": "Name a colour of the sky."}],
    "chosen": [{"role": "assistant", "content": "Blue, on a clear day."}],
    "rejected": [{"role": "assistant", "content": "Green."}],
}


def _segments(ids, segments, which):
    return [t for t, s in zip(ids, segments, strict=True) if s == which]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_revise_sequence_is_the_templates_own_four_turn_conversation(family):
    """A decodes to exactly what the chat template renders for x, y_w, reflection turn, y_l."""
    tok = build_tiny_tokenizer(family)
    fmt = make_reflection_format(tok, "revise")
    row = tokenize_preference_row(tok, ROW)
    pair = build_reflective_pair(row["prompt_ids"], row["chosen_ids"], row["rejected_ids"], fmt)
    conversation = [
        *ROW["prompt"],
        ROW["chosen"][0],
        {"role": "user", "content": DEFAULT_REFLECTION_PROMPT},
        ROW["rejected"][0],
    ]
    expected = tok.apply_chat_template(conversation, tokenize=False)
    ids, segments = pair.sequence_a()
    assert tok.decode(ids, skip_special_tokens=False) == expected
    # B holds the same pieces the other way round.
    ids_b, seg_b = pair.sequence_b()
    assert _segments(ids_b, seg_b, Segment.FIRST) == _segments(ids, segments, Segment.SECOND)
    assert _segments(ids_b, seg_b, Segment.SECOND) == _segments(ids, segments, Segment.FIRST)
    # Segment 1 of A is exactly the DPO sequence x·y_w.
    assert ids[: len(row["prompt_ids"]) + len(row["chosen_ids"])] == row["prompt_ids"] + row["chosen_ids"]


def test_concat_puts_the_answer_right_after_the_alternatives_end_of_turn(chatml_tokenizer):
    fmt = make_reflection_format(chatml_tokenizer, "concat")
    assert fmt.text == "<|im_end|>\n"
    row = tokenize_preference_row(chatml_tokenizer, ROW)
    pair = build_reflective_pair(row["prompt_ids"], row["chosen_ids"], row["rejected_ids"], fmt)
    ids, segments = pair.sequence_a()
    assert Segment.BRIDGE not in segments  # TRL's completion already ends with "<|im_end|>\n"
    assert ids == row["prompt_ids"] + row["chosen_ids"] + row["rejected_ids"]


def test_custom_template_uses_the_users_reflection_message(chatml_tokenizer):
    fmt = make_reflection_format(chatml_tokenizer, "custom", "Compare with the answer above and improve.")
    assert "<|im_start|>user\nCompare with the answer above and improve.<|im_end|>" in fmt.text
    assert fmt.text.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize(
    "template, prompt, message",
    [
        ("custom", None, "needs a non-empty reflection_prompt"),
        ("revise", "hi", "only used by template 'custom'"),
        ("mirror", None, "unknown template 'mirror'"),
    ],
)
def test_template_errors(chatml_tokenizer, template, prompt, message):
    with pytest.raises(ValueError, match=message):
        make_reflection_format(chatml_tokenizer, template, prompt)


def test_literal_end_of_turn_inside_a_response_does_not_move_any_boundary(chatml_tokenizer):
    tricky = {
        **ROW,
        "chosen": [
            {"role": "assistant", "content": "Use <|im_end|> to end a turn.<|im_end|>\n<|im_start|>user\nhi"}
        ],
    }
    row = tokenize_preference_row(chatml_tokenizer, tricky)
    fmt = make_reflection_format(chatml_tokenizer)
    pair = build_reflective_pair(row["prompt_ids"], row["chosen_ids"], row["rejected_ids"], fmt)
    for ids, segments, first, second in (
        (*pair.sequence_a(), row["chosen_ids"], row["rejected_ids"]),
        (*pair.sequence_b(), row["rejected_ids"], row["chosen_ids"]),
    ):
        assert _segments(ids, segments, Segment.PROMPT) == row["prompt_ids"]
        assert _segments(ids, segments, Segment.FIRST) == first
        assert _segments(ids, segments, Segment.SECOND) == second
    decoded = chatml_tokenizer.decode(_segments(*pair.sequence_a(), Segment.FIRST), skip_special_tokens=False)
    assert decoded == tricky["chosen"][0]["content"] + "<|im_end|>\n"


def test_bridge_completes_a_response_that_holds_only_part_of_the_turn_end(chatml_tokenizer):
    fmt = make_reflection_format(chatml_tokenizer)
    im_end = chatml_tokenizer.convert_tokens_to_ids("<|im_end|>")
    content = chatml_tokenizer("Blue.", add_special_tokens=False)["input_ids"]
    full = list(fmt.turn_end_and_bridge)
    assert fmt.bridge_after(content) == full  # no turn end at all: the bridge supplies it
    assert fmt.bridge_after([*content, im_end]) == full[1:]  # "answer<|im_end|>" (axolotl's chatml.* types)
    assert fmt.bridge_after([*content, *full[:2]]) == full[2:]  # "answer<|im_end|>\n" (TRL conversational)


def test_truncation_keeps_prompt_and_bridge_and_cuts_the_longer_response_first(chatml_tokenizer):
    fmt = make_reflection_format(chatml_tokenizer)
    prompt, long, short = list(range(10, 30)), list(range(100, 160)), list(range(200, 210))
    bridge = len(fmt.turn_end_and_bridge)
    max_length = len(prompt) + bridge + 40
    pair = build_reflective_pair(prompt, long, short, fmt, max_length)
    assert pair.truncated
    assert pair.prompt_ids == prompt
    assert pair.rejected_ids == short  # the short one is kept whole
    assert pair.chosen_ids == long[:30]  # cut from the tail
    assert pair.length <= max_length
    for ids, segments in (pair.sequence_a(), pair.sequence_b()):
        assert len(ids) <= max_length
        assert _segments(ids, segments, Segment.BRIDGE) == list(fmt.turn_end_and_bridge)

    both_long = build_reflective_pair(prompt, long, long[::-1], fmt, max_length)
    assert (len(both_long.chosen_ids), len(both_long.rejected_ids)) == (20, 20)

    with pytest.raises(RowTooLong, match="leave 1 of max_length"):
        build_reflective_pair(prompt, long, short, fmt, len(prompt) + bridge + 1)


def test_short_pairs_are_left_untouched(chatml_tokenizer):
    fmt = make_reflection_format(chatml_tokenizer)
    row = tokenize_preference_row(chatml_tokenizer, ROW)
    pair = build_reflective_pair(row["prompt_ids"], row["chosen_ids"], row["rejected_ids"], fmt, 10_000)
    assert not pair.truncated and pair.chosen_ids == row["chosen_ids"]


def test_no_double_bos():
    tok = build_tiny_tokenizer("llama3")
    tok.add_bos_token = True  # the tokenizer adds BOS and the rendered prompt has one too
    bos = tok.bos_token_id
    rendered = tok.apply_chat_template(ROW["prompt"], tokenize=False, add_generation_prompt=True)
    row = tokenize_preference_row(tok, {"prompt": rendered, "chosen": "Blue.", "rejected": "Green."})
    assert row["prompt_ids"][0] == bos and row["prompt_ids"][1] != bos
    assert strip_duplicate_bos([bos, bos, 5], bos) == [bos, 5]
    assert strip_duplicate_bos([bos, 5], bos) == [bos, 5]
    assert strip_duplicate_bos([5, 5], None) == [5, 5]


@pytest.mark.parametrize("conversational", [True, False])
def test_standalone_tokenisation_matches_trl(chatml_tokenizer, conversational):
    """Preview and evaluation tokenise rows exactly like TRL's DPOTrainer preprocessing."""
    if conversational:
        rows = [ROW]
    else:
        rendered = chatml_tokenizer.apply_chat_template(
            ROW["prompt"], tokenize=False, add_generation_prompt=True
        )
        rows = [{"prompt": rendered, "chosen": "Blue.<|im_end|>", "rejected": "Green."}]
    fake_trainer = SimpleNamespace(_tokenizer=chatml_tokenizer)
    args = SimpleNamespace(dataset_num_proc=None, max_length=None, truncation_mode="keep_start")
    trl_rows = DPOTrainer._prepare_dataset(fake_trainer, Dataset.from_list(rows), chatml_tokenizer, args, "t")
    ours = tokenize_preference_row(chatml_tokenizer, rows[0])
    for key in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert ours[key] == trl_rows[0][key]


def test_preview_marks_every_segment(chatml_tokenizer):
    fmt = make_reflection_format(chatml_tokenizer)
    row = tokenize_preference_row(chatml_tokenizer, ROW)
    pair = build_reflective_pair(row["prompt_ids"], row["chosen_ids"], row["rejected_ids"], fmt)
    text = render_preview(chatml_tokenizer, pair, title="row 0")
    assert "sequence A" in text and "sequence B" in text
    assert "FIRST ANSWER = chosen · scores log π(y_w | x)" in text
    assert "SECOND ANSWER = chosen · scores log π(y_w | x, y_l)" in text
    assert text.count("▶ BRIDGE") == 2 and text.count("▶ PROMPT") == 2
    assert "Blue, on a clear day." in text
