"""Tiny, randomly initialised chat models for tests, CI smoke runs and recipe checks.

A recipe written for Llama-3-8B, Mistral-7B or Gemma-2-9B can be smoke-trained on a CPU by swapping
its ``base_model`` for a tiny model of the same architecture family built here: a byte-level BPE
tokenizer trained in-process on a small corpus, the family's real special tokens and chat template,
and a two-layer decoder. Nothing is downloaded.

Command line: ``python -m inspo_plugin tiny-model --output DIR [--family llama3|mistral|gemma2|chatml]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

LLAMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

MISTRAL_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
)

GEMMA2_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyFamily:
    """Special tokens, chat template and model class of one architecture family."""

    model_type: str
    bos: str | None
    eos: str
    pad: str
    chat_template: str
    # Llama-3 and Mistral ship without a pad token; fine-tuning recipes pad with EOS, which is the
    # case where a mask built as ``ids != pad_id`` would hide real end-of-turn tokens.
    extra_special: tuple[str, ...] = ()


FAMILIES: dict[str, TinyFamily] = {
    "chatml": TinyFamily(
        "llama", None, "<|im_end|>", "<|endoftext|>", CHATML_TEMPLATE, ("<|im_start|>", "<|endoftext|>")
    ),
    "llama3": TinyFamily(
        "llama",
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|eot_id|>",
        LLAMA3_TEMPLATE,
        ("<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"),
    ),
    "mistral": TinyFamily("mistral", "<s>", "</s>", "</s>", MISTRAL_TEMPLATE, ("[INST]", "[/INST]")),
    "gemma2": TinyFamily(
        "gemma2", "<bos>", "<eos>", "<pad>", GEMMA2_TEMPLATE, ("<start_of_turn>", "<end_of_turn>")
    ),
}

# Every family's special tokens exist in every tiny tokenizer, so a recipe may also switch templates.
_ALL_SPECIAL = sorted(
    {t for f in FAMILIES.values() for t in (f.bos, f.eos, f.pad, *f.extra_special) if t}
    | {"<|im_start|>", "<|im_end|>", "<unk>"}
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Write a short poem about the sea, in lowercase letters only.",
    "Answer in at most twenty words and end with the phrase 'Is there anything else?'",
    "Here are three tips for better sleep: keep a schedule, avoid screens, and keep the room cool.",
    'Return your answer as JSON: {"answer": "yes", "confidence": 0.9}',
    "- first point\n- second point\n- third point",
    "Please reconsider both answers above and answer the original request again.",
    "Hello! How can I help you today? I am happy to explain anything about science or history.",
    "Explain photosynthesis briefly. Plants turn light, water and carbon dioxide into sugar and oxygen.",
    "Which answer is better, A or B? The first one is more helpful and more accurate.",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789 .,;:!?'\"()[]{}<>/\\|-_+=*&^%$#@~`",
]


def build_tiny_tokenizer(family: str = "chatml") -> Any:
    """A byte-level BPE tokenizer with the family's special tokens and chat template (~1k vocab)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = _family(family)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=_ALL_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=spec.bos,
        eos_token=spec.eos,
        pad_token=spec.pad,
        unk_token="<unk>",
        additional_special_tokens=[
            t for t in _ALL_SPECIAL if t not in {spec.bos, spec.eos, spec.pad, "<unk>"}
        ],
        model_max_length=2048,
        padding_side="right",
    )
    tokenizer.chat_template = spec.chat_template
    # The template writes the BOS itself; the tokenizer must not add another one.
    tokenizer.add_bos_token = False  # type: ignore[misc]  # settable on the fast tokenizer
    return tokenizer


def build_tiny_model(tokenizer: Any, family: str = "chatml", seed: int = 0, hidden_size: int = 64) -> Any:
    """A two-layer randomly initialised causal LM of the family's architecture."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = _family(family)
    torch.manual_seed(seed)
    common: dict[str, Any] = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    if spec.model_type == "gemma2":
        common.update(head_dim=hidden_size // 4, sliding_window=512, query_pre_attn_scalar=hidden_size // 4)
    config = AutoConfig.for_model(spec.model_type, **common)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    return model


def save_tiny_checkpoint(output_dir: str | Path, family: str = "chatml", seed: int = 0) -> Path:
    """Build a tiny tokenizer + model and save them as a plain Hugging Face checkpoint."""
    out = Path(output_dir)
    marker = out / "tiny_model.json"
    if marker.exists() and json.loads(marker.read_text()).get("family") == family:
        return out
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(family)
    model = build_tiny_model(tokenizer, family, seed=seed)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    marker.write_text(json.dumps({"family": family, "seed": seed}))
    return out


def _family(name: str) -> TinyFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown tiny-model family {name!r}; choose one of {sorted(FAMILIES)}") from None
