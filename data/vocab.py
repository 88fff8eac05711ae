"""Character vocabulary with four special tokens."""
from __future__ import annotations

from typing import Iterable

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")


class Vocab:
    PAD, UNK, BOS, EOS = 0, 1, 2, 3

    def __init__(self, itos: Iterable[str]):
        self.itos = list(itos)
        if tuple(self.itos[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @classmethod
    def build(cls, names: Iterable[str]) -> "Vocab":
        chars = sorted(set("".join(names)))
        return cls([*SPECIALS, *chars])

    def encode(self, name: str) -> list[int]:
        return [self.stoi.get(c, self.UNK) for c in name]

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            i = int(i)
            if len(SPECIALS) <= i < len(self.itos):
                out.append(self.itos[i])
        return "".join(out)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens)"

    def to_list(self) -> list[str]:
        return list(self.itos)

    @classmethod
    def from_list(cls, itos: Iterable[str]) -> "Vocab":
        return cls(itos)
