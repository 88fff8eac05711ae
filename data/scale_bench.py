"""The data path at scale: a synthetic labelled CSV of a million names, and the time and memory it takes to
load, clean, dedup, split and summarise it, cold (empty cache) and warm (cached).

``measure()`` is what ``namestudio bench`` calls for its scale section; ``generate_csv()`` writes the test
and bench data. Each measurement runs in a child process (``python -m namestudio.data.scale_bench --run``)
so its peak RSS is its own. No torch, no textual.
"""
from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

EXTRA_LABELS = 3          # made-up labels on top of the built-in ones (~20 in all)


def generate_csv(path: str | Path, n: int = 1_000_000, seed: int = 0) -> Path:
    """A realistic ``name,label`` CSV of ``n`` data lines, deterministic for a seed.

    Names are the built-in surnames with syllable variations (new names that keep their language's
    letters), ~20 labels of skewed sizes, ~12% exact duplicate lines, ~1% of names under a second
    label, and ~1.5% dirty lines: digits, stray spaces, typographic apostrophes, decomposed accents,
    empty names, unclosed quotes, quoted commas, too many words, no label.
    """
    from . import builtin
    rng = random.Random(seed)
    base: dict[str, list[str]] = {}
    for name, label in builtin.builtin_rows()[0]:
        if "," not in name and '"' not in name:
            base.setdefault(label, []).append(name)
    labels = sorted(base)
    for i in range(EXTRA_LABELS):                   # dialects: a sibling label with its own suffix
        parent = labels[i * 3 % len(labels)]
        base[f"{parent}-{'xyz'[i]}"] = [n + ("ak", "ene", "oui")[i] for n in base[parent][::2]]
    labels = sorted(base)
    weights = [len(base[lab]) ** 0.6 for lab in labels]
    syllables = {lab: sorted({n[i:i + 2].lower() for n in base[lab] for i in range(0, len(n) - 1, 2)
                              if n[i:i + 2].isalpha()} or {"an"}) for lab in labels}

    def vary(name: str, label: str) -> str:
        r, syl = rng.random(), syllables[label]
        if r < 0.25:
            return name
        if r < 0.55:
            return name + rng.choice(syl)
        if r < 0.75:
            return (rng.choice(syl) + name.lower()).capitalize()
        if r < 0.9:
            i = rng.randrange(len(name))
            return name[:i] + rng.choice(syl) + name[i + 1:]
        return "".join(rng.choice(syl) for _ in range(3)).capitalize() + rng.choice(syl)

    def dirty(name: str) -> str:
        r = rng.random()
        return (name + str(rng.randrange(10)) if r < 0.15 else "  " + name + " " if r < 0.3 else
                "O\u2019" + name if r < 0.4 else unicodedata.normalize("NFD", name + "é") if r < 0.5 else
                "" if r < 0.6 else '"' + name if r < 0.7 else '"' + name + ', Jr"' if r < 0.8 else
                name + " de la Cruz Smith" if r < 0.9 else "???")

    lines, recent = ["name,label"], []
    for _ in range(n):
        r = rng.random()
        if recent and r < 0.12:
            lines.append(rng.choice(recent))
            continue
        label = rng.choices(labels, weights)[0]
        name = vary(rng.choice(base[label]), label)
        if r > 0.985:
            name = dirty(name)
        if rng.random() < 0.01:
            label = rng.choice(labels)
        if rng.random() < 0.001:
            label = ""
        line = f"{name},{label}"
        lines.append(line)
        if len(recent) < 5000:
            recent.append(line)
        elif rng.random() < 0.1:
            recent[rng.randrange(5000)] = line
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def peak_rss_mb() -> float:
    """This process's peak resident memory. /proc's VmHWM first: on Linux, getrusage's ru_maxrss survives exec, so
    a child started by a big parent (the bench holds torch) would report the parent's peak as its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_once(src: str) -> dict:
    """Load, clean, dedup, split and summarise ``src`` in this process; seconds and peak RSS."""
    t0, c0 = time.perf_counter(), time.process_time()
    from . import load_dataset, split_by_name, summarise
    t1 = time.perf_counter()
    ds = load_dataset(src)
    t2 = time.perf_counter()
    split = split_by_name(ds.pairs, seed=0)
    t3 = time.perf_counter()
    summary = summarise(ds, split)
    t4 = time.perf_counter()
    return {"seconds": round(t4 - t1, 3), "load_s": round(t2 - t1, 3),
            "split_s": round(t3 - t2, 3), "summary_s": round(t4 - t3, 3),
            "cpu_seconds": round(time.process_time() - c0, 3), "cached": ds.cached,
            "peak_rss_mb": peak_rss_mb(),
            "n_lines": summary["cleaning"]["lines_read"], "n_pairs": summary["n_pairs"],
            "n_labels": summary["n_labels"], "split": summary["split"]["counts"]}


def measure(n: int = 1_000_000, workdir: str | Path | None = None, seed: int = 0) -> dict:
    """The 1M-name data figures: generate the CSV, then run the data path cold and warm, each in a child
    process with its own empty cache folder (in ``workdir``, a temporary folder by default)."""
    with tempfile.TemporaryDirectory(prefix="namestudio-scale-", dir=workdir) as tmp:
        csv = generate_csv(Path(tmp) / "names.csv", n, seed)
        env = {**os.environ, "NAMESTUDIO_CACHE_DIR": str(Path(tmp) / "cache")}
        runs = {}
        for which in ("cold", "warm"):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "namestudio.data.scale_bench", "--run", str(csv)],
                                 env=env, capture_output=True, text=True, check=True)
            runs[which] = {**json.loads(out.stdout.strip().splitlines()[-1]),
                           "process_s": round(time.perf_counter() - t, 3)}
        return {"n": n, "csv_mb": round(csv.stat().st_size / 2 ** 20, 1), "cpus": os.cpu_count(), **runs}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        print(json.dumps(run_once(sys.argv[2])))
    elif len(sys.argv) == 4 and sys.argv[1] == "--generate":
        print(generate_csv(sys.argv[2], int(sys.argv[3])))
    else:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
        print(json.dumps(measure(n), indent=1))
