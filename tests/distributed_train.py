"""Train ``InSPOTrainer`` on the tiny ChatML model, for ``tests/test_multiprocess.py``.

Run as ``python tests/distributed_train.py OUT MICRO_BATCH`` (one process) or under
``torchrun --nproc_per_node 2`` (CPU, gloo). Every process builds the same model (fixed seed) and
data (16 valid rows and 2 invalid ones, ``on_invalid_row: skip``), trains 4 steps and writes
``OUT/rank<r>.json``: whether it wrote the dropped-rows report, whether it saved model weights, and
its view of the logged history. Process 0 also leaves the checkpoint ``OUT/checkpoint-4``.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

from inspo_plugin.offline import apply_offline_defaults

apply_offline_defaults()

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402

from inspo_plugin import InSPOConfig, InSPOTrainer  # noqa: E402
from inspo_plugin.core.rows import DropReport  # noqa: E402
from inspo_plugin.models.tiny import build_tiny_model, build_tiny_tokenizer  # noqa: E402

STEPS = 4


def rows() -> list[dict]:
    words = ["sun", "river", "stone", "cloud", "apple", "tiger", "music", "paper"]
    out = []
    for i in range(16):
        text = " ".join(words[(i + k) % len(words)] for k in range(3 + i % 4)) + "."
        out.append({"prompt": f"Write sentence {i}.", "chosen": text, "rejected": text.upper()})
    out.insert(5, {"prompt": "p", "chosen": "same", "rejected": "same"})
    out.insert(11, {"prompt": "p", "chosen": "", "rejected": "b"})
    return out


def main(out: Path, micro_batch: int) -> None:
    rank = int(os.environ.get("RANK", "0"))
    events = {"wrote_report": False, "saved_weights": False}

    write = DropReport.write

    def recording_write(self: DropReport, path: str | Path) -> Path:
        events["wrote_report"] = True
        return write(self, path)

    save = InSPOTrainer._save

    def recording_save(self: InSPOTrainer, *args: object, **kwargs: object) -> None:
        events["saved_weights"] = True
        save(self, *args, **kwargs)

    DropReport.write = recording_write  # type: ignore[method-assign]
    InSPOTrainer._save = recording_save  # type: ignore[method-assign]

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer("chatml")
    model = build_tiny_model(tokenizer, "chatml", seed=0)
    args = InSPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=micro_batch,
        max_steps=STEPS,
        logging_steps=1,
        save_strategy="steps",
        save_steps=STEPS,
        report_to=[],
        learning_rate=0.5,
        optim="sgd",  # no per-coordinate normalisation that would magnify rounding differences
        max_length=256,
        use_cpu=True,
        seed=0,
        on_invalid_row="skip",
        dataloader_drop_last=True,
    )
    trainer = InSPOTrainer(
        model=model,
        ref_model=copy.deepcopy(model),
        args=args,
        train_dataset=Dataset.from_list(rows()),
        processing_class=tokenizer,
    )
    trainer.train()
    result = {
        **events,
        "world_size": trainer.accelerator.num_processes,
        "history": trainer.state.log_history,
        "dropped": trainer.drop_reports["train"].dropped,
        "weights": {name: param.detach().double().norm().item() for name, param in model.named_parameters()},
    }
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
