"""Batch samplers with a state that can be saved and restored (exact resume).

* :class:`IdentitySampler` (FastReID ``NaiveIdentitySampler``, torchreid ``RandomIdentitySampler``):
  each batch holds P = batch / K identities drawn at random, K images each (drawn without
  replacement when the identity has K or more, else with replacement).
* :class:`ShuffleSampler` (FastReID ``TrainingSampler``): a plain shuffle, epoch after epoch.

Both draw from their own numpy ``Generator``; ``state_dict()`` holds only plain Python types.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trackreid.errors import InputError


class IdentitySampler:
    def __init__(self, pids: np.ndarray, batch_size: int, num_instance: int, seed: int) -> None:
        self.pids = np.asarray(pids)
        self.k = num_instance
        self.p = batch_size // num_instance
        self.identities = np.unique(self.pids)
        self.members = [np.flatnonzero(self.pids == pid) for pid in self.identities]
        if len(self.identities) < self.p:
            raise InputError(
                f"SOLVER.IMS_PER_BATCH {batch_size} / DATALOADER.NUM_INSTANCE {num_instance} asks for "
                f"{self.p} identities per batch, but the training set has {len(self.identities)}; lower "
                "SOLVER.IMS_PER_BATCH or add identities"
            )
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> np.ndarray:
        chosen = self.rng.choice(len(self.identities), size=self.p, replace=False)
        out = []
        for c in chosen:
            idx = self.members[int(c)]
            out.append(self.rng.choice(idx, size=self.k, replace=len(idx) < self.k))
        return np.concatenate(out)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "identity", "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class ShuffleSampler:
    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n < batch_size:
            raise InputError(f"SOLVER.IMS_PER_BATCH {batch_size} is larger than the training set ({n} images)")
        self.n = n
        self.batch = batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(n)
        self.pos = 0

    def next_batch(self) -> np.ndarray:
        if self.pos + self.batch > self.n:
            self.order = self.rng.permutation(self.n)
            self.pos = 0
        out = self.order[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "shuffle", "rng": self.rng.bit_generator.state, "order": self.order.tolist(), "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.pos = int(state["pos"])


Sampler = IdentitySampler | ShuffleSampler


def build_sampler(kind: str, pids: np.ndarray, batch_size: int, num_instance: int, seed: int) -> Sampler:
    if kind == "TrainingSampler":
        return ShuffleSampler(len(pids), batch_size, seed)
    return IdentitySampler(pids, batch_size, num_instance, seed)
