"""The pieces :func:`training.lora.train_lora` hands to ``transformers.Trainer``: the rows
as a map-style dataset, the epoch order as a torch ``Sampler``, a Trainer that uses that
sampler, and a callback that sends the Trainer's logs to our logger.

Kept apart from :mod:`training.lora` so importing that module (the CLI does, for
:func:`~training.lora.target_modules`) does not import torch and transformers."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from training.lora import _epoch_order

log = logging.getLogger("training.lora")

Row = tuple[list[int], list[int]]


class Rows(torch.utils.data.Dataset[dict[str, list[int]]]):
    """Encoded (input ids, labels) rows as the feature dicts the collator pads."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        ids, labels = self.rows[index]
        return {"input_ids": ids, "labels": labels}


class EpochOrderSampler(torch.utils.data.Sampler[int]):
    """Yields :func:`~training.lora._epoch_order` of epoch ``e`` (seed ``seed + e``) after
    ``set_epoch(e)``, which Trainer calls (through accelerate's ``DataLoaderShard.set_epoch``)
    before every epoch, a resumed one included: the order is a function of the epoch alone,
    so a resumed run, which skips the epoch's batches already trained, sees the batches the
    uninterrupted run saw. Under several processes accelerate deals its micro-batches out."""

    def __init__(self, rows: Sequence[Row], strata: Sequence[str], micro_batch: int, seed: int):
        self.rows, self.strata, self.micro_batch, self.seed = rows, strata, micro_batch, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[int]:
        return iter(_epoch_order(self.rows, self.strata, self.micro_batch, self.seed + self.epoch))


class OrderedTrainer(Trainer):
    """A ``Trainer`` whose training batches follow ``sampler`` (``_get_train_sampler`` is
    where transformers 5 builds its own random or length-grouped one)."""

    def __init__(self, *args: Any, sampler: EpochOrderSampler, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sampler = sampler

    def _get_train_sampler(self, train_dataset: Any = None) -> EpochOrderSampler:
        return self.sampler


class LogLosses(TrainerCallback):
    """The Trainer's logs (loss, learning rate, gradient norm per logged step) to our logger,
    from the main process only."""

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if state.is_world_process_zero and logs:
            shown = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items()
            )
            log.info("step %d of %d: %s", state.global_step, state.max_steps, shown)
