"""Names to padded tensors, encoded once; batches are index slices trimmed to their longest name.

Encoding is array work: all names are joined into one string, turned into code points at once, mapped to
vocabulary ids through a small table of the distinct code points, and scattered into a padded matrix. The
matrix holds the smallest integer type that fits the vocabulary (uint8 for any vocabulary of up to 256
tokens), so a million names take tens of MB; a batch is converted to int64 when it is cut.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from namestudio.data.table import table_of

MAX_LEN = 64  # longer inputs are cut to this many characters
_CHUNK = 1 << 18  # names encoded per slab (bounds the temporary arrays)


@dataclass
class Batch:
    ids: torch.Tensor       # (B, T) character ids, right-padded with 0
    lengths: torch.Tensor   # (B,) on the CPU, as pack_padded_sequence wants
    y: torch.Tensor         # (B,) label ids
    target: torch.Tensor | None = None  # (B, T) next-character ids (generators)


@dataclass
class Encoded:
    ids: torch.Tensor                   # (N, T) ids, right-padded with 0, in a compact integer type
    lengths: torch.Tensor               # (N,) int64
    y: torch.Tensor                     # (N,) int64
    target: torch.Tensor | None = None  # (N, T) like ids

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor, device: torch.device) -> Batch:
        lengths = self.lengths[idx]
        T = int(lengths.max()) if len(idx) else 1
        nb = device.type == "cuda"
        move = lambda t: t[idx, :T].to(device, non_blocking=nb).long()
        return Batch(ids=move(self.ids), lengths=lengths, y=self.y[idx].to(device, non_blocking=nb),
                     target=move(self.target) if self.target is not None else None)


def pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([max(1, len(s)) for s in seqs], dtype=torch.long)
    ids = torch.zeros(len(seqs), int(lengths.max()) if seqs else 1, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, lengths


def _id_dtype(n_tokens: int):
    return np.uint8 if n_tokens <= 256 else np.int16 if n_tokens <= 32768 else np.int32


def _vocab_lookup(vocab, codepoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct code points, their ids): vocab.encode's mapping, unknown characters to UNK."""
    distinct = np.unique(codepoints)
    ids = np.array([vocab.stoi.get(chr(c), vocab.UNK) for c in distinct.tolist()], dtype=np.int64)
    return distinct, ids


def encode_names(names: list[str], vocab, prefix: int | None = None, suffix: int | None = None,
                 max_len: int = MAX_LEN) -> tuple[np.ndarray, np.ndarray]:
    """(ids, lengths): each name's first ``max_len`` characters as vocabulary ids, with an optional
    ``prefix`` id before and ``suffix`` id after, right-padded with 0; lengths are at least 1."""
    n, extra = len(names), (prefix is not None) + (suffix is not None)
    dtype = _id_dtype(len(vocab))
    raw_len = np.fromiter(map(len, names), dtype=np.int64, count=n)
    cut = np.minimum(raw_len, max_len)
    width = max(1, int(cut.max(initial=0)) + extra)
    out = np.zeros((n, width), dtype=dtype)
    for s in range(0, n, _CHUNK):
        e = min(n, s + _CHUNK)
        text = "".join(names[s:e])
        if not text:
            continue
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        lens = raw_len[s:e]
        if int(lens.max()) > max_len:             # drop the characters past max_len
            starts = np.repeat(np.cumsum(lens) - lens, lens)
            cps = cps[np.arange(len(cps)) - starts < max_len]
        distinct, ids = _vocab_lookup(vocab, cps)
        codes = ids[np.searchsorted(distinct, cps)].astype(dtype)
        block = out[s:e]
        col = np.arange(width - extra)
        mask = col[None, :] < cut[s:e, None]
        view = block[:, 1:width - extra + 1] if prefix is not None else block[:, :width - extra]
        view[mask] = codes                        # row-major order = the order of the joined characters
    if prefix is not None:
        out[:, 0] = prefix
    if suffix is not None:
        out[np.arange(n), cut + (prefix is not None)] = suffix
    lengths = np.maximum(1, cut + extra)
    return out, lengths


def _label_ids(pairs, label_index: dict[str, int]) -> np.ndarray:
    table = table_of(pairs)
    if table is None:
        return np.fromiter((label_index[lab] for _, lab in pairs), dtype=np.int64, count=len(pairs))
    lut = np.array([label_index.get(lab, -1) for lab in table.labels] or [0], dtype=np.int64)
    y = lut[table.label_idx]
    if len(y) and y.min() < 0:
        raise KeyError(table.labels[int(table.label_idx[np.argmin(y)])])
    return y


def encode(pairs, vocab, label_index: dict[str, int], task: str) -> Encoded:
    names = [n for n, _ in pairs]
    y = torch.from_numpy(_label_ids(pairs, label_index))
    if task == "classify":
        ids, lengths = encode_names(names, vocab)
        return Encoded(torch.from_numpy(ids), torch.from_numpy(lengths), y)
    ids, lengths = encode_names(names, vocab, prefix=vocab.BOS)
    target, _ = encode_names(names, vocab, suffix=vocab.EOS)
    return Encoded(torch.from_numpy(ids), torch.from_numpy(lengths), y, torch.from_numpy(target))


def epoch_batches(lengths: torch.Tensor, batch_size: int, generator: torch.Generator, pool: int = 50) -> list[torch.Tensor]:
    """Shuffled batches of similar-length names: shuffle, sort within pools of ``pool`` batches by length,
    cut into batches, shuffle the batches. Fewer padded time steps per batch, same randomness per epoch.

    One stable sort by (pool, length) does the sorting of every pool; as a pool holds a whole number of
    batches, cutting the sorted order into batches gives the same batches as cutting pool by pool."""
    order = torch.randperm(len(lengths), generator=generator)
    if not len(order):
        return []
    pool_of = torch.arange(len(order)) // (batch_size * pool)
    key = pool_of * (int(lengths.max()) + 1) + lengths[order]
    order = order[torch.sort(key, stable=True).indices]
    batches = list(order.split(batch_size))
    perm = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in perm]
