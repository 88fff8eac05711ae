"""Scale: the data path at a million names (cold and cached, in fresh processes) and training names/s with 1
and 2 torch.distributed ranks on CPU. The measuring functions live beside what they measure
(``data/scale_bench.py``, ``engine/ddp_bench.py``); this module runs them and names the figures."""
from __future__ import annotations

from namestudio.data.scale_bench import measure as measure_data
from namestudio.engine.ddp_bench import measure_ranks

from .common import Context


def scale_section(ctx: Context) -> dict:
    b = ctx.budgets
    sec = ctx.rep.section("scale", 1 + (1 if b.rank_steps else 0))
    d = measure_data(n=b.scale_names)
    sec.step(f"{b.scale_names:,} names: cold {d['cold']['seconds']:.2f} s, warm {d['warm']['seconds']:.2f} s")
    out = {"scale_names": d["n"], "scale_csv_mb": d["csv_mb"],
           "scale_data_cold_seconds": d["cold"]["seconds"], "scale_data_cold_cpu_seconds": d["cold"]["cpu_seconds"],
           "scale_data_cold_peak_rss_mb": d["cold"]["peak_rss_mb"],
           "scale_data_warm_seconds": d["warm"]["seconds"], "scale_data_warm_peak_rss_mb": d["warm"]["peak_rss_mb"]}
    if b.rank_steps:
        ranks = {r["nproc"]: r for r in measure_ranks((1, 2), data=ctx.data_src, steps=b.rank_steps,
                                                      threads=1)}
        out.update(ranks1_names_per_s=ranks[1]["names_per_s"], ranks2_names_per_s=ranks[2]["names_per_s"],
                   ranks2_over_ranks1=ranks[2]["names_per_s"] / ranks[1]["names_per_s"])
        sec.step(f"1 rank {ranks[1]['names_per_s']:,.0f} names/s, 2 ranks {ranks[2]['names_per_s']:,.0f} names/s")
    else:
        out["ranks_skipped"] = "this preset measures no ranks (each rank is a process that imports torch)"
    sec.finish()
    return out
