"""Use a saved run: classify names, explain a prediction, sample new names."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from namestudio.data import Vocab

from . import checkpoint as ck
from .batches import MAX_LEN, encode, pad
from .config import TrainConfig
from .models import build_model


class InferenceError(ValueError):
    """Bad input for a loaded run (unknown language, empty name, ...); one line."""


@dataclass
class LoadedRun:
    path: Path
    config: TrainConfig
    labels: list[str]
    vocab: Vocab
    model: torch.nn.Module
    meta: dict

    @property
    def task(self) -> str:
        return self.config.task

    @cached_property
    def split(self) -> dict:
        return ck.read_json(self.path / ck.SPLIT)

    @cached_property
    def train_names(self) -> set[str]:
        return {n for n, _ in self.split["train"]}

    @cached_property
    def train_names_by_label(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for n, lab in self.split["train"]:
            out.setdefault(lab, set()).add(n)
        return out

    def test_metrics(self) -> dict:
        return ck.read_json(self.path / ck.TEST) if (self.path / ck.TEST).is_file() else {}

    def evaluate(self, which: str = "test") -> dict:
        """Recompute metrics on a recorded split with the best weights."""
        from .train import evaluate
        data = encode([tuple(p) for p in self.split[which]], self.vocab, {l: i for i, l in enumerate(self.labels)}, self.task)
        return evaluate(self.model, data, self.task, self.labels, torch.device("cpu"))

    # ---- classifiers --------------------------------------------------------------
    def _require(self, task: str):
        if self.task != task:
            raise InferenceError(f"run {self.path.name} is a {self.task} run; this needs a {task} run")

    @cached_property
    def temperature(self) -> float:  # quality: fitted on validation (calibration.json); 1.0 when absent
        from .calibration import read_temperature
        return read_temperature(self.path)

    @torch.no_grad()
    def probabilities(self, names: list[str]) -> torch.Tensor:
        self._require("classify")
        ids, lengths = pad([self.vocab.encode(n)[:MAX_LEN] or [self.vocab.UNK] for n in names])
        return torch.softmax(self.model(ids, lengths).float() / self.temperature, dim=-1)

    def classify(self, names: list[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-k (label, probability) for each name."""
        for n in names:
            if not n.strip():
                raise InferenceError("empty name: type at least one letter")
        probs = self.probabilities([n.strip() for n in names])
        k = max(1, min(k, len(self.labels)))
        top = probs.topk(k, dim=-1)
        return [[(self.labels[i], float(p)) for p, i in zip(ps.tolist(), ix.tolist())]
                for ps, ix in zip(top.values, top.indices)]

    def attribution(self, name: str) -> tuple[str, list[float]]:
        """Which letters drive the top prediction: the drop in its probability when each letter is
        replaced by <unk> (occlusion). Returns (top label, one score per letter)."""
        name = name.strip()[:MAX_LEN]
        if not name:
            raise InferenceError("empty name: type at least one letter")
        variants = [name] + [name[:i] + "\0" + name[i + 1:] for i in range(len(name))]  # \0 is never in the vocabulary
        probs = self.probabilities(variants)
        top = int(probs[0].argmax())
        base = float(probs[0, top])
        return self.labels[top], [base - float(p) for p in probs[1:, top]]

    # ---- generators ---------------------------------------------------------------
    def label_id(self, lang: str | None) -> int:
        if lang is None:
            return 0 if len(self.labels) == 1 else None  # type: ignore[return-value]
        for i, lab in enumerate(self.labels):
            if lab.lower() == lang.lower():
                return i
        raise InferenceError(f"unknown language {lang!r}; this run knows: {', '.join(self.labels)}")

    @torch.no_grad()
    def sample(self, lang: str | None = None, start: str = "", n: int = 10, temperature: float = 1.0,
               top_k: int = 0, max_len: int = 24, seed: int | None = None) -> list[dict]:
        """Sample ``n`` names. Each is {"name", "lang", "new"}; "new" is False when the name is in the training set."""
        self._require("generate")
        if temperature <= 0:
            raise InferenceError("temperature must be positive")
        if n < 1 or n > 10000:
            raise InferenceError("n must be between 1 and 10000")
        max_len = max(1, min(int(max_len), MAX_LEN))
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        if lang is None and len(self.labels) > 1:
            picks = torch.randint(len(self.labels), (n,), generator=gen)
        else:
            picks = torch.full((n,), self.label_id(lang), dtype=torch.long)
        start = start.strip()[:max_len]
        if start and start[0] not in self.vocab.itos and start[0].upper() in self.vocab.itos:
            start = start[0].upper() + start[1:]
        prefix = [self.vocab.BOS] + self.vocab.encode(start)
        ids = torch.tensor(prefix).repeat(n, 1)
        logits, state = self.model(ids, picks)
        out = [[] for _ in range(n)]
        alive = torch.ones(n, dtype=torch.bool)
        for _ in range(max_len - len(start)):
            step = logits[:, -1].float() / temperature
            step[:, [self.vocab.PAD, self.vocab.BOS, self.vocab.UNK]] = float("-inf")
            if top_k and top_k < step.shape[-1]:
                kth = step.topk(top_k, dim=-1).values[:, -1:]
                step = step.masked_fill(step < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(step, -1), 1, generator=gen).squeeze(1)
            for i in range(n):
                if alive[i]:
                    if nxt[i] == self.vocab.EOS:
                        alive[i] = False
                    else:
                        out[i].append(int(nxt[i]))
            if not alive.any():
                break
            logits, state = self.model(nxt[:, None], picks, state=state)
        results = []
        for i in range(n):
            name = start + self.vocab.decode(out[i])
            lab = self.labels[int(picks[i])]
            results.append({"name": name, "lang": lab, "new": name not in self.train_names_by_label.get(lab, set())})
        return results


def load_run(run: str | Path, checkpoints: str | Path = "checkpoints") -> LoadedRun:
    path = ck.resolve_run(run, checkpoints)
    meta = ck.read_json(path / ck.CONFIG)
    try:
        cfg = TrainConfig.from_dict(meta["train"])
        labels, vocab = meta["labels"], Vocab.from_list(meta["vocab"])
    except (KeyError, TypeError) as e:
        raise ck.CheckpointError(f"{path / ck.CONFIG}: missing field {e}") from None
    model = build_model(cfg.task, cfg.model, len(vocab), len(labels), embed=cfg.embed, hidden=cfg.hidden,
                        layers=cfg.layers, bidirectional=cfg.bidirectional, dropout=cfg.dropout,
                        label_init=cfg.label_init)
    weights = ck.load_weights(path / ck.WEIGHTS)
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise ck.CheckpointError(f"{path / ck.WEIGHTS}: weights do not fit the model in config.json "
                                 f"({str(e).splitlines()[0][:120]})") from None
    model.eval()
    return LoadedRun(path=path, config=cfg, labels=labels, vocab=vocab, model=model, meta=meta)
