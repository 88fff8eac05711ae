"""mylstm against nn.LSTM: epoch time of forward+backward over the same batches with the very same weights (and,
in a full run, with mylstm's step scripted by TorchScript or compiled by torch.compile)."""
from __future__ import annotations

import tempfile
import time
import warnings

import torch

from namestudio.engine.batches import epoch_batches
from namestudio.engine.models import _lstm_step, build_model
from namestudio.engine.train import Trainer, batch_loss

from .common import Context, median, sync

CHUNK = 8  # batches per turn


def cells_section(ctx: Context) -> dict:
    b, cfg = ctx.budgets, ctx.config()
    with tempfile.TemporaryDirectory(prefix="namestudio-bench-") as tmp:
        trainer = Trainer(cfg, tmp, dataset=ctx.dataset)
        trainer.setup()
    device, lstm, data = trainer.device, trainer.model, trainer.train_data

    def mylstm(step=None):
        model = build_model(cfg.task, "mylstm", len(trainer.vocab), len(trainer.labels), embed=cfg.embed,
                            hidden=cfg.hidden, layers=cfg.layers, bidirectional=cfg.bidirectional,
                            dropout=cfg.dropout).to(device)
        model.load_state_dict(lstm.state_dict())  # same names and layout: the very same weights
        if step is not None:
            model.rnn.step = step
        return model

    contenders = {"lstm": lstm, "mylstm": mylstm()}
    notes = {"mylstm_over_lstm_epoch_time": f"forward+backward over the same batches (batch {cfg.batch_size}, "
                                            f"hidden {cfg.hidden}, bidirectional), median of {b.cell_epochs} epochs"}
    if b.jit_variants:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                contenders["mylstm_scripted"] = mylstm(torch.jit.script(_lstm_step))
            except Exception as e:
                notes["mylstm_scripted_over_lstm_epoch_time"] = f"TorchScript failed: {type(e).__name__}: {e}"
            try:
                contenders["mylstm_compiled"] = mylstm(torch.compile(_lstm_step, dynamic=True))
            except Exception as e:
                notes["mylstm_compiled_over_lstm_epoch_time"] = f"torch.compile failed: {type(e).__name__}: {e}"

    def epoch(e: int):
        idxs = epoch_batches(data.lengths, cfg.batch_size, torch.Generator().manual_seed(cfg.seed * 1000 + e))
        return [data.batch(i, device) for i in idxs[:b.cell_max_batches or None]]

    def forward_backward(model, batches) -> float:
        start = time.perf_counter()
        for batch in batches:
            loss, _ = batch_loss(model, batch, cfg.task, trainer.amp, trainer.class_weights)
            model.zero_grad(set_to_none=True)
            loss.backward()
        sync(device)
        return time.perf_counter() - start

    warm = epoch(b.cell_epochs)[:6]  # one-off costs (allocator, TorchScript profiling, compilation) come first
    warmup_s = {}
    for name, model in list(contenders.items()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                warmup_s[name] = forward_backward(model, warm)
        except Exception as e:
            notes[f"{name}_over_lstm_epoch_time"] = f"{name} failed: {type(e).__name__}: {str(e)[:200]}"
            del contenders[name]
    names = list(contenders)
    sec = ctx.rep.section("mylstm vs nn.LSTM", b.cell_epochs)
    epoch_times = {n: [] for n in names}
    for e in range(b.cell_epochs):
        batches = epoch(e)
        total = dict.fromkeys(names, 0.0)
        for k, s in enumerate(range(0, len(batches), CHUNK)):
            turn = names[k % len(names):] + names[:k % len(names)]  # everyone goes first in turn
            for n in turn:
                total[n] += forward_backward(contenders[n], batches[s:s + CHUNK])
        for n in names:
            epoch_times[n].append(total[n])
        sec.step(f"epoch {e + 1}: mylstm/lstm {total['mylstm'] / total['lstm']:.2f}")
    ratios = {n: median([t / l for t, l in zip(epoch_times[n], epoch_times["lstm"])]) for n in names}
    sec.finish(f"mylstm/lstm {ratios['mylstm']:.2f}")
    out = {"mylstm_over_lstm_epoch_time": ratios["mylstm"], "lstm_epoch_seconds": median(epoch_times["lstm"]),
           "mylstm_epoch_seconds": median(epoch_times["mylstm"]),
           "mylstm_scripted_over_lstm_epoch_time": ratios.get("mylstm_scripted"),
           "mylstm_compiled_over_lstm_epoch_time": ratios.get("mylstm_compiled"), "notes": notes}
    if "mylstm_compiled" in warmup_s:
        out["mylstm_compile_warmup_seconds"] = warmup_s["mylstm_compiled"]
    if b.cell_max_batches:
        notes["lstm_epoch_seconds"] = f"epochs cut to {b.cell_max_batches} batches"
    return out
