"""Use a saved run: classify names, explain a prediction, sample new names."""
from __future__ import annotations

from namestudio.data.errors import NamestudioError

import math
import os
import tempfile
import unicodedata
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import torch
from anyascii import anyascii

from namestudio.data import Vocab
from namestudio.data.clean import APOSTROPHES, SEPARATORS, strip_digits_punct
from namestudio.data.fsmode import set_file_mode

from . import runfolder as rf
from .batches import MAX_LEN, encode, pad
from .config import MAX_TEMPERATURE, TABLE_TEMPERATURES, TrainConfig
from .models import build_model


class InferenceError(NamestudioError, ValueError):
    """Bad input for a loaded run (unknown language, empty name, ...); one line."""


class StartTooLong(InferenceError):
    """A start that leaves a sampled name no room: ``shown`` (the start as the model reads it, cut for a message)
    is ``length`` ``kind``s long, and names end at ``max_len``. The message speaks to `sample --max-len`; a face
    without that option words it for itself from these."""

    def __init__(self, message: str, shown: str, length: int, kind: str, max_len: int):
        super().__init__(message)
        self.shown, self.length, self.kind, self.max_len = shown, length, kind, max_len


MAX_SAMPLES = 10_000   # names per sample call
GREEDY_BELOW = 1e-6    # a temperature under this samples as 0 does: the likeliest letter


