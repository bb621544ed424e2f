"""Shared fixtures: tiny tokenizers and models built in-process (no download)."""

from __future__ import annotations

from inspo_plugin.offline import apply_offline_defaults

apply_offline_defaults()  # before anything imports huggingface_hub, datasets or transformers

import pytest  # noqa: E402

from inspo_plugin.models.tiny import build_tiny_model, build_tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def chatml_tokenizer():
    return build_tiny_tokenizer("chatml")


@pytest.fixture(scope="session")
def llama3_tokenizer():
    return build_tiny_tokenizer("llama3")


@pytest.fixture
def chatml_model(chatml_tokenizer):
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    model.eval()
    return model


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A saved tiny ChatML checkpoint, shared by the end-to-end tests."""
    from inspo_plugin.models.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", "chatml")
