"""CUDA only: names/s and epoch time of the classifier and the generator, without and with AMP."""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

from namestudio.engine.train import Trainer

from .common import Context, median, ratio, sync


def gpu_section(ctx: Context) -> dict:
    """Names/s and epoch time on CUDA, for the classifier and the generator, without and with AMP."""
    b = ctx.budgets
    sec = ctx.rep.section("GPU (CUDA)", 4 * b.gpu_epochs)
    out = {}
    for task, key in (("classify", "lstm"), ("generate", "generator")):
        times = {False: [], True: []}
        trainers = {}
        with tempfile.TemporaryDirectory(prefix="namestudio-bench-") as tmp:
            for amp in (False, True):
                cfg = replace(ctx.config(task=task), device="cuda", amp=amp)
                trainers[amp] = Trainer(cfg, Path(tmp) / str(amp), dataset=ctx.dataset)
                trainers[amp].setup()
        for e in range(b.gpu_epochs + 1):  # epoch 0 warms up (cuDNN plans, allocator)
            for amp in ((False, True) if e % 2 == 0 else (True, False)):
                tr = trainers[amp]
                idxs = tr.epoch_batches(e)
                tr.model.train()
                sync(tr.device)
                start = time.perf_counter()
                for idx in idxs:
                    tr.train_step(idx)
                sync(tr.device)
                if e:
                    times[amp].append(time.perf_counter() - start)
                    sec.step(f"{key} amp={amp}: {times[amp][-1]:.2f} s/epoch")
        n = len(trainers[False].train_data)
        for amp, suffix in ((False, ""), (True, "_amp")):
            epoch_s = median(times[amp])
            out[f"gpu_{key}{suffix}_epoch_seconds"] = epoch_s
            out[f"gpu_{key}{suffix}_names_per_s"] = ratio(n, epoch_s)
    sec.finish()
    out["notes"] = {"gpu_lstm_names_per_s": "a whole training epoch (Trainer's train step: forward, backward, "
                                            "clipping, AdamW), median of epochs after one warm-up epoch"}
    return out