@dataclass
class LoadedRun:
    path: Path
    config: TrainConfig
    labels: list[str]
    vocab: Vocab
    model: torch.nn.Module
    meta: dict
    weights_digest: str = ""    # rf.weights_digest of the weights (and n-gram LM) this model was loaded from
    blend_left_out: dict | None = None   # why lm.safetensors is not in ``model`` (engine/blend.load_blend), if so
    blend_chosen: dict | None = None     # what the lm.safetensors in ``model`` was chosen as (rf.blend_chosen)

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def data_source(self) -> str | None:
        """The data the run was trained on, as its config records it (runfolder.data_source)."""
        return rf.data_source(self.meta)

    @cached_property
    def split(self) -> dict:
        return rf.read_split(self.path)

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
        return rf.read_test(self.path)

    @property
    def lm_blend(self) -> dict | None:
        """The n-gram blend of ``model``, for engine/blend.describe, always that of the model used: what its
        lm.safetensors says it was chosen as (``blend_chosen``; test_metrics.json's record for a file saved before
        it said); or, when the run's blend was left out because it was chosen for earlier weights (a run resumed
        since), that it is not used and why. A model without an n-gram LM: the record only where it says the
        network alone was chosen (not a blend whose file is gone). None when nothing says anything."""
        from .blend import headline
        from .models import BlendedClassifier, MixedGenerator
        if self.blend_left_out is not None:
            return self.blend_left_out
        blended = isinstance(self.model, (BlendedClassifier, MixedGenerator))
        if blended and self.blend_chosen is not None:
            return self.blend_chosen
        try:
            blend = (self.test_metrics().get("test") or {}).get("lm_blend")
        except rf.RunFolderError:
            return None
        if not isinstance(blend, dict) or (not blended and headline(blend) is not None):
            return None
        return blend

    def evaluate(self, which: str = "test") -> dict:
        """Recompute metrics on a recorded split with the best weights."""
        from .train import evaluate
        data = encode([tuple(p) for p in self.split[which]], self.vocab, {l: i for i, l in enumerate(self.labels)}, self.task)
        return evaluate(self.model, data, self.task, self.labels, torch.device("cpu"))

    # ---- reading what the user typed ---------------------------------------------
    def read(self, name: str, fold_unseen: bool = True, recase: bool = True) -> "Reading":
        """What the model will read for ``name``: normalised as the training data was (NFC, apostrophes, spaces;
        anyascii when the run was trained folded), cut to MAX_LEN, with the characters this run never saw.
        A letter the run never saw is read as its ASCII fold when this run knows that ("ü" as "u") and
        ``fold_unseen``; anything else it never saw is read as <unk>. Scoring a generator on a name keeps its
        letters (``fold_unseen=False``), as the trainer's test does: the model is charged for a letter it cannot
        write. ``recase=False`` keeps a name's case as given (names from a labelled source, cleaned as the training
        names were, are scored as the trainer scores them). Raises InferenceError for an empty name or one with no
        known letter."""
        typed = " ".join(unicodedata.normalize("NFC", name).translate(APOSTROPHES).split())
        if not typed:
            raise InferenceError("empty name: type at least one letter")
        # as training read its names: stray digits and punctuation left out ("Smith." is Smith); a name typed
        # all in capitals or all in small letters written as the training names are (SMITH, smith: Smith)
        kept = strip_digits_punct(typed) or typed          # nothing left: the error below names what was typed
        cased = [c for c in kept if c.isupper() or c.islower()]
        recased = (recase and self.capitalised and len(cased) > 1 and (all(c.isupper() for c in cased)
                                                            or all(c.islower() for c in cased)))
        if recased:
            titled = kept.title()
            # capitalising must not cost a letter the run reads ("kaline" in a run that never saw K stays kaline);
            # judged on the letters as they will be read, unseen ones folded, so that a letter the run never saw in
            # either case (DÚBHSHLAINE: neither Ú nor ú) does not turn it off
            if len(titled) == len(kept):
                lost = any(t != k and self._reads(k, fold_unseen) and not self._reads(t, fold_unseen)
                           for t, k in zip(titled, kept))
            else:                          # a letter that changes length when recased (ß, ligatures): count them
                lost = (sum(not self._reads(c, fold_unseen) for c in titled if c.isalpha())
                        > sum(not self._reads(c, fold_unseen) for c in kept if c.isalpha()))
            recased = not lost
            if recased:
                kept = titled
        seen = kept
        if self.config.ascii_fold:     # the training data went through anyascii: so does what the user types
            seen = "".join(anyascii(c) if not c.isascii() and unicodedata.category(c)[0] in "LM" else c for c in kept)
        stoi = self.vocab.stoi
        out, unknown, replaced = [], [], {}
        for ch in seen:
            if ch not in stoi:
                if ch not in unknown:
                    unknown.append(ch)
                folded = anyascii(ch) if fold_unseen and unicodedata.category(ch)[0] in "LM" else ""
                if folded and all(c in stoi for c in folded):
                    replaced[ch] = folded
                    ch = folded
            out.append(ch)
        text = "".join(out)
        if not any(c in stoi and c not in SEPARATORS for c in text):
            if unknown:
                raise InferenceError(f"{_short(typed)!r}: no letter this run knows (it never saw {_chars(unknown)}); "
                                     "type a name in its alphabet")
            only = list(dict.fromkeys(text))      # all known to the run, and all separators: no letter at all
            raise InferenceError(f"{_short(typed)!r}: no letter in it, only {_named(only)}; type a name in this "
                                 "run's alphabet")
        cut = len(text) if len(text) > MAX_LEN else 0
        return Reading(name=typed, text=text[:MAX_LEN], unknown=unknown, replaced=replaced, truncated_from=cut,
                       stripped=kept.casefold() != typed.casefold(), recased=recased)

    def _reads(self, ch: str, fold_unseen: bool = True) -> bool:
        """Whether ``read`` reads the character ``ch`` (as typed, before the training fold) as characters this run
        knows: itself, its anyascii form in an --ascii run, or (``fold_unseen``) the ASCII fold of a letter it never
        saw. False when any of it would be <unk>."""
        stoi = self.vocab.stoi
        seen = anyascii(ch) if self.config.ascii_fold and not ch.isascii() and unicodedata.category(ch)[0] in "LM" else ch
        for c in seen:
            if c in stoi:
                continue
            folded = anyascii(c) if fold_unseen and unicodedata.category(c)[0] in "LM" else ""
            if not (folded and all(f in stoi for f in folded)):
                return False
        return True

    @cached_property
    def capitalised(self) -> bool:
        """The run learned names in both cases of letter (Smith, O'Brien), as its vocabulary shows: then a name
        typed all in capitals or all in small letters is read capitalised. False for a run of lowercase (or
        uppercase) names. From the vocabulary, so that reading a name never loads the split."""
        letters = [c for c in self.vocab.stoi if len(c) == 1 and c.isalpha()]
        return any(c.isupper() for c in letters) and any(c.islower() for c in letters)

    # ---- classifiers --------------------------------------------------------------
    def _require(self, task: str):
        if self.task != task:
            raise InferenceError(f"run {self.path.name} is a {self.task} run; this needs a {task} run")

    @torch.no_grad()
    def log_probabilities(self, texts: list[str]) -> torch.Tensor:
        """Log-probabilities (len(texts), labels) for texts as the model reads them (see ``read``)."""
        self._require("classify")
        ids, lengths = pad([self.vocab.encode(t)[:MAX_LEN] for t in texts])
        return torch.log_softmax(self.model(ids, lengths).float() / self.temperature, dim=-1)

    @cached_property
    def temperature(self) -> float:
        """Fitted on validation: calibration.json when it was fitted to these weights, else fitted now (a run
        calibrated before it was resumed, or a live run; engine/calibration.run_calibration)."""
        from .calibration import run_calibration
        if self.task != "classify":
            return 1.0
        try:
            return run_calibration(self)["temperature"]
        except (NamestudioError, OSError):   # no validation split to fit on: the raw probabilities
            return 1.0

    def probabilities(self, texts: list[str]) -> torch.Tensor:
        return self.log_probabilities(texts).exp()

    def classify_each(self, names: list[str], k: int = 3) -> list["Classified"]:
        """Top-k (label, probability) for each name; a bad name gets its own ``error`` and the rest are answered."""
        self._require("classify")
        k = max(1, min(k, len(self.labels)))
        out, good = [], []
        for n in names:
            try:
                out.append(Classified(reading=self.read(n), name=n))
                good.append(out[-1])
            except InferenceError as e:
                out.append(Classified(reading=None, name=n, error=str(e)))
        if good:
            top = self.probabilities([c.reading.text for c in good]).topk(k, dim=-1)
            for c, ps, ix in zip(good, top.values.tolist(), top.indices.tolist()):
                c.top = [(self.labels[i], float(p)) for p, i in zip(ps, ix)]
        return out

    def classify(self, names: list[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-k (label, probability) for each name; raises InferenceError for the first bad name."""
        results = self.classify_each(names, k)
        for c in results:
            if c.error:
                raise InferenceError(c.error)
        return [c.top for c in results]

    def explain(self, name: str) -> "Explanation":
        """Which letters drive the top prediction, by occlusion: each letter's score is how much the predicted
        label's log-probability, taken against the other labels, falls when that letter is removed (for a
        one-letter name, against the uniform guess):

            score_i = logodds(label | text) - logodds(label | text without letter i),
            logodds(y) = log p(y) - log(1 - p(y))

        The first term is the log-probability of the label. Near p = 0.999 the probability and the plain
        log-probability both saturate (p moves by 1e-4, log p by 1e-4), so a letter that takes p from 0.999 to
        0.9999 shows nothing; its log-odds move by 2.3. Removal, not an <unk> token: the model never trained
        on <unk>, so replacing a letter with it adds noise. Positive: the letter supports the label. One score
        per character of ``text`` (what the model read, which may differ from what was typed: folded, cut)."""
        r = self.read(name)
        text = r.text
        variants = [text] + [text[:i] + text[i + 1:] for i in range(len(text))]
        logp = self.log_probabilities(variants)
        empty = torch.tensor([not v for v in variants])
        if empty.any():   # the name was one letter: without it the model knows nothing (uniform)
            logp[empty] = -math.log(len(self.labels))
        top = int(logp[0].argmax())
        others = torch.cat([logp[:, :top], logp[:, top + 1:]], dim=1)
        logodds = logp[:, top] - (torch.logsumexp(others, dim=1) if others.shape[1] else torch.zeros(len(logp)))
        base = float(logodds[0])
        return Explanation(label=self.labels[top], text=text, scores=[base - float(v) for v in logodds[1:]],
                           prob=math.exp(float(logp[0, top])), reading=r)

    def attribution(self, name: str) -> tuple[str, list[float]]:
        """(top label, one score per letter of ``explain(name).text``); see ``explain``."""
        e = self.explain(name)
        return e.label, e.scores

    # ---- generators ---------------------------------------------------------------
    def label_id(self, lang: str | None) -> int:
        if lang is None:
            return 0 if len(self.labels) == 1 else None  # type: ignore[return-value]
        for i, lab in enumerate(self.labels):
            if lab.lower() == lang.lower():
                return i
        raise InferenceError(f"unknown language {lang!r}; this run knows: {', '.join(self.labels)}")

    def read_start(self, start: str, what: str = "start") -> tuple[str, list[str]]:
        """(the prefix the model starts from, notes on how ``start`` was read). The prefix is ``start`` folded
        like the training data and capitalised like the names; a note says so when characters the run never saw
        were read as their ASCII fold ("Ж" as "Zh") or digits and punctuation were left out. "" (no prefix, no
        note) for an empty start. Raises InferenceError when a character has nothing the run knows to be read as."""
        start = " ".join(start.split())
        if not start:
            return "", []
        try:
            r = self.read(start)
        except InferenceError as e:
            raise InferenceError(f"{what} {e}") from None
        if r.unknown and set(r.unknown) - set(r.replaced):
            raise InferenceError(f"{what} {start!r}: this run never saw {_chars([c for c in r.unknown if c not in r.replaced])}")
        text = r.text
        if text[0] not in self.vocab.stoi or (not text[0].isupper() and text[0].upper() in self.vocab.stoi):
            text = text[0].upper() + text[1:]
        return text, replace(r, recased=False).notes()    # capitals: a prefix is always written as names are

    def _prefix(self, start: str, what: str = "start") -> str:
        """A start prefix as the model reads it (``read_start``)."""
        return self.read_start(start, what)[0]

    @torch.no_grad()
    def _generate(self, prefix: str, picks: torch.Tensor, temperature: float, top_k: int, max_len: int,
                  gen: torch.Generator | None, on_letter=None) -> list[tuple[str, bool]]:
        """One name per entry of ``picks`` (label ids), each starting with ``prefix``, and whether it was cut at
        ``max_len`` before the model ended it. Temperature 0 is greedy. ``on_letter(k)``, when given, is called
        after the k-th letter position of every name is drawn (at most ``max_len - len(prefix)``)."""
        n = len(picks)
        ids = torch.tensor([self.vocab.BOS] + self.vocab.encode(prefix)).repeat(n, 1)
        logits, state = self.model(ids, picks)
        out = [[] for _ in range(n)]
        alive = torch.ones(n, dtype=torch.bool)
        for k in range(max_len - len(prefix)):
            step = logits[:, -1].float()
            step[:, [self.vocab.PAD, self.vocab.BOS, self.vocab.UNK]] = float("-inf")
            if k == 0 and not prefix:      # a name has at least one letter: no end before the first
                step[:, self.vocab.EOS] = float("-inf")
            if temperature < GREEDY_BELOW:     # 0, or so small that float32 logits / T overflow: the limit is greedy
                nxt = step.argmax(-1)
            else:
                step = step / temperature
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
            if on_letter is not None:
                on_letter(k + 1)
            if not alive.any():
                break
            logits, state = self.model(nxt[:, None], picks, state=state)
        return [(prefix + self.vocab.decode(o), bool(a)) for o, a in zip(out, alive.tolist())]

    def check_start(self, start: str = "", start_letters: str | None = None, max_len: int = 24) -> list[str]:
        """The prefixes ``sample`` starts from (one, or one per start letter), or the error it would raise for them:
        `sample` checks before it prints its notes on how a start was read (a note said a 70-letter start was
        "cut to its first 64", and the error then counted 70)."""
        if start_letters is not None:
            letters = [c for c in start_letters if not c.isspace()]
            if not letters:
                raise InferenceError("start letters: give at least one letter")
            prefixes = [self._prefix(c, f"start {kind_of(c)}") for c in letters]
        else:
            prefixes = [self._prefix(start)]
        for p in prefixes:
            if len(p) >= max_len:
                kind = kind_of(p)
                if len(p) < MAX_LEN:       # a higher max-len makes room
                    raise StartTooLong(f"start {_short(p)!r} is {_counted(len(p), kind)}: max-len {max_len} leaves no "
                                       f"room; raise max-len to {len(p) + 1} or more (at most {MAX_LEN})",
                                       _short(p), len(p), kind, int(max_len))
                # max-len is at most MAX_LEN: raising it cannot help (a start past MAX_LEN was cut to MAX_LEN)
                typed = self.read(start).truncated_from if start_letters is None else 0
                raise StartTooLong(f"start {_short(p)!r} is {_counted(typed or len(p), kind)}: a start may be at "
                                   f"most {_counted(MAX_LEN - 1, kind)}, one less than the highest max-len ({MAX_LEN})",
                                   _short(p), typed or len(p), kind, int(max_len))
        return prefixes

    def sample(self, lang: str | None = None, start: str = "", n: int = 10, temperature: float = 1.0,
               top_k: int = 0, max_len: int = 24, seed: int | None = None,
               start_letters: str | None = None, progress=None) -> list[dict]:
        """Sample names. ``start`` is a prefix every name begins with; ``start_letters`` ("ABC") gives ``n`` names
        per letter, each beginning with that letter (the PyTorch tutorial's meaning). Temperature 0 is greedy.

        Each sample is {"name", "lang", "start", "cut", "in_training", "repeat", "new"}: "cut" when it reached
        ``max_len`` before the model ended it; "in_training" when the name is in
        the run's training data (any language), "repeat" when an earlier sample of this call is the same name,
        and "new" only when it is neither, and more than the prefix.

        ``progress(done, total)``, when given, is called as the letters are drawn: ``total`` is the letter positions
        to draw (each name's ``max_len`` less its prefix, for each prefix), ``done`` how many are drawn; the last
        call has done == total (names that all end early skip the rest). The whole batch goes through the network
        at each position; with the n-gram mix the first positions go faster (names drawn together share their
        first contexts, computed once), so done/total runs a little ahead of the share of the time spent."""
        self._require("generate")
        check_sampling(temperature, top_k, n, max_len)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        prefixes = self.check_start(start, start_letters, max_len)
        results = []
        shares = [int(max_len) - len(p) for p in prefixes]
        total, done = sum(shares), 0
        for prefix, share in zip(prefixes, shares):
            if lang is None and len(self.labels) > 1:
                picks = torch.randint(len(self.labels), (n,), generator=gen)
            else:
                picks = torch.full((n,), self.label_id(lang), dtype=torch.long)
            on_letter = None if progress is None else (lambda k, base=done: progress(base + k, total))
            for (name, cut), pick in zip(self._generate(prefix, picks, float(temperature), int(top_k),
                                                        int(max_len), gen, on_letter), picks.tolist()):
                results.append({"name": name, "lang": self.labels[pick], "start": prefix, "cut": cut})
            done += share
            if progress is not None:
                progress(done, total)
        mark_novelty(results, self.train_names)
        return results


@dataclass
class Reading:
    """A name as the model reads it."""
    name: str                      # what was typed, with whitespace and apostrophes normalised
    text: str                      # what the model reads: folded like the training data, cut to MAX_LEN
    unknown: list[str] = field(default_factory=list)         # characters this run never saw, in order
    replaced: dict[str, str] = field(default_factory=dict)   # of those, the ones read as their ASCII fold
    truncated_from: int = 0        # the length before the cut to MAX_LEN; 0 when not cut
    stripped: bool = False         # digits or punctuation left out, as training did
    recased: bool = False          # typed all in capitals or small letters: read capitalised, as the training names

    def notes(self) -> list[str]:
        """One line per thing the user should know about how the name was read."""
        out = []
        why = [w for w, on in (("digits and punctuation left out", self.stripped),
                               ("capitalised as the training names are", self.recased)) if on]
        if why:
            out.append(f"read as training read its names: {'; '.join(why)}")
        if self.unknown:
            how = [f"{c} as {self.replaced[c]}" if c in self.replaced else f"{_chars([c])} as unknown"
                   for c in self.unknown]
            out.append(f"this run never saw {_chars(self.unknown)}: read "
                       + (", ".join(how) if self.replaced else
                          "as an unknown character" if len(self.unknown) == 1 else "as unknown characters"))
        if self.truncated_from:
            out.append(f"cut to its first {MAX_LEN} of {self.truncated_from} characters (the model reads at most "
                       f"{MAX_LEN})")
        return out


@dataclass
class Classified:
    """One name's answer: ``top`` (label, probability) pairs, or ``error`` (one line)."""
    name: str
    reading: Reading | None
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    def notes(self) -> list[str]:
        return self.reading.notes() if self.reading else []

    def as_dict(self) -> dict:
        if self.error:
            return {"name": self.name, "error": self.error}
        r = self.reading
        return {"name": self.name, "read_as": r.text, "unknown_chars": list(r.unknown), "replaced_chars": r.replaced,
                "truncated": bool(r.truncated_from), "length": r.truncated_from or len(r.text), "max_len": MAX_LEN,
                "notes": self.notes(), "top": [{"label": lab, "prob": round(p, 6)} for lab, p in self.top]}


@dataclass
class Explanation:
    label: str                     # the predicted label
    text: str                      # what the model read; one score per character
    scores: list[float]            # log-odds of label given text, minus the same without that character
    prob: float                    # p(label | text)
    reading: Reading | None = None


def _short(s: str, n: int = 20) -> str:
    return s if len(s) <= n else s[:n] + "…"


def _chars(chars) -> str:
    return ", ".join(repr(c) if c.isspace() or not c.isprintable() else c for c in chars)


def kind_of(chars) -> str:
    """What a message calls ``chars`` (one character or several): "letter" when each is a letter, else "character"
    (an apostrophe, a hyphen, a space or a digit is no letter). In the singular; ``_counted`` makes the plural."""
    return "letter" if chars and all(c.isalpha() for c in chars) else "character"


def _named(chars) -> str:
    """"the letter ü", "the characters ', -": distinct characters named with their kind and number."""
    word = kind_of(chars) + ("s" if len(chars) > 1 else "")
    return f"the {word} {_chars(chars)}"


def _counted(n: int, word: str) -> str:
    """"1 letter", "3 characters": a count and its word, in the singular for one (tui/render.counted's rule)."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# ---- sampling: checks, novelty, quality ---------------------------------------------------
def check_sampling(temperature: float, top_k: int = 0, n: int = 1, max_len: int = 24) -> None:
    """One-line InferenceError for settings torch would reject with its own words (or silently misuse)."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise InferenceError(f"temperature must be a number, not {temperature!r}") from None
    if not math.isfinite(t) or not 0 <= t <= MAX_TEMPERATURE:
        raise InferenceError(f"temperature must be between 0 (always the likeliest letter) and {MAX_TEMPERATURE:g} "
                             f"(letters all but uniform), not {temperature}")
    if int(top_k) != top_k or top_k < 0:
        raise InferenceError(f"top-k must be 0 (all letters) or a positive number of letters, not {top_k}")
    if int(n) != n or not 1 <= n <= MAX_SAMPLES:
        raise InferenceError(f"n must be between 1 and {MAX_SAMPLES}, not {n}")
    if int(max_len) != max_len or not 1 <= max_len <= MAX_LEN:
        raise InferenceError(f"max-len must be between 1 and {MAX_LEN}, not {max_len}")


def mark_novelty(samples: list[dict], train_names: set[str]) -> None:
    """Set "in_training", "repeat" and "new" on each sample (see LoadedRun.sample)."""
    seen: set[str] = set()
    for s in samples:
        name = s["name"]
        s["in_training"] = name in train_names
        s["repeat"] = name in seen
        s["new"] = bool(name) and name != s.get("start", "") and not s["in_training"] and not s["repeat"]
        seen.add(name)


def novelty(samples: list[dict]) -> dict:
    """{"n", "new_fraction" (neither in training nor a repeat nor only the prefix), "unique_fraction"
    (distinct names / n), "in_training_fraction"}."""
    n = len(samples)
    if not n:
        return {"n": 0, "new_fraction": 0.0, "unique_fraction": 0.0, "in_training_fraction": 0.0}
    return {"n": n, "new_fraction": sum(s["new"] for s in samples) / n,
            "unique_fraction": len({s["name"] for s in samples}) / n,
            "in_training_fraction": sum(s["in_training"] for s in samples) / n}


def classifier_agreement(samples: list[dict], classifier: LoadedRun) -> float | None:
    """Ask a classifier run about each sample. Sets "classifier" (its top label, or None when it cannot read the
    name) and "agrees" (True/False; None when the classifier does not know the sample's language) on each
    sample. Returns the share of agreement among the samples it could judge, or None if it could judge none."""
    if classifier.task != "classify":
        raise InferenceError(f"run {classifier.path.name} is a {classifier.task} run, not a classifier")
    known = {lab.lower() for lab in classifier.labels}
    answers = classifier.classify_each([s["name"] for s in samples], 1)
    for s, a in zip(samples, answers):
        s["classifier"] = a.top[0][0] if a.top else None
        if s["lang"].lower() not in known:
            s["agrees"] = None
        else:
            s["agrees"] = s["classifier"] is not None and s["classifier"].lower() == s["lang"].lower()
    judged = [s["agrees"] for s in samples if s["agrees"] is not None]
    return sum(judged) / len(judged) if judged else None


def judged(samples: list[dict]) -> int:
    """How many samples a classifier could judge (``classifier_agreement`` set "agrees" to True or False)."""
    return sum(s.get("agrees") is not None for s in samples)


def agreement_words(share: float | None, judged: int, n: int) -> str:
    """The classifier's agreement in words: the share, and over how many names when it could not judge them all
    (a classifier without some of the generator's languages)."""
    if share is None:
        return "the classifier knows none of these languages"
    return f"classifier agrees on {100 * share:.0f}%" + (f" of the {judged} it can judge" if judged < n else "")


def agreement_cell(share: float | None, judged: int, n: int) -> str:
    """The same for a table cell: "97%", "100% of 2", "–"."""
    return "–" if share is None else f"{100 * share:.0f}%" + (f" of {judged}" if judged < n else "")


def sample_quality(run: LoadedRun, temperatures=TABLE_TEMPERATURES, n: int = 200,
                   classifier: LoadedRun | None = None, seed: int = 0, progress=None, **sample_kw) -> list[dict]:
    """The quality/diversity trade-off: per temperature, ``n`` samples (same seed for each) and their
    {"temperature", "n", "novelty" (share not in the training data, not repeated, more than the prefix),
    "uniqueness" (share of distinct names), "agreement" (share the classifier assigns to the sampled language;
    None without a classifier or when it knows none of the languages), "judged" (how many samples it could
    judge; None without a classifier)}. ``progress(done, total)``: as
    ``LoadedRun.sample``'s, over every temperature."""
    rows = []
    temperatures = list(temperatures)
    for i, t in enumerate(temperatures):
        report = None if progress is None else (
            lambda done, total, i=i: progress(i * total + done, len(temperatures) * total))
        samples = run.sample(temperature=t, n=n, seed=seed, progress=report, **sample_kw)
        nov = novelty(samples)
        share = classifier_agreement(samples, classifier) if classifier is not None else None
        rows.append({"temperature": t, "n": nov["n"], "novelty": nov["new_fraction"],
                     "uniqueness": nov["unique_fraction"], "agreement": share,
                     "judged": judged(samples) if classifier is not None else None})
    return rows


def write_lines(path: str | Path, lines: list[str]) -> Path:
    """Write one line per item, atomically: a temporary file beside ``path``, fsync, rename. The file keeps the
    mode of the one it replaces; a new one gets what ``open()`` would give it (0666 & ~umask). A link is written
    through, as the shell's ``>`` does: the file it points to is replaced, the link stays. Something that is not
    a file (a FIFO, /dev/stdout, a terminal) is written to as it is, since renaming a file over it would replace it
    (and, for root, /dev/stdout itself)."""
    path = Path(path)
    if path.is_dir():
        raise InferenceError(f"{path}: is a folder; give a file name")
    if path.exists() and not path.is_file():
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
        except OSError as e:
            raise InferenceError(f"could not write {path}: {e.strerror or e}") from None
        return Path(path)
    shown, path = path, (Path(os.path.realpath(path)) if path.is_symlink() else path)
    if not path.parent.is_dir():
        raise InferenceError(f"{path.parent}: no such folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:          # the error names the file asked for, not the temporary one beside it
        raise InferenceError(f"could not write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            set_file_mode(f.fileno(), keep=path)
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return shown


def load_run(run: str | Path, checkpoints: str | Path = "checkpoints") -> LoadedRun:
    path = rf.resolve_run(run, checkpoints)
    meta = rf.read_config(path)
    try:
        cfg = TrainConfig.from_dict(meta["train"])
        labels, vocab = meta["labels"], Vocab.from_list(meta["vocab"])
    except (KeyError, TypeError) as e:
        raise rf.RunFolderError(f"{path / rf.CONFIG}: missing field {e}") from None
    try:  # bound every size field, then check the shapes against the weights' header, before any allocation
        cfg.validate()
    except NamestudioError as e:
        raise rf.RunFolderError(f"{path / rf.CONFIG}: {e}") from None

    def build():
        return build_model(cfg.task, cfg.model, len(vocab), len(labels), embed=cfg.embed, hidden=cfg.hidden,
                           layers=cfg.layers, bidirectional=cfg.bidirectional, dropout=cfg.dropout,
                           label_init=cfg.label_init, recipe=cfg.recipe, members=cfg.members)

    if not (path / rf.WEIGHTS).exists():     # stopped before any training, or before its first save: say which
        raise rf.RunFolderError(rf.no_weights(path))
    rf.check_weights_fit(path / rf.WEIGHTS, build)
    model = build()
    try:  # read once: the digest names exactly the bytes loaded, even while a live run rewrites the file
        raw = (path / rf.WEIGHTS).read_bytes()
        lm = (path / rf.LM).read_bytes() if (path / rf.LM).is_file() else None
    except FileNotFoundError:
        raise rf.RunFolderError(f"{path / rf.WEIGHTS}: no such weights file") from None
    except OSError as e:
        raise rf.RunFolderError(f"could not read {path / rf.WEIGHTS}: {e.strerror or e}") from None
    weights = rf.load_weights(path / rf.WEIGHTS, data=raw)
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise rf.RunFolderError(f"{path / rf.WEIGHTS}: weights do not fit the model in config.json "
                                 f"({str(e).splitlines()[0][:120]})") from None
    from .blend import load_blend      # the n-gram LM blended in after training, when the run has one
    model, left_out = (model, None) if lm is None else load_blend(   # left out when chosen for other weights
        path, model, len(vocab), len(labels), cfg.task, weights=rf.weights_digest(raw), data=lm)
    model.eval()
    return LoadedRun(path=path, config=cfg, labels=labels, vocab=vocab, model=model, meta=meta,
                     weights_digest=rf.weights_digest(raw, lm), blend_left_out=left_out,
                     blend_chosen=rf.blend_chosen(lm) if lm is not None and left_out is None else None)
