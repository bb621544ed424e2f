"""The training recipes under ``recipes/``.

Three layers, cheapest first:

1. Content: each recipe says what it claims (``rl: inspo``, the plugin, a valid ``inspo:`` block, the
   InSPO authors' hyper-parameters where the recipe reproduces their runs, flash-attention / bf16 /
   DeepSpeed or FSDP2 on the GPU recipes, CPU-only settings on the CPU recipes) and the DeepSpeed JSON
   files are what axolotl expects.
2. Validation: each recipe goes through axolotl 0.21's own config pipeline with the InSPO plugin loaded
   (``prepare_plugins`` -> ``validate_config`` -> ``normalize_config``), as ``axolotl train`` does.
   ``validate_config`` never touches the network (checked with HF_HUB_OFFLINE=1 and a socket guard), so
   it runs on the recipe exactly as written, ``base_model: meta-llama/...`` included, with the target
   hardware's capabilities. ``normalize_config`` loads the model's ``config.json``; for that step the
   base model is swapped for a tiny local checkpoint of the same architecture family.
3. Smoke training (``-m e2e``): every recipe, with its base model swapped for a tiny random model of the
   same family and its data for ``tests/data/prefs_small.jsonl``, is trained for two steps on CPU by the
   real ``axolotl train`` CLI in a subprocess, using the command-line overrides that turn a GPU recipe
   into a CPU run: ``--attn-implementation sdpa --bf16 false``.

Nothing is downloaded: models are built locally (``inspo_plugin.models.tiny``) and the Hub is offline.
"""

from __future__ import annotations

import copy
import json
import math
import os
import socket
import subprocess
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.axolotl_cli import AXOLOTL_BIN, OFFLINE_ENV, logged, run_axolotl

ROOT = Path(__file__).resolve().parents[1]
RECIPES_DIR = ROOT / "recipes"
DATA_DIR = ROOT / "tests" / "data"
SMOKE_DATA = DATA_DIR / "prefs_small.jsonl"


PLUGIN = "inspo_plugin.InSPOPlugin"
REFLECTIVE = "inspo_plugin.reflective"
# Built-in axolotl DPO strategies also accepted by the plugin (see the config contract).
BUILTIN_DPO_TYPE_PREFIXES = ("chat_template.", "chatml.", "llama3.")
# For rl runs axolotl validates dataset entries as DPODataset, which keeps only these keys.
DPO_DATASET_KEYS = {
    "path",
    "split",
    "type",
    "data_files",
    "revision",
    "field_messages",
    "field_chosen",
    "field_rejected",
}

# The `inspo:` block accepted by the plugin: key -> allowed values (None: any value of that type).
INSPO_KEYS: dict[str, tuple[Any, ...] | type | tuple[type, ...]] = {
    "loss_type": ("sigmoid", "one_sided", "ipo", "hinge", "robust", "rdpo", "simpo", "orpo"),
    "template": ("revise", "concat", "custom"),
    "reflection_prompt": str,
    "reference": ("unconditional", "conditional"),
    "uncond_weight": (int, float),
    "sft_weight": (int, float),
    "label_smoothing": (int, float),
    "ipo_tau": (int, float),
    "rdpo_alpha": (int, float),
    "simpo_gamma": (int, float),
    "orpo_lambda": (int, float),
    "on_invalid_row": ("error", "skip"),
    "field_prompt": str,
    "field_chosen": str,
    "field_rejected": str,
    "field_system": str,
    "field_question": str,
}

# recipe -> tiny-model family of the same architecture (and special tokens / chat template).
RECIPE_FAMILY = {
    "llama3-inspo.yml": "llama3",
    "llama3-inspo-fsdp2.yml": "llama3",
    "llama3-inspo-qlora.yml": "llama3",
    "mistral-inspo.yml": "mistral",
    "gemma2-inspo.yml": "gemma2",
    "tiny-cpu.yml": "chatml",
    "smollm2-demo.yml": "chatml",
}
FAMILY_MODEL_TYPE = {"llama3": "llama", "chatml": "llama", "mistral": "mistral", "gemma2": "gemma2"}
GPU_RECIPES = [
    "llama3-inspo.yml",
    "llama3-inspo-fsdp2.yml",
    "llama3-inspo-qlora.yml",
    "mistral-inspo.yml",
    "gemma2-inspo.yml",
]
CPU_RECIPES = ["tiny-cpu.yml", "smollm2-demo.yml"]
ALL_RECIPES = GPU_RECIPES + CPU_RECIPES

