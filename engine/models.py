"""The models, side by side: one short class each.

Classifiers read a name and predict its language. Generators are character
language models conditioned on the language. Every one of them runs on any of
the four cells: ``rnn`` (nn.RNN), ``lstm`` (nn.LSTM), ``gru`` (nn.GRU) and
``mylstm`` (the hand-written LSTM below). Two more classifiers: ``ngram``
(a fastText-style bag of hashed character n-grams, no recurrence) and
``hybrid`` (a bidirectional LSTM and the n-gram bag, read side by side).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELLS = ("rnn", "lstm", "gru", "mylstm")
BAG_MODELS = ("ngram", "hybrid")          # classifiers only
MODELS = CELLS + BAG_MODELS               # every value of TrainConfig.model


def _lstm_step(gates_x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh_t: torch.Tensor):
    """One LSTM time step. ``gates_x`` already holds x_t @ W_ih^T + b_ih + b_hh for all four gates."""
    gates = torch.addmm(gates_x, h, w_hh_t)  # one fused matmul for the four gates
    i, f, g, o = gates.chunk(4, dim=1)
    input_gate = torch.sigmoid(i)
    forget_gate = torch.sigmoid(f)
    cell_candidate = torch.tanh(g)
    output_gate = torch.sigmoid(o)
    c = forget_gate * c + input_gate * cell_candidate
    h = output_gate * torch.tanh(c)
    return h, c


class MyLSTM(nn.Module):
    """A hand-written LSTM with explicit input, forget, cell and output gates.

    Its parameters carry nn.LSTM's names and layout (gates stacked i, f, g, o), so
    ``MyLSTM.load_state_dict(nn.LSTM(...).state_dict())`` gives the same outputs.
    Speed without losing readability: the input projection of every time step
    (both biases folded in) is one matmul up front, and each step is one fused
    matmul for all four gates. Sequences are right-padded; each row's final state
    is the one at its last character, and outputs past a row's end read zero.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout = bidirectional, dropout
        k = hidden_size ** -0.5
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * self.directions
            for sfx in self._suffixes(layer):
                self.register_parameter(f"weight_ih{sfx}", nn.Parameter(torch.empty(4 * hidden_size, layer_in).uniform_(-k, k)))
                self.register_parameter(f"weight_hh{sfx}", nn.Parameter(torch.empty(4 * hidden_size, hidden_size).uniform_(-k, k)))
                self.register_parameter(f"bias_ih{sfx}", nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k)))
                self.register_parameter(f"bias_hh{sfx}", nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k)))
        # The step function. `namestudio bench` swaps in torch.jit.script(_lstm_step) or
        # torch.compile(_lstm_step) here to measure what they give (see BENCHMARKS.md).
        self.step = _lstm_step

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int):
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def _direction(self, x, lengths, sfx, state):
        """Run one direction over (B, T, I); returns outputs (B, T, H) and each row's final (h, c)."""
        B, T, _ = x.shape
        bias = getattr(self, f"bias_ih{sfx}") + getattr(self, f"bias_hh{sfx}")
        gates_x = F.linear(x, getattr(self, f"weight_ih{sfx}"), bias)  # every step's input projection at once
        w_hh_t = getattr(self, f"weight_hh{sfx}").t()
        h, c = state
        hs, cs = [], []
        # unbind, not gates_x[:, t]: the backward of each gates_x[:, t] would fill a full-size tensor of zeros
        for gates_x_t in gates_x.unbind(1):
            h, c = self.step(gates_x_t, h, c, w_hh_t)
            hs.append(h)
            cs.append(c)
        hs, cs = torch.stack(hs, dim=1), torch.stack(cs, dim=1)
        # Padding comes after a row's end, so it never changes the states before it: the final state of a row
        # is simply the one at its last character, and outputs past the end are zeroed as packing would.
        lengths = lengths.to(x.device)
        last = (lengths - 1).view(B, 1, 1).expand(B, 1, self.hidden_size)
        alive = (torch.arange(T, device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        return hs * alive, (hs.gather(1, last).squeeze(1), cs.gather(1, last).squeeze(1))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        """x: (B, T, I) batch-first. Returns (output (B, T, H*dirs), (h_n, c_n)) like nn.LSTM."""
        B, T, _ = x.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        if state is None:
            zeros = x.new_zeros(self.num_layers * self.directions, B, self.hidden_size)
            state = (zeros, zeros)
        rev = _reverse_index(lengths, T).to(x.device) if self.bidirectional else None
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(self._suffixes(layer)):
                i = layer * self.directions + d
                inp = x if d == 0 else x.gather(1, rev.unsqueeze(-1).expand_as(x))
                out, (h, c) = self._direction(inp, lengths, sfx, (state[0][i], state[1][i]))
                if d == 1:
                    out = out.gather(1, rev.unsqueeze(-1).expand_as(out))
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = torch.cat(outs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, (torch.stack(h_n), torch.stack(c_n))


def _reverse_index(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Index that reverses each row within its own length, leaving the padding in place."""
    t = torch.arange(T)[None, :]
    L = lengths.cpu()[:, None]
    return torch.where(t < L, L - 1 - t, t)


def make_rnn(cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool, dropout: float) -> nn.Module:
    if cell not in CELLS:
        raise ValueError(f"unknown model {cell!r}; choose one of {', '.join(CELLS)}")
    drop = dropout if layers > 1 else 0.0
    if cell == "mylstm":
        return MyLSTM(input_size, hidden, layers, bidirectional, drop)
    kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    return kind(input_size, hidden, layers, batch_first=True, bidirectional=bidirectional, dropout=drop)


def run_rnn(rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor, state=None):
    """Run any cell over right-padded (B, T, I) inputs; returns (outputs (B, T, H*dirs), final hidden (L*dirs, B, H))."""
    if isinstance(rnn, MyLSTM):
        out, (h, _) = rnn(x, lengths, state)
        return out, h
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, h = rnn(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, (h[0] if isinstance(h, tuple) else h)


class CharInput(nn.Module):
    """Characters to vectors: a learned embedding, or one-hot when ``embed == 0``."""

    def __init__(self, vocab_size: int, embed: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.table = nn.Embedding(vocab_size, embed, padding_idx=0) if embed > 0 else None
        self.size = embed if embed > 0 else vocab_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.table is None:
            return F.one_hot(ids, self.vocab_size).float()
        return self.table(ids)


class Classifier(nn.Module):
    """name -> language: a (bi)directional RNN read, max-pooled and final states, then a linear head."""

    def __init__(self, cell: str, vocab_size: int, n_labels: int, embed: int = 64, hidden: int = 128,
                 layers: int = 1, bidirectional: bool = True, dropout: float = 0.0):
        super().__init__()
        self.chars = CharInput(vocab_size, embed)
        self.rnn = make_rnn(cell, self.chars.size, hidden, layers, bidirectional, dropout)
        width = hidden * (2 if bidirectional else 1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width, n_labels)
        self.directions = 2 if bidirectional else 1

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, h = run_rnn(self.rnn, self.drop(self.chars(ids)), lengths)
        last = torch.cat(list(h[-self.directions:]), dim=-1)           # final state of the top layer, both directions
        pad = (ids == 0).unsqueeze(-1)
        pooled = out.masked_fill(pad, float("-inf")).amax(dim=1)          # max over the name's positions
        return self.head(self.drop(torch.cat([last, pooled], dim=-1)))


class NGramBag(nn.Module):
    """A name as the mean of its hashed character n-gram vectors (fastText-style).

    The name is framed by a boundary mark (so "ov" at the end differs from "ov" inside), every n-gram of
    1..``n_max`` characters is hashed into one of ``buckets`` rows, and an ``EmbeddingBag`` averages them.
    The hashing is done in torch from the character ids, so the model takes the same input as the RNNs.
    """
    PRIME, MOD = 1_000_003, 2_147_483_647

    def __init__(self, vocab_size: int, dim: int, buckets: int = 1 << 16, n_max: int = 4):
        super().__init__()
        self.vocab_size, self.buckets, self.n_max = vocab_size, buckets, n_max
        self.bag = nn.EmbeddingBag(buckets + 1, dim, mode="mean", padding_idx=0)  # row 0: no n-gram
        self.size = dim

    def ngram_ids(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) character ids -> (B, G) bucket ids in 1..buckets, 0 where there is no n-gram."""
        B, T = ids.shape
        mark = self.vocab_size  # an id no character has
        framed = F.pad(ids, (1, 1))
        framed[:, 0] = mark
        framed[torch.arange(B), lengths.to(ids.device) + 1] = mark
        span = lengths.to(ids.device)[:, None] + 2  # characters in the framed name
        grams = []
        for n in range(1, self.n_max + 1):
            if T + 2 < n:
                break
            h = torch.full((B, T + 3 - n), n, dtype=torch.long, device=ids.device)
            for k in range(n):
                h = (h * self.PRIME + framed[:, k:k + T + 3 - n]) % self.MOD
            start = torch.arange(T + 3 - n, device=ids.device)[None, :]
            valid = start + n <= span
            if n == 1:  # the lone boundary marks carry nothing
                valid &= (start > 0) & (start < span - 1)
            grams.append(torch.where(valid, h % self.buckets + 1, 0))
        return torch.cat(grams, dim=1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.bag(self.ngram_ids(ids, lengths))


class NGramClassifier(nn.Module):
    """name -> language from the n-gram bag alone: mean of n-gram vectors, then a linear head (fastText)."""

    def __init__(self, vocab_size: int, n_labels: int, hidden: int = 128, dropout: float = 0.0):
        super().__init__()
        self.ngrams = NGramBag(vocab_size, hidden)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_labels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.ngrams(ids, lengths)))


class HybridClassifier(nn.Module):
    """name -> language: the RNN classifier's features and the n-gram bag, concatenated before one head."""

    def __init__(self, vocab_size: int, n_labels: int, embed: int = 64, hidden: int = 128, layers: int = 1,
                 bidirectional: bool = True, dropout: float = 0.0, cell: str = "lstm"):
        super().__init__()
        self.rnn = Classifier(cell, vocab_size, n_labels, embed, hidden, layers, bidirectional, dropout)
        self.ngrams = NGramBag(vocab_size, hidden)
        width = self.rnn.head.in_features
        self.rnn.head = nn.Identity()  # the RNN gives features; the head below reads both
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width + hidden, n_labels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.rnn(ids, lengths), self.drop(self.ngrams(ids, lengths))], dim=-1))


