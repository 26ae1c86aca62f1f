#!/usr/bin/env bash
# ab.sh: two builds of shmbus_bench, alternating, each figure bracketed by
# the floor.
#
# Every round runs: floor, A, B, floor (A and B swap places every other
# round, so that drift favours neither). A round is kept only if its two
# floor figures agree within 15%; it is then labelled by placement: near
# (floor p50 under 250 ns) or far (over 400 ns), else dropped as mixed.
# Reported per placement: each build's median and the median of the
# per-round ratios B / A.
#
# usage: bench/ab.sh [-r ROUNDS] [-q] A_BINARY B_BINARY WORKLOAD [ARGS...]
#   e.g. bench/ab.sh -r 6 old/shmbus_bench build/bench/shmbus_bench \
#            throughput --size 8 --count 4000000
#   -q   wait (up to 5 minutes) for a load average under 0.3 before each
#        round, and say so
# Latency workloads compare p50 (and p99); throughput ones msgs/s.
set -euo pipefail

rounds=6
quiet=0
while getopts "r:qh" opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	q) quiet=1 ;;
	h) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] || { sed -n '13,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
a=$1 b=$2
shift 2
for x in "$a" "$b"; do
	[ -x "$x" ] || { echo "ab.sh: $x is not an executable" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "ab.sh: needs python3" >&2; exit 2; }

wait_quiet() {
	for _ in $(seq 300); do
		load=$(cut -d' ' -f1 /proc/loadavg)
		python3 -c "import sys; sys.exit(0 if $load < 0.3 else 1)" && return
		sleep 1
	done
	echo "ab.sh: load average still $(cut -d' ' -f1 /proc/loadavg) after 5 minutes; going on" >&2
}

floor() { "$a" floor --count 30000 --json 2>/dev/null; }
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for r in $(seq "$rounds"); do
	[ "$quiet" = 1 ] && wait_quiet
	first=$a second=$b tag1=A tag2=B
	if [ $((r % 2)) = 0 ]; then first=$b second=$a tag1=B tag2=A; fi
	{
		echo "round $r floor $(floor)"
		echo "round $r $tag1 $("$first" "$@" --json 2>/dev/null | head -1)"
		echo "round $r $tag2 $("$second" "$@" --json 2>/dev/null | head -1)"
		echo "round $r floor $(floor)"
	} >>"$raw"
done

python3 - "$raw" "$a" "$b" "$*" <<'EOF'
import json, statistics, sys
raw, a, b, what = sys.argv[1:]
rounds = {}
for line in open(raw):
    _, r, tag, js = line.split(" ", 3)
    try:
        d = json.loads(js)
    except ValueError:
        print(f"round {r}: {tag} printed no result", file=sys.stderr)
        continue
    rounds.setdefault(r, {}).setdefault(tag, []).append(d)
def fig(d):
    return d["msgs_per_s"] / 1e6 if "msgs_per_s" in d else d["p50_ns"]
kind = None
groups = {"near": [], "far": []}
for r, g in sorted(rounds.items(), key=lambda x: int(x[0])):
    fl = [d["p50_ns"] for d in g.get("floor", [])]
    if len(fl) != 2 or "A" not in g or "B" not in g:
        continue
    lo, hi = min(fl), max(fl)
    place = "near" if hi < 250 else "far" if lo > 400 else "mixed"
    agree = hi <= lo * 1.15
    fa, fb = fig(g["A"][0]), fig(g["B"][0])
    kind = "M msgs/s" if "msgs_per_s" in g["A"][0] else "p50 ns"
    extra = ""
    if "p99_ns" in g["A"][0]:
        extra = f"  p99 {g['A'][0]['p99_ns']} / {g['B'][0]['p99_ns']}"
    keep = agree and place != "mixed"
    print(f"round {r}: floor {fl[0]}/{fl[1]} ns ({place}{'' if agree else ', floors disagree'})"
          f"  A {fa:.1f}  B {fb:.1f}  B/A {fb / fa:.3f}{extra}{'' if keep else '  (dropped)'}")
    if keep:
        groups[place].append((fa, fb, fl))
print(f"\n{what}: A = {a}, B = {b}, figures in {kind}")
for place, g in groups.items():
    if not g:
        print(f"{place}: no round kept")
        continue
    ra = statistics.median(x[0] for x in g)
    rb = statistics.median(x[1] for x in g)
    ratio = statistics.median(x[1] / x[0] for x in g)
    fl = [f for x in g for f in x[2]]
    print(f"{place}: {len(g)} rounds, floor {min(fl)}-{max(fl)} ns; A {ra:.1f}, B {rb:.1f}, B/A {ratio:.3f}")
EOF
