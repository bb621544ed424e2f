"""Broken rows end to end, through ``axolotl preprocess`` and ``axolotl train``.

One file per data shape ``type: inspo_plugin.reflective`` accepts, each mixing valid rows with 13
kinds of broken row (see ``tests/bad_rows.py``: missing field, null, empty string, whitespace-only
answer, a number, a dict, no assistant turn, wrong role order, chosen == rejected, non-UTF-8 bytes,
a truncated JSON line, a JSON line that is not an object, a prompt longer than ``sequence_len``)
and two rows that look odd but are valid (a 100k-character answer, literal special-token strings).

- ``on_invalid_row: skip``: ``axolotl preprocess``, then ``axolotl train`` on the prepared data,
  trains on exactly the valid rows of all four files and reports every broken row with its file,
  index and reason;
- ``on_invalid_row: error``: the run stops at the first broken row, naming file, row and field,
  before any dataset is loaded;
- a file with no valid row stops ``axolotl train`` with a clear error before the model is loaded.

Literal special-token strings inside content never move a segment boundary: checked on the
trainer's own prepared columns.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
from datasets import Dataset

from inspo_plugin import InSPOConfig, InSPOTrainer
from inspo_plugin.axolotl.data_files import check_data_files
from inspo_plugin.core.layout import IDS_A_COLUMN, SEGMENTS_A_COLUMN
from inspo_plugin.core.sequences import Segment
from inspo_plugin.models.tiny import build_tiny_model
from tests.axolotl_cli import log_history, output_of, run_axolotl, write_config
from tests.bad_rows import SHAPES, SPECIAL, BadFile, write_bad_file
from tests.test_axolotl_e2e import base_config

SEQUENCE_LEN = 512
REPORT = "inspo_dropped_rows_train.jsonl"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, BadFile]:
    folder = tmp_path_factory.mktemp("bad-data")
    return {shape: write_bad_file(folder / f"{shape}.jsonl", shape, SEQUENCE_LEN) for shape in SHAPES}


def _config(model: Path, work: Path, files: list[Path], on_invalid_row: str, **overrides) -> dict:
    return base_config(
        model,
        work,
        sequence_len=SEQUENCE_LEN,
        inspo={"on_invalid_row": on_invalid_row},
        datasets=[{"path": str(f), "split": "train", "type": "inspo_plugin.reflective"} for f in files],
        **overrides,
    )


@pytest.fixture(scope="module")
def skip_run(tiny_checkpoint, bad_files, tmp_path_factory):
    work = tmp_path_factory.mktemp("bad-data-skip")
    cfg = _config(tiny_checkpoint, work, [f.path for f in bad_files.values()], "skip")
    path = write_config(cfg, work / "cfg.yml")
    pre, pre_s = run_axolotl("preprocess", path, work, launcher=None)
    assert pre.returncode == 0, output_of(pre)
    train, train_s = run_axolotl("train", path, work)
    assert train.returncode == 0, output_of(train)
    yield {
        "out": Path(cfg["output_dir"]),
        "preprocess_log": pre.stdout + pre.stderr,
        "train_log": train.stdout + train.stderr,
        "seconds": (pre_s, train_s),
    }
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.slow
def test_skip_reports_every_broken_row_with_file_index_and_reason(skip_run, bad_files):
    report = [json.loads(line) for line in (skip_run["out"] / REPORT).read_text().splitlines()]
    got = {}
    for entry in report:
        shape = next(s for s, f in bad_files.items() if f"{f.path} (datasets[" in entry["reason"])
        assert (shape, entry["row"]) not in got, f"row reported twice: {entry}"
        got[shape, entry["row"]] = entry["reason"]
    expected = {(shape, row): why for shape, f in bad_files.items() for row, why in f.broken.items()}
    assert got.keys() == expected.keys(), sorted(set(got) ^ set(expected))
    for key, why in expected.items():
        assert why in got[key], (key, why, got[key])
        assert f"row {key[1]}" in got[key] or got[key].startswith("too long")


@pytest.mark.e2e
@pytest.mark.slow
def test_skip_trains_on_exactly_the_valid_rows(skip_run, bad_files):
    rows = sum(f.rows for f in bad_files.values())
    dropped = sum(len(f.broken) for f in bad_files.values())
    summary = re.findall(r"InSPO: train: dropped (\d+) of (\d+) rows", skip_run["train_log"])
    assert summary == [(str(dropped), str(rows))], summary  # kept = every valid row, nothing else
    history = log_history(skip_run["out"])
    assert all(h["loss"] == h["loss"] for h in history if "loss" in h)  # finite: the long and odd rows train


@pytest.mark.e2e
@pytest.mark.slow
def test_preprocess_warns_about_the_rows_it_will_drop_and_train_reuses_its_data(skip_run, bad_files):
    log = skip_run["preprocess_log"]
    for f in bad_files.values():
        assert f"{f.path} (datasets[" in log and "unreadable lines" in log
    assert "Loading prepared dataset from disk" in skip_run["train_log"]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_file_without_valid_rows_stops_train_before_the_model_is_loaded(tiny_checkpoint, tmp_path):
    data = tmp_path / "all_bad.jsonl"
    data.write_bytes(
        b'{"prompt": "p", "chosen": "same", "rejected": "same"}\n{"prompt": "p", "chosen": 3}\n\xff\n'
    )
    cfg = _config(tiny_checkpoint, tmp_path, [data], "skip")
    proc, _ = run_axolotl("train", write_config(cfg, tmp_path / "cfg.yml"), tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"InSPO: {data} (datasets[0]) has no usable row, nothing to train on from it" in log, output_of(
        proc
    )
    assert "dropped 3 of 3 rows" in log
    assert "Loading model" not in log and "Unable to find prepared dataset" not in log


def test_error_mode_stops_at_the_first_broken_row_of_each_shape(bad_files, tmp_path):
    """What the plugin's ``load_datasets`` hook does before Axolotl loads any dataset."""
    for f in bad_files.values():
        cfg = {
            "inspo": {"on_invalid_row": "error"},
            "dataset_prepared_path": str(tmp_path),
            "datasets": [{"path": str(f.path), "type": "inspo_plugin.reflective"}],
        }
        first = min(f.broken)
        with pytest.raises(ValueError) as err:
            check_data_files(cfg)
        message = str(err.value)
        assert message.startswith(f"{f.path} (datasets[0]): row {first}, field "), message
        assert f.broken[first] in message and "set inspo.on_invalid_row: skip" in message