class Generator(nn.Module):
    """A character language model conditioned on the language label.

    The label is embedded and fed beside the character at every step; with
    ``label_init`` it also sets the initial hidden state.
    """

    def __init__(self, cell: str, vocab_size: int, n_labels: int, embed: int = 64, hidden: int = 256,
                 layers: int = 1, dropout: float = 0.0, label_embed: int = 16, label_init: bool = True):
        super().__init__()
        self.cell, self.layers, self.hidden = cell, layers, hidden
        self.chars = CharInput(vocab_size, embed)
        self.label = nn.Embedding(n_labels, label_embed)
        self.rnn = make_rnn(cell, self.chars.size + label_embed, hidden, layers, False, dropout)
        self.init = nn.Linear(label_embed, layers * hidden) if label_init else None
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def initial_state(self, labels: torch.Tensor):
        if self.init is None:
            return None
        h0 = torch.tanh(self.init(self.label(labels))).view(-1, self.layers, self.hidden).transpose(0, 1).contiguous()
        if self.cell in ("lstm", "mylstm"):
            return h0, torch.zeros_like(h0)
        return h0

    def forward(self, ids: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        """ids: (B, T) starting with <bos>. Returns next-character logits (B, T, V) and the final state."""
        x = torch.cat([self.chars(ids), self.label(labels)[:, None, :].expand(-1, ids.shape[1], -1)], dim=-1)
        if state is None:
            state = self.initial_state(labels)
        # Padding sits at the end and a one-way model never looks ahead, so no packing is needed.
        if isinstance(self.rnn, MyLSTM):
            out, state = self.rnn(x, None, state)
        else:
            out, state = self.rnn(x, state)
        return self.head(self.drop(out)), state


class Ensemble(nn.Module):
    """Several networks of one shape read as one: log of the mean of their probabilities (issue 9).

    They train side by side, each from its own initialisation, on the same batches: in training mode
    ``forward`` returns every member's logits stacked on a first axis (M, ...), and ``batch_loss`` scores each
    member on its own, so they stay independent models whose errors differ. In eval mode it returns the
    mixture's log-probabilities, which every reader (evaluation, the n-gram blend, calibration, sampling) takes
    as logits. Same calling convention as the members: classifiers (ids, lengths), generators (ids, labels[,
    lengths, state]) -> (log-probabilities, state), with ``state`` a tuple of the members' states."""

    def __init__(self, members: list[nn.Module], generates: bool):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.generates = generates

    def forward(self, ids: torch.Tensor, second: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        if self.generates:
            states = state if state is not None else (None,) * len(self.members)
            outs = [m(ids, second, lengths, s) for m, s in zip(self.members, states)]
            logits, state = torch.stack([o[0] for o in outs]), tuple(o[1] for o in outs)
        else:
            logits = torch.stack([m(ids, second) for m in self.members])
        if not self.training:
            logits = torch.logsumexp(torch.log_softmax(logits.float(), -1), 0) - math.log(len(self.members))
        return (logits, state) if self.generates else logits


def build_model(task: str, cell: str, vocab_size: int, n_labels: int, *, embed: int, hidden: int, layers: int,
                bidirectional: bool, dropout: float, label_init: bool = True, recipe: str = "modern",
                members: int = 1) -> nn.Module:
    if members > 1:
        return Ensemble([build_model(task, cell, vocab_size, n_labels, embed=embed, hidden=hidden, layers=layers,
                                     bidirectional=bidirectional, dropout=dropout, label_init=label_init,
                                     recipe=recipe) for _ in range(members)], generates=task == "generate")
    if cell in BAG_MODELS and task != "classify":
        raise ValueError(f"model {cell!r} is a classifier only; generators use one of {', '.join(CELLS)}")
    if task == "generate" and recipe == "tutorial":
        return TutorialGenerator(vocab_size, n_labels, embed, hidden, dropout)
    if task == "classify":
        if cell == "ngram":
            return NGramClassifier(vocab_size, n_labels, hidden, dropout)
        if cell == "hybrid":
            return HybridClassifier(vocab_size, n_labels, embed, hidden, layers, bidirectional, dropout)
        return Classifier(cell, vocab_size, n_labels, embed, hidden, layers, bidirectional, dropout)
    if task == "generate":
        return Generator(cell, vocab_size, n_labels, embed, hidden, layers, dropout, label_init=label_init)
    raise ValueError(f"unknown task {task!r}; choose classify or generate")


class TutorialGenerator(nn.Module):
    """The PyTorch tutorial's generator ("generating names with a character-level RNN"), as it was written.

    At every step the language (one-hot), the letter and the hidden state are concatenated; ``i2h`` gives the
    next hidden state (linear: no squashing), ``i2o`` an output; ``o2o`` reads that output beside the new hidden
    state; dropout on the result. Same calling convention as Generator: (ids, labels[, state]) -> (logits, state).
    Built for ``--recipe tutorial --task generate`` (engine/config.py RECIPE_DEFAULTS).
    """

    def __init__(self, vocab_size: int, n_labels: int, embed: int = 0, hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.n_labels, self.hidden = n_labels, hidden
        self.chars = CharInput(vocab_size, embed)
        size = n_labels + self.chars.size + hidden
        self.i2h = nn.Linear(size, hidden)
        self.i2o = nn.Linear(size, vocab_size)
        self.o2o = nn.Linear(hidden + vocab_size, vocab_size)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        lang = F.one_hot(labels, self.n_labels).float()
        x = self.chars(ids)
        h = state if state is not None else x.new_zeros(ids.shape[0], self.hidden)
        outs = []
        for x_t in x.unbind(1):
            combined = torch.cat([lang, x_t, h], dim=1)
            h, out = self.i2h(combined), self.i2o(combined)
            outs.append(self.drop(self.o2o(torch.cat([h, out], dim=1))))
        return torch.stack(outs, dim=1), h


class CharNGramLM(nn.Module):
    """A character n-gram language model per language (interpolated, modified Kneser-Ney).

    Counted, not trained: ``fit`` reads the training names once (exact counts; well under a second for the
    names data). For each language, order k interpolates with the order below it:

        p_k(x | ctx) = max(c(ctx, x) - D(c), 0) / c(ctx) + gamma(ctx) * p_{k-1}(x | shorter ctx)

    with the three discounts D1, D2, D3+ of Chen & Goodman's modified Kneser-Ney, estimated from each order's
    count-of-counts, and gamma(ctx) the mass the discounts freed. Below the top order, c counts how many
    different characters precede an n-gram rather than how often it occurs (Kneser-Ney's continuation counts).
    Each language's lowest order falls back on the same model counted over all languages together, which falls
    back on uniform, so a rare language's unseen letter pairs take the shape of the whole data. A name is framed
    by ``<bos>`` on the left and scored up to and including ``<eos>``.

    It serves both tasks: ``forward`` gives log p(name | language) for every language (naive Bayes over letter
    sequences: a generative classifier that learns small languages from few names; ``BlendedClassifier`` adds
    it to a network), and ``next_probs`` the next-character distribution a generator mixes with its own
    (``MixedGenerator``). The counts are buffers of sorted int64 keys (label, context, character packed base
    ``vocab_size``) and lookups are ``searchsorted``, so it runs wherever the network runs and saves as tensors.
    """
    BOS, EOS = 2, 3   # data/vocab.py Vocab.BOS / EOS
    PARTS = ("keys", "counts", "ctx_keys", "ctx_counts", "ctx_backoff", "discounts")
    CHUNK = 1 << 15   # names counted at a time

    @staticmethod
    def max_order(vocab_size: int, n_labels: int) -> int:
        """The highest order whose keys (label, context, character) fit in an int64 (0: none)."""
        order = 0
        while order < 64 and (n_labels + 1) * vocab_size ** (order + 1) < 2 ** 62:
            order += 1
        return order

    def __init__(self, vocab_size: int, n_labels: int, order: int = 5):
        super().__init__()
        if order < 1:
            raise ValueError(f"n-gram order must be at least 1, not {order}")
        if order > self.max_order(vocab_size, n_labels):
            raise ValueError(f"n-gram order {order} is too high for {vocab_size} characters and {n_labels} labels")
        self.vocab_size, self.n_labels, self.order = vocab_size, n_labels, order
        for k in range(order):   # placeholders: fit() or load_state_dict() gives them their sizes
            for part in self.PARTS:
                self.register_buffer(f"{part}{k}", torch.zeros(0, dtype=torch.long if "keys" in part else torch.float))

    def _framed(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T + order) ids with order-1 <bos> on the left and <eos> after each name; the target mask (B, T+1)."""
        B, T = ids.shape
        n = self.order
        x = torch.full((B, T + n), self.BOS, dtype=torch.long, device=ids.device)
        x[:, n - 1:n - 1 + T] = ids
        lengths = lengths.to(ids.device)
        x[torch.arange(B, device=ids.device), lengths + n - 1] = self.EOS
        valid = torch.arange(T + 1, device=ids.device)[None, :] <= lengths[:, None]
        return x, valid

    def _context(self, x: torch.Tensor, label: torch.Tensor, k: int) -> torch.Tensor:
        """(B, L) keys of (label, the k characters before each of the last L = len - order + 1 positions)."""
        n, L = self.order, x.shape[1] - self.order + 1
        key = label[:, None].expand(-1, L)
        for j in range(k, 0, -1):
            key = key * self.vocab_size + x[:, n - 1 - j:n - 1 - j + L]
        return key.contiguous()

    @staticmethod
    def _discounts(counts: torch.Tensor) -> torch.Tensor:
        """D1, D2, D3+ from the count-of-counts (Chen & Goodman); 0.5/1/1.5 where the counts are too few, and for
        an estimate at or below 0 (few names: D3+ came out at 0, a context whose continuations all occur 3 times
        or more then freed no mass, and a letter unseen after it got probability 0: log p = -inf)."""
        fallback = (0.5, 1.0, 1.5)
        n = [int((counts == i).sum()) for i in (1, 2, 3, 4)]
        if min(n) == 0:
            return torch.tensor(fallback)
        y = n[0] / (n[0] + 2 * n[1])
        d = [1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]]
        return torch.tensor([min(v, float(i + 1)) if v > 0 else fallback[i] for i, v in enumerate(d)])

    @torch.no_grad()
    def fit(self, ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> "CharNGramLM":
        """Count the names (ids (B, T) right-padded, their lengths and label ids). Label ``n_labels`` is the
        pooled model of all languages: every name is counted under its own label and under it."""
        lengths, labels = lengths.long().to(ids.device), labels.long().to(ids.device)
        V, top = self.vocab_size, self.order - 1
        found, counted = [], []
        for s in range(0, len(ids), self.CHUNK):     # in slices: a million names never make one huge tensor
            part, n = ids[s:s + self.CHUNK].long(), lengths[s:s + self.CHUNK]
            if not len(part):
                continue
            part = part[:, :int(n.max())]
            x, valid = self._framed(part, n)
            for label in (labels[s:s + self.CHUNK], torch.full_like(n, self.n_labels, device=ids.device)):
                k, c = torch.unique((self._context(x, label, top) * V + x[:, top:])[valid], return_counts=True)
                found.append(k)
                counted.append(c)
        keys, where = torch.unique(torch.cat(found) if found else torch.zeros(0, dtype=torch.long, device=ids.device),
                                   return_inverse=True)
        counts = torch.zeros(len(keys), dtype=torch.long, device=ids.device).index_add_(
            0, where, torch.cat(counted) if counted else torch.zeros(0, dtype=torch.long, device=ids.device))
        for k in range(top, -1, -1):
            if k < top:   # continuation counts: how many distinct characters precede the shorter n-gram
                above = getattr(self, f"keys{k + 1}")
                label, rest = above // V ** (k + 2), above % V ** (k + 1)
                keys, counts = torch.unique(label * V ** (k + 1) + rest, return_counts=True)
            counts = counts.float()
            disc = self._discounts(counts).to(counts.device)
            taken = disc[(counts.clamp(max=3) - 1).long()]
            ctx, where = torch.unique(keys // V, return_inverse=True)
            for part, value in (("keys", keys), ("counts", counts), ("ctx_keys", ctx),
                                ("ctx_counts", torch.zeros(len(ctx), device=ids.device).index_add_(0, where, counts)),
                                ("ctx_backoff", torch.zeros(len(ctx), device=ids.device).index_add_(0, where, taken)),
                                ("discounts", disc)):
                setattr(self, f"{part}{k}", value)
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in list(self._buffers):          # the saved counts set the sizes
            if prefix + name in state_dict:
                self._buffers[name] = torch.empty_like(state_dict[prefix + name], device=self._buffers[name].device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def _lookup(keys: torch.Tensor, values: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """values[keys == query] (0 where absent) and whether it was there."""
        if not len(keys):
            return torch.zeros(query.shape, device=query.device), torch.zeros(query.shape, dtype=torch.bool,
                                                                              device=query.device)
        query = query.contiguous()
        i = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        hit = keys[i] == query
        return torch.where(hit, values[i], torch.zeros((), device=query.device)), hit

    def _probs(self, x: torch.Tensor, label: int, base: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """p(target | label, the characters before it) at each of x's last positions; target is (B, L) or, for
        whole distributions, (B, L, V) with the contexts broadcast."""
        V = self.vocab_size
        lab = torch.full((x.shape[0],), label, dtype=torch.long, device=x.device)
        p = base
        for k in range(self.order):
            ctx = self._context(x, lab, k)
            total, seen = self._lookup(getattr(self, f"ctx_keys{k}"), getattr(self, f"ctx_counts{k}"), ctx)
            freed, _ = self._lookup(getattr(self, f"ctx_keys{k}"), getattr(self, f"ctx_backoff{k}"), ctx)
            if target.dim() == 3:
                total, seen, freed, ctx = total[..., None], seen[..., None], freed[..., None], ctx[..., None]
            count, _ = self._lookup(getattr(self, f"keys{k}"), getattr(self, f"counts{k}"), ctx * V + target)
            disc = getattr(self, f"discounts{k}")[(count.clamp(min=1, max=3) - 1).long()]
            total = total.clamp(min=1)
            p = torch.where(seen, (count - disc).clamp(min=0) / total + freed / total * p, p)
        return p

    def _uniform(self, shape, device) -> torch.Tensor:
        return torch.full(shape, 1.0 / self.vocab_size, device=device)

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, n_labels) log p(name | language), in nats."""
        x, valid = self._framed(ids.long(), lengths)
        target = x[:, self.order - 1:]
        pooled = self._probs(x, self.n_labels, self._uniform(valid.shape, ids.device), target)
        return torch.stack([(self._probs(x, c, pooled, target).log() * valid).sum(1)
                            for c in range(self.n_labels)], dim=1)

    @torch.no_grad()
    def next_probs(self, history: torch.Tensor, labels: torch.Tensor, last: int | None = None) -> torch.Tensor:
        """(B, L, V) next-character distributions after each position of ``history`` (B, L): character ids,
        starting with <bos>, as a generator reads them. The context of a position is its last order-1 ids.
        ``last``: only after the last that many positions, (B, last, V) (sampling needs one). Rows with the same
        language and context are computed once (names drawn together share their first letters)."""
        B, L = history.shape
        V, n = self.vocab_size, self.order
        x = torch.cat([torch.full((B, n - 2), self.BOS, dtype=torch.long, device=history.device),
                       history.long()], dim=1) if n > 1 else history.long()[:, 1:]   # order 1 reads no context
        x = torch.cat([x, torch.zeros(B, 1, dtype=torch.long, device=x.device)], dim=1)   # a slot for the target
        if last is not None and 0 < last < L:
            x, L = x[:, x.shape[1] - (last + n - 1):], last
        if B > 1:
            rows, again = torch.unique(torch.cat([labels.long()[:, None], x], dim=1), dim=0, return_inverse=True)
            if len(rows) < B:
                return self._next_probs(rows[:, 1:], rows[:, 0], L)[again]
        return self._next_probs(x, labels, L)

    def _next_probs(self, x: torch.Tensor, labels: torch.Tensor, L: int) -> torch.Tensor:
        B, V = x.shape[0], self.vocab_size
        target = torch.arange(V, device=x.device).expand(B, L, V)
        pooled = self._probs(x, self.n_labels, self._uniform((B, L, V), x.device), target)
        out = torch.empty(B, L, V, device=x.device)
        for c in labels.unique().tolist():
            rows = labels == c
            out[rows] = self._probs(x[rows], c, pooled[rows], target[rows])
        return out


class BlendedClassifier(nn.Module):
    """A network classifier with a character n-gram language model added (engine/blend.py fits it):

        logits = log_softmax(network) + weight * (log p(name | language) + prior_weight * log prior(language))

    ``weight`` and ``prior_weight`` are chosen on the validation split; weight 0 is the network alone."""

    def __init__(self, net: nn.Module, lm: CharNGramLM, log_prior: torch.Tensor, weight: float, prior_weight: float):
        super().__init__()
        self.net, self.lm = net, lm
        self.register_buffer("log_prior", log_prior.float())
        self.register_buffer("weight", torch.tensor(float(weight)))
        self.register_buffer("prior_weight", torch.tensor(float(prior_weight)))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        net = torch.log_softmax(self.net(ids, lengths).float(), dim=-1)
        return net + self.weight * (self.lm(ids, lengths) + self.prior_weight * self.log_prior)


class MixedGenerator(nn.Module):
    """A generator with a character n-gram language model mixed in (engine/blend.py fits it), as a product of
    experts renormalised over the next character:

        log p(x | history, language) = a_i * log p_net(x | ...) + b_i * log p_lm(x | ...) - log Z

    with i the position of x in the name (0 for the first letter); ``net_weight`` and ``lm_weight`` hold a pair for
    each of the first positions, the last pair serving every later one (one pair: every position). They are
    chosen on the validation split. Same calling convention as Generator: (ids, labels[, lengths, state]) ->
    (log-probabilities, state); ``state`` carries the network's state, the last order-1 characters and how many
    have been read, so sampling one character at a time works as with the network alone."""

    def __init__(self, net: nn.Module, lm: CharNGramLM, net_weight, lm_weight):
        super().__init__()
        self.net, self.lm = net, lm
        a = torch.as_tensor(net_weight, dtype=torch.float).detach().clone().reshape(-1)
        b = torch.as_tensor(lm_weight, dtype=torch.float).detach().clone().reshape(-1)
        if a.shape != b.shape or not len(a):
            raise ValueError(f"{len(a)} network weights and {len(b)} n-gram weights")
        self.register_buffer("net_weight", a)
        self.register_buffer("lm_weight", b)

    def forward(self, ids: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        net_state, tail, read = state if state is not None else (None, None, 0)
        logits, net_state = self.net(ids, labels, lengths, net_state)
        history = ids if tail is None else torch.cat([tail, ids], dim=1)
        q = self.lm.next_probs(history, labels, last=ids.shape[1])
        at = (read + torch.arange(ids.shape[1], device=self.net_weight.device)).clamp(max=len(self.net_weight) - 1)
        a, b = self.net_weight[at][:, None], self.lm_weight[at][:, None]     # (T, 1): broadcast over (B, T, V)
        mixed = a * torch.log_softmax(logits.float(), -1) + b * q.clamp(min=1e-30).log()
        keep = self.lm.order - 1    # the characters the next call's contexts need
        state = (net_state, history[:, max(0, history.shape[1] - keep):], read + ids.shape[1])
        return torch.log_softmax(mixed, -1), state
