"""Names to padded tensors, encoded once; batches are index slices trimmed to their longest name."""
from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_LEN = 64  # longer inputs are cut to this many characters


@dataclass
class Batch:
    ids: torch.Tensor       # (B, T) character ids, right-padded with 0
    lengths: torch.Tensor   # (B,) on the CPU, as pack_padded_sequence wants
    y: torch.Tensor         # (B,) label ids
    target: torch.Tensor | None = None  # (B, T) next-character ids (generators)


@dataclass
class Encoded:
    ids: torch.Tensor
    lengths: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor, device: torch.device) -> Batch:
        lengths = self.lengths[idx]
        T = int(lengths.max()) if len(idx) else 1
        nb = device.type == "cuda"
        move = lambda t: t[idx, :T].to(device, non_blocking=nb)
        return Batch(ids=move(self.ids), lengths=lengths, y=self.y[idx].to(device, non_blocking=nb),
                     target=move(self.target) if self.target is not None else None)


def pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([max(1, len(s)) for s in seqs], dtype=torch.long)
    ids = torch.zeros(len(seqs), int(lengths.max()) if seqs else 1, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, lengths


def encode(pairs, vocab, label_index: dict[str, int], task: str) -> Encoded:
    names = [vocab.encode(n)[:MAX_LEN] for n, _ in pairs]
    y = torch.tensor([label_index[lab] for _, lab in pairs], dtype=torch.long)
    if task == "classify":
        ids, lengths = pad(names)
        return Encoded(ids, lengths, y)
    ids, lengths = pad([[vocab.BOS] + s for s in names])
    target, _ = pad([s + [vocab.EOS] for s in names])
    return Encoded(ids, lengths, y, target)


def epoch_batches(lengths: torch.Tensor, batch_size: int, generator: torch.Generator, pool: int = 50) -> list[torch.Tensor]:
    """Shuffled batches of similar-length names: shuffle, sort within pools of ``pool`` batches by length,
    cut into batches, shuffle the batches. Fewer padded time steps per batch, same randomness per epoch."""
    order = torch.randperm(len(lengths), generator=generator)
    batches = []
    for s in range(0, len(order), batch_size * pool):
        chunk = order[s:s + batch_size * pool]
        chunk = chunk[torch.sort(lengths[chunk], stable=True).indices]
        batches.extend(chunk.split(batch_size))
    perm = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in perm]
