"""Safe defaults: no remote code unless asked, safe YAML, no unpickling, Axolotl telemetry off.

The source checks read the code (``ast``), so they see every call however it is formatted; each
checker is also shown a bad snippet, so a checker that finds nothing cannot pass silently.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from inspo_plugin.axolotl.launch import axolotl_env
from inspo_plugin.axolotl.plugin import register_inspo
from inspo_plugin.offline import OFFLINE_ENV, offline_env

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "inspo_plugin"
PYTHON_DIRS = ("inspo_plugin", "tests", "scripts", "bench", "lint")


def _python_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py"))


def _call_name(node: ast.Call) -> str:
    """``yaml.load`` for ``yaml.load(...)``, ``load`` for ``load(...)``."""
    parts: list[str] = []
    func: ast.expr = node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


# -- trust_remote_code ----------------------------------------------------------------------------


def remote_code_problems(source: str) -> list[str]:
    """Calls or literals that turn ``trust_remote_code`` on."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _is_true(_keyword(node, "trust_remote_code")):
            problems.append(f"line {node.lineno}: {_call_name(node)}(trust_remote_code=True)")
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and _is_true(value):
                    problems.append(f"line {node.lineno}: {{'trust_remote_code': True}}")
    return problems


def test_remote_code_checker_sees_a_bad_call():
    assert remote_code_problems("AutoModel.from_pretrained('x', trust_remote_code=True)")
    assert remote_code_problems("kwargs = {'trust_remote_code': True}")
    assert not remote_code_problems(
        "AutoModel.from_pretrained('x', trust_remote_code=args.trust_remote_code)"
    )


@pytest.mark.parametrize("path", _python_files("inspo_plugin", "scripts", "bench"), ids=lambda p: p.name)
def test_no_code_turns_trust_remote_code_on(path):
    assert not remote_code_problems(path.read_text()), path


def test_trl_config_and_tokenizer_loading_keep_remote_code_off(tmp_path, monkeypatch):
    from transformers import AutoProcessor

    from inspo_plugin import InSPOConfig
    from inspo_plugin.trl import trainer

    config = InSPOConfig(output_dir=str(tmp_path), use_cpu=True)
    assert config.trust_remote_code is False
    seen: dict = {}
    monkeypatch.setattr(AutoProcessor, "from_pretrained", lambda *a, **kw: seen.update(kw))
    trainer._load_processing_class("some/model", config)
    assert seen["trust_remote_code"] is False
    trainer._load_processing_class(
        "some/model", InSPOConfig(output_dir=str(tmp_path), use_cpu=True, trust_remote_code=True)
    )
    assert seen["trust_remote_code"] is True  # the user's choice is honoured


def test_recipes_and_the_plugin_leave_trust_remote_code_unset():
    for recipe in sorted((ROOT / "recipes").glob("*.yml")):
        cfg = yaml.safe_load(recipe.read_text())
        assert not cfg.get("trust_remote_code"), recipe.name
        register_inspo(cfg)
        assert not cfg.get("trust_remote_code"), f"register_inspo turned it on for {recipe.name}"


# -- YAML -----------------------------------------------------------------------------------------

SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
UNSAFE_YAML = {"unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}


def yaml_problems(source: str) -> list[str]:
    """YAML loading that can construct arbitrary Python objects."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        leaf = name.rsplit(".", 1)[-1]
        if not name.startswith("yaml.") and leaf not in UNSAFE_YAML:
            continue
        if leaf in UNSAFE_YAML:
            problems.append(f"line {node.lineno}: {name}")
        elif leaf in ("load", "load_all"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            loader_name = loader.attr if isinstance(loader, ast.Attribute) else getattr(loader, "id", None)
            if loader_name not in SAFE_LOADERS:
                problems.append(f"line {node.lineno}: {name} with Loader={loader_name}")
    return problems


def test_yaml_checker_sees_unsafe_loading():
    assert yaml_problems("yaml.load(text)")
    assert yaml_problems("yaml.load(text, Loader=yaml.FullLoader)")
    assert yaml_problems("yaml.unsafe_load(text)")
    assert not yaml_problems("yaml.safe_load(text)")
    assert not yaml_problems("yaml.load(text, Loader=yaml.SafeLoader)")


@pytest.mark.parametrize("path", _python_files(*PYTHON_DIRS), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_is_loaded_with_safe_loaders(path):
    assert not yaml_problems(path.read_text()), path


# -- unpickling -----------------------------------------------------------------------------------

PICKLE_CALLS = re.compile(
    r"^(c?[Pp]ickle\.(load|loads|Unpickler)|dill\.(load|loads)|joblib\.load|cloudpickle\.(load|loads)|"
    r"(pd|pandas)\.read_pickle|shelve\.open|marshal\.loads?)$"
)


def unpickling_problems(source: str) -> list[str]:
    """Calls that unpickle: pickle/dill/joblib loads, ``torch.load`` without ``weights_only=True``,
    ``numpy.load`` with ``allow_pickle=True``."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        if PICKLE_CALLS.match(name):
            problems.append(f"line {node.lineno}: {name}")
        elif name == "torch.load" and not _is_true(_keyword(node, "weights_only")):
            problems.append(f"line {node.lineno}: torch.load without weights_only=True")
        elif name in ("np.load", "numpy.load") and _is_true(_keyword(node, "allow_pickle")):
            problems.append(f"line {node.lineno}: {name}(allow_pickle=True)")
    return problems


def test_unpickling_checker_sees_each_kind():
    for bad in (
        "pickle.load(fh)",
        "pickle.loads(b)",
        "torch.load(path)",
        "torch.load(path, weights_only=False)",
        "np.load(path, allow_pickle=True)",
        "pd.read_pickle(path)",
        "joblib.load(path)",
    ):
        assert unpickling_problems(bad), bad
    assert not unpickling_problems("torch.load(path, weights_only=True)")
    assert not unpickling_problems("json.loads(text)")


@pytest.mark.parametrize("path", _python_files("inspo_plugin", "scripts", "bench"), ids=lambda p: p.name)
def test_nothing_is_unpickled_from_datasets_or_checkpoints(path):
    assert not unpickling_problems(path.read_text()), path


# -- Axolotl telemetry ----------------------------------------------------------------------------

DO_NOT_TRACK = re.compile(r"""AXOLOTL_DO_NOT_TRACK\s*[=:]\s*["']?1\b""")
RUNS_AXOLOTL = re.compile(
    r"\baxolotl (train|preprocess|evaluate|inference|merge)|inspo_plugin demo|make (test|demo)"
)


def test_every_command_of_ours_starts_axolotl_without_telemetry(monkeypatch):
    assert OFFLINE_ENV["AXOLOTL_DO_NOT_TRACK"] == "1"
    monkeypatch.delenv("AXOLOTL_DO_NOT_TRACK", raising=False)
    assert axolotl_env()["AXOLOTL_DO_NOT_TRACK"] == "1"  # the demo, bench and tests launch through it
    # ... and a user who turns telemetry on keeps it on.
    assert offline_env({"AXOLOTL_DO_NOT_TRACK": "0"})["AXOLOTL_DO_NOT_TRACK"] == "0"


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.yml")), ids=lambda p: p.name)
def test_every_recipe_shows_its_launch_command_without_telemetry(recipe):
    assert DO_NOT_TRACK.search(recipe.read_text()), f"{recipe.name}: no AXOLOTL_DO_NOT_TRACK=1 in its header"


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "docker").glob("Dockerfile*")), ids=lambda p: p.name)
def test_every_image_turns_telemetry_off(dockerfile):
    env_lines = [line for line in dockerfile.read_text().splitlines() if "AXOLOTL_DO_NOT_TRACK" in line]
    assert any(DO_NOT_TRACK.search(line) for line in env_lines), dockerfile.name


@pytest.mark.parametrize(
    "workflow", sorted((ROOT / ".github" / "workflows").glob("*.yml")), ids=lambda p: p.name
)
def test_every_workflow_that_runs_axolotl_turns_telemetry_off(workflow):
    text = workflow.read_text()
    if RUNS_AXOLOTL.search(text) or "axolotl" in str(yaml.safe_load(text).get("jobs", "")).lower():
        assert DO_NOT_TRACK.search(text), f"{workflow.name} runs Axolotl without AXOLOTL_DO_NOT_TRACK=1"


def test_readme_says_how_to_turn_telemetry_on():
    readme = (ROOT / "README.md").read_text()
    assert "AXOLOTL_DO_NOT_TRACK=1" in readme
    assert "AXOLOTL_DO_NOT_TRACK=0" in readme, "README must say how to turn Axolotl's telemetry back on"
