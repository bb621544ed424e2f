"""``KillAtStep``: the training process sends itself SIGKILL at the end of a chosen optimizer step.

The step is ``$INSPO_TEST_KILL_AT_STEP``; the kill comes after that step's optimizer update and
before its logging and saving, so nothing of it is written: a crash between two checkpoints.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

KILL_AT_STEP_ENV = "INSPO_TEST_KILL_AT_STEP"


class _Kill(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class KillAtStep(BasePlugin):  # type: ignore[misc]
    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list[Any]:
        step = os.environ.get(KILL_AT_STEP_ENV)
        return [_Kill(int(step))] if step else []