def test_unreadable_lines_of_another_dataset_type_stop_with_file_and_line(bad_files, tmp_path):
    f = bad_files["strings"]
    cfg = {
        "datasets": [{"path": str(f.path), "type": "chatml.intel"}],
        "dataset_prepared_path": str(tmp_path),
    }
    with pytest.raises(ValueError, match=r"row 15, field '\(whole row\)': line 16: not valid UTF-8"):
        check_data_files(cfg)


def test_special_token_strings_in_content_never_move_a_segment_boundary(tmp_path, chatml_tokenizer):
    """The same pair with and without literal special-token strings: prompt and bridge tokens are
    identical, and the answer segments hold exactly the answers' own tokens."""
    plain = {"prompt": "Say yes.", "chosen": "Sure.", "rejected": "No."}
    odd = {"prompt": "Say yes.", "chosen": SPECIAL, "rejected": "No <|im_start|>assistant here."}
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    args = InSPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], max_length=512)
    trainer = InSPOTrainer(
        model=model,
        ref_model=copy.deepcopy(model),
        args=args,
        train_dataset=Dataset.from_list([plain, odd]),
        processing_class=chatml_tokenizer,
    )
    data = trainer.train_dataset

    def pieces(i: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for token, segment in zip(data[i][IDS_A_COLUMN], data[i][SEGMENTS_A_COLUMN], strict=True):
            out.setdefault(segment, []).append(token)
        return out

    a, b = pieces(0), pieces(1)
    for segment in (Segment.PROMPT, Segment.BRIDGE):  # unchanged by what the answers contain
        assert a[segment] == b[segment], Segment(segment)
    assert list(b) == [Segment.PROMPT, Segment.FIRST, Segment.BRIDGE, Segment.SECOND]  # one run each
    assert b[Segment.FIRST] == data[1]["chosen_ids"]
    assert b[Segment.SECOND] == data[1]["rejected_ids"]
    first_text = chatml_tokenizer.decode(b[Segment.FIRST])
    assert first_text.startswith(SPECIAL), first_text  # the whole literal stays inside the answer
    assert chatml_tokenizer.decode(b[Segment.SECOND]).startswith("No <|im_start|>assistant here.")


def test_readable_copy_keeps_row_indices_and_exact_values(tmp_path):
    from inspo_plugin.core.rawlines import parse_raw_row, read_jsonl, write_readable_copy

    source = tmp_path / "rows.jsonl"
    source.write_bytes(
        b'\xef\xbb\xbf{"prompt": "a", "chosen": 5, "rejected": "x"}\n\n'
        b'{"prompt": "b", "chosen": {"k": [1, 2]}, "rejected": "y"}\r\n'
        b'{"prompt": "c", "chos\n   \n{"prompt": "d", "chosen": "z", "rejected": null}\n'
    )
    lines = list(read_jsonl(source))
    assert [(line.index, line.line) for line in lines] == [(0, 1), (1, 3), (2, 4), (3, 6)]
    assert lines[2].error == "line 4: not valid JSON (Unterminated string starting at, column 17)"
    copy = write_readable_copy(lines, tmp_path / "copy.jsonl")
    loaded = Dataset.from_json(str(copy), cache_dir=str(tmp_path / "cache"))
    assert len(loaded) == 4
    rows = [parse_raw_row(row) for row in loaded]
    assert rows[0]["chosen"] == 5 and rows[1]["chosen"] == {"k": [1, 2]} and rows[3]["rejected"] is None
    assert rows[2]["inspo_raw_error"] == lines[2].error
