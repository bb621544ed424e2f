"""Shared fixtures: tiny tokenizers and models built in-process (no download)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from inspo_plugin.tiny import build_tiny_model, build_tiny_tokenizer


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
    from inspo_plugin.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", "chatml")