# The InSPO authors' runs (4 GPUs each): global batch, micro batch, tokens per response.
AUTHORS_GPUS = 4
AUTHORS_RUNS = {
    "llama3-inspo.yml": (16, 1, 128),
    "llama3-inspo-fsdp2.yml": (16, 1, 128),
    "mistral-inspo.yml": (32, 2, 512),
    "gemma2-inspo.yml": (4, 1, 256),
}
# Hyper-parameters the authors used for every model.
AUTHORS_COMMON = {
    "rl_beta": 0.1,
    "learning_rate": 5e-7,
    "num_epochs": 3,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.03,
    "cosine_min_lr_ratio": 0.1,
    "adam_beta1": 0.9,
    "adam_beta2": 0.95,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "bf16": True,
}
# Schedule shape and optimiser settings the other recipes keep from the authors.
AUTHORS_SHAPE = {k: v for k, v in AUTHORS_COMMON.items() if k not in ("learning_rate", "num_epochs")}

SMOKE_STEPS = 2


def load_recipe(name: str) -> dict[str, Any]:
    data = yaml.safe_load((RECIPES_DIR / name).read_text())
    assert isinstance(data, dict), f"{name} is not a YAML mapping"
    return data


def target_capabilities(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hardware a recipe is written for, as axolotl's validate_config describes it."""
    import torch

    env = {"torch_version": torch.__version__.split("+", 1)[0]}
    if name in CPU_RECIPES:
        from axolotl.cli.config import gpu_capabilities

        return gpu_capabilities()  # this machine: no GPU
    n_gpu = 1 if name == "llama3-inspo-qlora.yml" else AUTHORS_GPUS
    caps = {"bf16": True, "fp8": False, "tf32": True, "n_gpu": n_gpu, "compute_capability": "sm_90"}
    return caps, env


# ==================================================================================================
# Fixtures
# ==================================================================================================


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny random checkpoint per architecture family, built once per test session."""
    from inspo_plugin.models.tiny import save_tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny-models")
    return {
        family: save_tiny_checkpoint(root / family, family) for family in sorted(set(RECIPE_FAMILY.values()))
    }


@pytest.fixture
def fresh_plugins() -> Iterator[None]:
    """axolotl's PluginManager is a process-wide singleton: start and end every case with no plugins
    registered (as axolotl's own test suite does), and undo environment variables that config
    loading sets (accelerate / DeepSpeed / FSDP switches)."""
    from axolotl.integrations.base import PluginManager

    def reset() -> None:
        if PluginManager._instance is not None:
            PluginManager._instance.plugins = OrderedDict()
            PluginManager._instance.cfg = None

    saved_env = dict(os.environ)
    reset()
    yield
    reset()
    os.environ.clear()
    os.environ.update(saved_env)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network access attempted: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)


def validate(raw: dict[str, Any], name: str) -> Any:
    """The first half of axolotl's load_cfg: plugins register on the raw dict, then validation."""
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault(copy.deepcopy(raw))
    prepare_plugins(cfg)
    capabilities, env_capabilities = target_capabilities(name)
    return validate_config(cfg, capabilities=capabilities, env_capabilities=env_capabilities)


# ==================================================================================================
# 1. Content
# ==================================================================================================


def test_every_recipe_is_covered() -> None:
    on_disk = {p.name for p in RECIPES_DIR.glob("*.yml")} | {p.name for p in RECIPES_DIR.glob("*.yaml")}
    assert on_disk == set(ALL_RECIPES), "a recipe was added or removed: list it in RECIPE_FAMILY"


@pytest.mark.parametrize("name", ALL_RECIPES)
def test_recipe_declares_inspo(name: str) -> None:
    recipe = load_recipe(name)
    assert recipe["rl"] == "inspo"
    assert PLUGIN in recipe["plugins"]
    assert recipe["rl_beta"] == 0.1
    block = recipe["inspo"]
    assert isinstance(block, dict) and block, "the inspo: block is missing or empty"
    unknown = set(block) - set(INSPO_KEYS)
    assert not unknown, f"keys the plugin rejects: {sorted(unknown)}"
    for key, value in block.items():
        allowed = INSPO_KEYS[key]
        if isinstance(allowed, tuple) and all(isinstance(a, str) for a in allowed):
            assert value in allowed, f"inspo.{key}: {value!r} not in {allowed}"
        else:
            assert isinstance(value, allowed) and not isinstance(value, bool), f"inspo.{key}: {value!r}"
    assert ("reflection_prompt" in block) == (block.get("template") == "custom")
    assert recipe["sample_packing"] is False  # axolotl rejects packing for every rl mode
    for ds in recipe["datasets"]:
        assert ds["type"] == REFLECTIVE or ds["type"].startswith(BUILTIN_DPO_TYPE_PREFIXES), ds
        assert set(ds) <= DPO_DATASET_KEYS, (
            f"silently dropped by axolotl for rl runs: {set(ds) - DPO_DATASET_KEYS}"
        )
    # Numbers written like 5e-7 are strings to YAML 1.1; every numeric setting must really be numeric.
    for key in ("learning_rate", "rl_beta", "weight_decay", "max_grad_norm", "warmup_ratio"):
        if key in recipe:
            assert isinstance(recipe[key], int | float) and not isinstance(recipe[key], bool), key
    # Prepared data and outputs stay under the git-ignored outputs/ folder.
    assert recipe["dataset_prepared_path"].startswith("outputs/")
    assert recipe["output_dir"].startswith("outputs/")
    assert recipe.get("save_safetensors", True) is True


@pytest.mark.parametrize("name", GPU_RECIPES)
def test_gpu_recipe_settings(name: str) -> None:
    recipe = load_recipe(name)
    assert recipe["attn_implementation"] == "flash_attention_2"
    # The deprecated boolean clashes with the --attn-implementation override used for CPU smoke runs.
    assert not {"flash_attention", "sdp_attention", "eager_attention"} & set(recipe)
    assert recipe["bf16"] is True
    assert recipe.get("fp16") in (None, False)
    assert recipe["tf32"] in ("auto", True)
    assert (
        recipe["chat_template"]
        == {"llama3": "llama3", "mistral": "mistral_v1", "gemma2": "gemma"}[RECIPE_FAMILY[name]]
    )
    # Exactly one of the two: with both, axolotl skips FSDP's and warns.
    fsdp_checkpointing = (recipe.get("fsdp_config") or {}).get("activation_checkpointing") is True
    assert (recipe.get("gradient_checkpointing") is True) != fsdp_checkpointing
    assert "max_steps" not in recipe  # epochs, as the authors
    if RECIPE_FAMILY[name] in ("llama3", "mistral"):
        # Llama-3 and Mistral ship without a pad token; the recipe sets one distinct from the EOS.
        tokens = recipe["special_tokens"]
        assert tokens["pad_token"] not in (tokens.get("eos_token"), "<|eot_id|>", "</s>")


@pytest.mark.parametrize("name", sorted(AUTHORS_RUNS))
def test_recipe_uses_the_authors_hyperparameters(name: str) -> None:
    recipe = load_recipe(name)
    for key, value in AUTHORS_COMMON.items():
        assert recipe[key] == value, f"{key}: {recipe[key]!r} != authors' {value!r}"
    global_batch, micro, per_response = AUTHORS_RUNS[name]
    assert recipe["micro_batch_size"] == micro
    assert recipe["micro_batch_size"] * recipe["gradient_accumulation_steps"] * AUTHORS_GPUS == global_batch
    # Two responses per reflective sequence, plus the prompt and the bridge turn.
    assert 2 * per_response + 128 <= recipe["sequence_len"] <= 4 * per_response + 1024
    assert recipe["optimizer"] in ("adamw_torch", "adamw_torch_fused")
    assert recipe["inspo"]["loss_type"] == "sigmoid"
    assert recipe["inspo"]["reference"] == "unconditional"


@pytest.mark.parametrize("name", [n for n in GPU_RECIPES if "fsdp" not in n and "qlora" not in n])
def test_deepspeed_recipes_use_zero3(name: str) -> None:
    recipe = load_recipe(name)
    path = ROOT / recipe["deepspeed"]
    assert recipe["deepspeed"] == "recipes/deepspeed/zero3_bf16.json"
    assert path.is_file()
    assert json.loads(path.read_text())["zero_optimization"]["stage"] == 3
    assert "fsdp_config" not in recipe and "fsdp_version" not in recipe


def test_fsdp2_recipe() -> None:
    from axolotl.utils.schemas.fsdp import FSDPConfig
    from transformers.models.llama import modeling_llama

    recipe = load_recipe("llama3-inspo-fsdp2.yml")
    assert "deepspeed" not in recipe
    assert recipe["fsdp_version"] == 2
    fsdp = recipe["fsdp_config"]
    assert set(fsdp) <= set(FSDPConfig.model_fields), set(fsdp) - set(FSDPConfig.model_fields)
    assert not [k for k in fsdp if k.startswith("fsdp_")], "the fsdp_ prefix is deprecated in 0.21"
    assert fsdp["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert hasattr(modeling_llama, fsdp["transformer_layer_cls_to_wrap"])
    assert fsdp["reshard_after_forward"] is True  # full sharding, like the authors' ZeRO-3
    assert fsdp["state_dict_type"] == "FULL_STATE_DICT"
    assert fsdp["cpu_ram_efficient_loading"] is False  # the reference model is not broadcast from rank 0
    # Everything except the sharding backend matches the DeepSpeed recipe.
    plain = load_recipe("llama3-inspo.yml")
    skip = {"deepspeed", "fsdp_version", "fsdp_config", "output_dir", "dataset_prepared_path"}
    skip |= {"gradient_checkpointing", "gradient_checkpointing_kwargs"}
    assert {k: v for k, v in recipe.items() if k not in skip} == {
        k: v for k, v in plain.items() if k not in skip
    }


def test_qlora_recipe() -> None:
    recipe = load_recipe("llama3-inspo-qlora.yml")
    assert recipe["adapter"] == "qlora" and recipe["load_in_4bit"] is True
    assert recipe.get("load_in_8bit") in (None, False)
    assert not {"deepspeed", "fsdp_config", "fsdp_version", "rl_adapter_ref_model"} & set(recipe)
    assert recipe["lora_target_linear"] is True
    assert recipe["lora_r"] > 0 and recipe["lora_alpha"] > 0 and 0 <= recipe["lora_dropout"] < 1
    assert recipe["micro_batch_size"] * recipe["gradient_accumulation_steps"] == 16  # authors' global batch
    assert 5e-7 < recipe["learning_rate"] <= 5e-5  # adapters need a larger step than a full fine-tune
    assert recipe["sequence_len"] == 512
    for key, value in AUTHORS_SHAPE.items():
        assert recipe[key] == value, key


@pytest.mark.parametrize("name", CPU_RECIPES)
def test_cpu_recipe_settings(name: str) -> None:
    recipe = load_recipe(name)
    assert recipe["bf16"] is False and recipe["fp16"] is False and recipe["tf32"] is False
    assert recipe["attn_implementation"] == "sdpa"
    assert not {"deepspeed", "fsdp_config", "fsdp_version", "load_in_4bit", "load_in_8bit", "adapter"} & set(
        recipe
    )
    assert "bnb" not in recipe["optimizer"] and "paged" not in recipe["optimizer"]
    assert recipe["chat_template"] == "chatml"
    assert recipe["dataset_num_proc"] == 1
    assert recipe["base_model"].startswith("outputs/")
    # The final checkpoint keeps trainer_state.json, the logged loss / margin history.
    assert recipe["save_strategy"] == "steps" and recipe["save_steps"] == recipe["max_steps"]


def test_tiny_cpu_recipe() -> None:
    recipe = load_recipe("tiny-cpu.yml")
    assert recipe["base_model"] == "outputs/tiny-model"
    assert recipe["datasets"][0]["path"] == "tests/data/prefs_small.jsonl"
    assert recipe["max_steps"] <= 10 and recipe["micro_batch_size"] == 2 and recipe["logging_steps"] == 1
    assert recipe["save_safetensors"] is True


def test_smollm2_demo_recipe() -> None:
    recipe = load_recipe("smollm2-demo.yml")
    assert recipe["base_model"] == "outputs/smollm2-135m-instruct"
    assert recipe["datasets"][0]["path"] == "inspo_plugin/data/ifeval_prefs/train_natural.jsonl"
    # The demo must fit its 20-minute CPU budget (~2.5 s per pair on 2 cores) and see each pair once.
    pairs_seen = recipe["max_steps"] * recipe["micro_batch_size"] * recipe["gradient_accumulation_steps"]
    train_rows = (ROOT / recipe["datasets"][0]["path"]).read_text().count("\n")
    assert 64 <= pairs_seen <= min(train_rows, 400), pairs_seen
    assert recipe["sequence_len"] == 512 and recipe["max_steps"] % recipe["logging_steps"] == 0
    assert 5e-6 <= recipe["learning_rate"] <= 5e-5
    assert "CPU DEMO" in (RECIPES_DIR / "smollm2-demo.yml").read_text().splitlines()[0]
    for key, value in AUTHORS_SHAPE.items():
        if key != "bf16":
            assert recipe[key] == value, key


@pytest.mark.parametrize("name", ALL_RECIPES)
def test_recipe_local_files_exist(name: str) -> None:
    """Files a recipe reads from the repository (deepspeed JSON, local datasets) are there.
    Model directories under outputs/ are built by documented commands, so they are not required."""
    recipe = load_recipe(name)
    paths = [recipe["deepspeed"]] if "deepspeed" in recipe else []
    paths += [ds["path"] for ds in recipe["datasets"] if ds["path"].endswith((".json", ".jsonl"))]
    missing = [p for p in paths if not (ROOT / p).is_file()]
    assert not missing, f"{name}: missing {missing}"


def test_deepspeed_configs() -> None:
    from accelerate.utils.deepspeed import HfDeepSpeedConfig

    zero3 = RECIPES_DIR / "deepspeed" / "zero3_bf16.json"
    zero2 = RECIPES_DIR / "deepspeed" / "zero2.json"
    for path in (zero3, zero2):
        config = json.loads(path.read_text())
        # Batch sizes, accumulation and clipping come from the recipe through the HF trainer.
        for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
            assert config[key] == "auto", (path.name, key)
        assert config["gradient_clipping"] == "auto", path.name
        assert "optimizer" not in config and "scheduler" not in config  # the recipe's AdamW + cosine
    ds3 = HfDeepSpeedConfig(str(zero3))
    assert ds3.is_zero3() and not ds3.is_offload()
    assert ds3.get_value("bf16.enabled") is True
    assert ds3.get_value("zero_optimization.stage3_gather_16bit_weights_on_model_save") is True
    assert HfDeepSpeedConfig(str(zero2)).is_zero2()


def test_smoke_datasets_have_the_documented_shapes() -> None:
    def rows(name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (DATA_DIR / name).read_text().splitlines() if line.strip()]

    small = rows("prefs_small.jsonl")
    assert len(small) == 32
    for row in small:
        assert set(row) == {"prompt", "chosen", "rejected"}
        assert all(isinstance(v, str) and v.strip() for v in row.values())
        assert row["chosen"] != row["rejected"]
    messages = rows("prefs_messages.jsonl")
    assert len(messages) == 16
    for row in messages:
        for key in ("chosen", "rejected"):
            assert [m["role"] for m in row[key]] == ["user", "assistant"]
            assert row[key][0]["content"] == row["prompt"]
        assert row["score_chosen"] > row["score_rejected"]
    orca = rows("prefs_orca.jsonl")
    assert len(orca) == 16
    for row in orca:
        assert set(row) == {"system", "question", "chosen", "rejected"}
    assert any(row["system"] for row in orca) and any(not row["system"] for row in orca)


@pytest.mark.parametrize(
    ("file", "system_turns"),
    [("prefs_small.jsonl", 0), ("prefs_messages.jsonl", 0), ("prefs_orca.jsonl", 11)],
)
def test_smoke_datasets_are_accepted_preference_rows(file: str, system_turns: int) -> None:
    """Each shape normalises to the same conversational row (a non-empty system prompt becomes a
    system turn; an empty one is dropped)."""
    from inspo_plugin.core.rows import normalize_row

    lines = (DATA_DIR / file).read_text().splitlines()
    normalised = [normalize_row(json.loads(line), i, file) for i, line in enumerate(lines)]
    for row in normalised:
        assert row["prompt"][-1]["role"] == "user"
        assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
    assert sum(row["prompt"][0]["role"] == "system" for row in normalised) == system_turns


# ==================================================================================================
# 2. axolotl validation with the plugin loaded
# ==================================================================================================


@pytest.mark.parametrize("name", ALL_RECIPES)
def test_recipe_passes_axolotl_validation(
    name: str, tiny_models: dict[str, Path], fresh_plugins: None, no_network: None
) -> None:
    from axolotl.utils.config import normalize_config

    raw = load_recipe(name)
    cfg = validate(raw, name)  # the recipe exactly as written, Hub model ids included
    # The plugin maps rl: inspo onto axolotl's DPO pipeline with the InSPO trainer.
    assert cfg.rl == "dpo"
    assert "inspo_plugin" in str(cfg.trainer_cls)
    assert cfg.rl_beta == raw["rl_beta"]
    assert cfg.inspo is not None
    for key, value in raw["inspo"].items():
        assert cfg.inspo[key] == value, key
    assert cfg.learning_rate == raw["learning_rate"]
    assert cfg.sequence_len == raw["sequence_len"]
    assert cfg.attn_implementation == raw["attn_implementation"]
    if "fsdp_config" in raw:
        assert cfg.fsdp_version == 2
        assert (
            cfg.fsdp_config["transformer_layer_cls_to_wrap"]
            == raw["fsdp_config"]["transformer_layer_cls_to_wrap"]
        )
    # normalize_config reads the model's config.json: use a local model of the same family.
    family = RECIPE_FAMILY[name]
    cfg.base_model = str(tiny_models[family])
    cfg.base_model_config = str(tiny_models[family])
    normalize_config(cfg)
    assert cfg.model_config_type == FAMILY_MODEL_TYPE[family]
    assert cfg.batch_size == raw["micro_batch_size"] * raw["gradient_accumulation_steps"]


def test_inspo_block_typo_is_rejected(fresh_plugins: None, no_network: None) -> None:
    """The plugin validates its block strictly: a misspelt key fails instead of being dropped."""
    raw = load_recipe("llama3-inspo.yml")
    raw["inspo"]["loss_typo"] = "ipo"
    with pytest.raises(ValueError, match="loss_typo"):
        validate(raw, "llama3-inspo.yml")


def test_cli_overrides_turn_a_gpu_recipe_into_a_cpu_run(
    tiny_models: dict[str, Path], tmp_path: Path, fresh_plugins: None, no_network: None
) -> None:
    """`axolotl train cfg.yml --attn-implementation sdpa --bf16 false` reaches load_cfg as string
    keyword arguments; the string "false" must become the boolean False for a recipe with bf16: true."""
    from axolotl.cli.config import load_cfg

    path = write_smoke_config("llama3-inspo.yml", tiny_models, tmp_path)
    cfg = load_cfg(str(path), attn_implementation="sdpa", bf16="false")
    assert cfg.attn_implementation == "sdpa"
    assert cfg.bf16 is False
    assert cfg.rl == "dpo" and "inspo_plugin" in str(cfg.trainer_cls)


def test_axolotl_cli_has_the_override_options() -> None:
    proc = subprocess.run(
        [str(AXOLOTL_BIN), "train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **OFFLINE_ENV},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--attn-implementation" in proc.stdout and "--bf16" in proc.stdout


# ==================================================================================================
# 3. CPU smoke training through the real CLI
# ==================================================================================================


def write_smoke_config(
    name: str, tiny_models: dict[str, Path], tmp_path: Path, *, save_prepared: bool = True
) -> Path:
    """The recipe, made runnable on a CPU in seconds; everything else is kept as written.

    - base_model: a tiny random model of the same family (architecture, special tokens, template).
    - data: tests/data/prefs_small.jsonl through the reflective strategy.
    - DeepSpeed / FSDP removed: both need GPUs (and one process per GPU).
    - QLoRA becomes LoRA: bitsandbytes' 4-bit kernels need CUDA. The adapter path is the same: LoRA
      modules on every linear layer, the reference model is the base with the adapters disabled.
    - Two optimizer steps, no gradient accumulation, a checkpoint at the end (for trainer_state.json).
    - ``save_prepared=False`` skips writing the prepared data to disk: with datasets 5 that write
      always goes through a freshly spawned worker process (even for num_proc=1), 7-20 s on 2 cores.
    """
    cfg = load_recipe(name)
    family = RECIPE_FAMILY[name]
    cfg["base_model"] = str(tiny_models[family])
    for key in ("deepspeed", "fsdp_config", "fsdp_version", "load_in_4bit", "load_in_8bit"):
        cfg.pop(key, None)
    if cfg.get("adapter") == "qlora":
        cfg["adapter"] = "lora"
    cfg["datasets"] = [{"path": str(SMOKE_DATA), "split": "train", "type": REFLECTIVE}]
    cfg["dataset_prepared_path"] = str(tmp_path / "prepared")
    cfg["output_dir"] = str(tmp_path / "out")
    cfg["dataset_num_proc"] = 1
    if not save_prepared:
        cfg["skip_prepare_dataset"] = True
    cfg["max_steps"] = SMOKE_STEPS
    cfg["gradient_accumulation_steps"] = 1
    cfg["micro_batch_size"] = min(cfg["micro_batch_size"], 2)
    cfg["logging_steps"] = 1
    cfg["save_strategy"] = "steps"
    cfg["save_steps"] = SMOKE_STEPS
    if cfg.get("val_set_size"):
        # 4 of the 32 pairs held out, evaluated once, at the end.
        cfg["val_set_size"] = 0.125
        cfg.pop("evals_per_epoch", None)
        cfg["eval_strategy"] = "steps"
        cfg["eval_steps"] = SMOKE_STEPS
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.e2e
@pytest.mark.parametrize("name", ALL_RECIPES)
def test_recipe_trains_on_cpu(name: str, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """Two optimizer steps through ``axolotl train``. The documented CPU recipe runs the full default
    path: the accelerate launcher (axolotl re-executes itself under ``accelerate launch``) and the
    prepared data saved to disk. The others use ``--launcher python`` (the same training code in one
    process) and keep the prepared data in memory, which saves a second start-up of torch + axolotl
    and a spawned dataset writer, ~40 s per recipe on 2 cores."""
    full_path = name == "tiny-cpu.yml"
    config = write_smoke_config(name, tiny_models, tmp_path, save_prepared=full_path)
    launcher = "accelerate" if full_path else "python"
    proc, seconds = run_axolotl(
        "train", config, tmp_path, launcher, extra=("--attn-implementation", "sdpa", "--bf16", "false")
    )
    output = proc.stdout[-6000:] + "\n--- stderr ---\n" + proc.stderr[-6000:]
    assert proc.returncode == 0, f"axolotl train failed after {seconds:.0f}s:\n{output}"
    print(f"{name}: {seconds:.1f}s")

    out = tmp_path / "out"
    recipe = load_recipe(name)
    weights = "adapter_model.safetensors" if recipe.get("adapter") else "model.safetensors"
    assert (out / weights).is_file(), f"no {weights} in {sorted(p.name for p in out.iterdir())}"
    state_file = out / f"checkpoint-{SMOKE_STEPS}" / "trainer_state.json"
    assert state_file.is_file(), f"no checkpoint-{SMOKE_STEPS}/trainer_state.json:\n{output}"
    state = json.loads(state_file.read_text())
    assert state["global_step"] == SMOKE_STEPS
    history = state["log_history"]
    margins = logged(history, "inspo/margin_cond")
    assert len(margins) == SMOKE_STEPS, f"inspo/margin_cond not logged every step: {history}"
    assert all(math.isfinite(m) for m in margins), margins
    losses = logged(history, "loss")
    assert losses and all(math.isfinite(x) for x in losses), history
    if recipe.get("val_set_size"):
        assert [x for x in logged(history, "eval_loss") if math.isfinite(x)], history
        assert [x for x in logged(history, "eval_inspo/margin_cond") if math.isfinite(x)], history
