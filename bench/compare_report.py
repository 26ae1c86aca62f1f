#!/usr/bin/env python3
"""Summarise bench/out/compare.json (written by compare.sh).

Prints a Markdown report: medians over rounds, and ratios to the floor run
in the same round (the ratio per round first, then the median of those), so
that a round on a noisier machine does not skew the comparison. Writes
gnuplot data and plots.gp beside the JSON.
"""
import argparse
import json
import math
import os
import platform
import statistics
from collections import defaultdict

LAT_KEYS = ["p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns"]
PCTS = [50, 90, 99, 99.9, 99.99]


def load(path):
    rows, errors, skipped = [], [], {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            if "error" in d:
                errors.append(d)
            elif "skipped" in d:
                skipped[d["workload"]] = d["skipped"]
            else:
                rows.append(d)
    return rows, errors, skipped


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_int(x):
    return "–" if math.isnan(x) else f"{x:,.0f}"


def fmt_ratio(x):
    return "–" if math.isnan(x) else f"{x:.2f}×"


def by_round(rows, pred):
    """{(workload, size): {round: row}} for rows matching pred."""
    out = defaultdict(dict)
    for d in rows:
        if pred(d):
            out[(d["workload"], d["size"])][d["round"]] = d
    return out


def order(keys, first):
    """floor first, then shmbus, then peers; by size within each."""
    def rank(k):
        w, s = k
        if w in first:
            return (first.index(w), "", s)
        return (len(first), w, s)
    return sorted(keys, key=rank)


def latency_section(rows, lines):
    lat = by_round(rows, lambda d: "p50_ns" in d)
    floor = lat.get(("floor", 8), {})
    if not lat:
        return lat
    n = max(len(v) for v in lat.values())
    lines.append(f"### Latency: round trip in ns, median of {n} rounds\n")
    lines.append("Ratios: to the floor's same percentile in the same round, "
                 "then the median over rounds.\n")
    lines.append("| workload | payload B | p50 | p90 | p99 | p99.9 | p99.99 "
                 "| p50 ÷ floor | p99 ÷ floor |")
    lines.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for key in order(lat, ["floor", "pingpong"]):
        runs = lat[key]
        vals = [med([r[k] for r in runs.values()]) for k in LAT_KEYS]
        ratios = []
        for k in ("p50_ns", "p99_ns"):
            rs = [r[k] / floor[i][k] for i, r in runs.items()
                  if i in floor and floor[i][k]]
            ratios.append(med(rs))
        lines.append(f"| {key[0]} | {key[1]} | "
                     + " | ".join(fmt_int(v) for v in vals) + " | "
                     + " | ".join(fmt_ratio(x) for x in ratios) + " |")
    lines.append("")
    return lat


def throughput_section(rows, lines):
    tp = by_round(rows, lambda d: "msgs_per_s" in d)
    if not tp:
        return tp
    n = max(len(v) for v in tp.values())
    lines.append(f"### Throughput: one producer, one consumer, median of "
                 f"{n} rounds\n")
    lines.append("MB/s counts payload bytes. Ratio: to floorring at the same "
                 "size in the same round, then the median over rounds.\n")
    lines.append("| workload | payload B | msgs/s | MB/s | ÷ floorring |")
    lines.append("|---|--:|--:|--:|--:|")
    for key in order(tp, ["floorring", "throughput"]):
        runs = tp[key]
        ring = tp.get(("floorring", key[1]), {})
        rs = [r["msgs_per_s"] / ring[i]["msgs_per_s"]
              for i, r in runs.items() if i in ring and ring[i]["msgs_per_s"]]
        lines.append(f"| {key[0]} | {key[1]} | "
                     f"{fmt_int(med([r['msgs_per_s'] for r in runs.values()]))} | "
                     f"{med([r['mb_per_s'] for r in runs.values()]):,.1f} | "
                     f"{fmt_ratio(med(rs))} |")
    lines.append("")
    return tp


def write_plots(outdir, lat, tp):
    """gnuplot data files and plots.gp; compare.sh runs gnuplot."""
    series = []
    for (w, s), runs in sorted(lat.items()):
        if w not in ("floor", "pingpong") and s != 64:
            continue  # peers at 64 B only: the plot stays readable
        name = f"lat_{w}_{s}.dat"
        with open(os.path.join(outdir, name), "w") as f:
            for p, k in zip(PCTS, LAT_KEYS):
                x = -math.log10(1 - p / 100)
                f.write(f"{x:.4f} {med([r[k] for r in runs.values()])}\n")
        label = w if w == "floor" else f"{w} {s} B"
        series.append((name, label))
    tps = []
    for w in sorted({w for w, _ in tp}):
        name = f"tp_{w}.dat"
        with open(os.path.join(outdir, name), "w") as f:
            for s in sorted(s for ww, s in tp if ww == w):
                runs = tp[(w, s)].values()
                f.write(f"{s} {med([r['msgs_per_s'] for r in runs])} "
                        f"{med([r['mb_per_s'] for r in runs])}\n")
        tps.append((name, w))
    # the key to the right of the plot: below it, it ran into the x label
    gp = ["set terminal pngcairo size 1000,560 noenhanced",
          "set key outside right top vertical", "set grid"]
    if series:
        gp += ["set output 'latency.png'",
               "set title 'Round-trip latency by percentile (median of rounds)'",
               "set logscale y", "set xrange [0.2:4.2]",
               "set xtics ('50' 0.301, '90' 1, '99' 2, '99.9' 3, '99.99' 4)",
               "set xlabel 'percentile'", "set ylabel 'round trip, µs'",
               "set format y '%g'",
               "plot " + ", \\\n     ".join(
                   f"'{n}' using 1:($2/1000) with linespoints title '{t}'"
                   for n, t in series)]
    if tps:
        gp += ["reset", "set terminal pngcairo size 1400,520 noenhanced",
               "set output 'throughput.png'", "set grid",
               "set multiplot layout 1,2 title "
               "'Throughput by payload size (median of rounds)'",
               "set logscale x 2", "set logscale y",
               "set key outside right top vertical",
               "set xlabel 'payload bytes'", "set ylabel 'M msgs/s'",
               "set format y '%g'",
               "plot " + ", \\\n     ".join(
                   f"'{n}' using 1:($2/1e6) with linespoints title '{t}'"
                   for n, t in tps),
               "set ylabel 'MB/s'",
               "plot " + ", \\\n     ".join(
                   f"'{n}' using 1:3 with linespoints title '{t}'"
                   for n, t in tps),
               "unset multiplot"]
    with open(os.path.join(outdir, "plots.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--rounds", default="?")
    ap.add_argument("--lat-count", default="?")
    ap.add_argument("--tp-count", default="?")
    ap.add_argument("--wait", default="spin")
    ap.add_argument("--load-before", default="?")
    a = ap.parse_args()
    rows, errors, skipped = load(os.path.join(a.outdir, "compare.json"))
    timer = med([d["timer_overhead_ns"] for d in rows
                 if "timer_overhead_ns" in d])
    cpus = rows[0]["cpus"] if rows else "?"
    lines = ["## shmbus against the floor and its peers\n",
             f"{cpu_model()}, {os.cpu_count()} cpus online, Linux "
             f"{platform.release()}; processes pinned to cpus {cpus}; "
             f"wait `{a.wait}`; {a.rounds} rounds (A B A B); "
             f"{a.lat_count} round trips and {a.tp_count} messages per run; "
             f"load average before: {a.load_before}. Clock: CLOCK_MONOTONIC "
             f"(vDSO), {timer:.1f} ns per read, included once in every "
             f"latency sample.\n"]
    lat = latency_section(rows, lines)
    tp = throughput_section(rows, lines)
    if skipped:
        lines.append("Skipped: " + "; ".join(
            f"{w} ({why})" for w, why in sorted(skipped.items())) + ".\n")
    if errors:
        lines.append("**Failed runs:** " + "; ".join(
            f"{e['workload']} size {e.get('size', '?')} round "
            f"{e.get('round', '?')}: {e['error']}" for e in errors) + "\n")
    print("\n".join(lines))
    write_plots(a.outdir, lat, tp)


if __name__ == "__main__":
    main()
