"""``InSPOConfig``: TRL's ``DPOConfig`` plus the InSPO options (declared in :mod:`inspo_plugin.options`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from trl import DPOConfig

from inspo_plugin.options import InSPOOptions, OptionError
from inspo_plugin.trl.parity import check_dpo_options


@dataclass
class InSPOConfig(InSPOOptions, DPOConfig):  # type: ignore[misc]  # loss_type: one name here, a list in TRL
    """``DPOConfig`` plus the InSPO options (:class:`~inspo_plugin.options.InSPOOptions`).

    ``beta`` and ``label_smoothing`` are shared with DPO and keep their DPO meaning; ``loss_type``
    names one InSPO objective. ``max_length`` bounds each reflective sequence (prompt + both answers
    + bridge), so it should be about prompt + 2 × answer length. Every other ``DPOConfig`` option is
    honoured or, when set, refused: :data:`~inspo_plugin.trl.parity.DPO_OPTIONS`.
    """

    def __post_init__(self) -> None:
        if isinstance(self.loss_type, list):  # TRL's form, e.g. when a saved config is loaded again
            if len(self.loss_type) != 1:
                raise OptionError(f"loss_type: InSPO takes one loss type, got {self.loss_type}")
            self.loss_type = self.loss_type[0]
        InSPOOptions.validate(self)  # with the option names the user wrote, before TRL's checks
        check_dpo_options(self)  # every DPO option is honoured or refused (see trl/parity.py)
        DPOConfig.__post_init__(self)  # TRL stores loss_type as a one-element list

    def inspo_options(self) -> InSPOOptions:
        """The InSPO options of this config (how every InSPO trainer reads its options)."""
        values: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(InSPOOptions)}
        if isinstance(values["loss_type"], list):
            values["loss_type"] = values["loss_type"][0]
        return InSPOOptions.from_mapping(values, where=type(self).__name__)
