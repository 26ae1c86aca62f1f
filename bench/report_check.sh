#!/usr/bin/env bash
# report_check.sh BENCH: compare.sh's report and plots from a short run of
# each kind (a latency, a throughput at two sizes, two rounds), rendered by
# gnuplot. Fails if the report breaks, if gnuplot refuses the script, or if
# the axes are not in the units a reader wants (µs, M msgs/s: gnuplot
# printed raw 1e+07 ticks before).
set -euo pipefail
bench=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in 1 2; do
	for w in "floor --size 8" "pingpong --size 32" \
		"throughput --size 8" "throughput --size 64"; do
		# shellcheck disable=SC2086
		"$bench" $w --count 3000 --warmup 100 --timeout 30 --json \
			2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    if line.strip():
        d = json.loads(line); d["round"] = int(sys.argv[1])
        print(json.dumps(d))' "$r" >>"$out/compare.json"
	done
done
here=$(dirname "$0")
python3 "$here/compare_report.py" "$out" --rounds 2 >"$out/report.md"
grep -q "pingpong" "$out/report.md" || { echo "no pingpong row in the report"; exit 1; }
grep -q "ylabel 'round trip, µs'" "$out/plots.gp" || { echo "latency axis not in µs"; exit 1; }
grep -q "ylabel 'M msgs/s'" "$out/plots.gp" || { echo "throughput axis not in M msgs/s"; exit 1; }
grep -q "key below" "$out/plots.gp" && { echo "the key below the plot runs into the x label"; exit 1; }
(cd "$out" && gnuplot plots.gp)
for p in latency.png throughput.png; do
	[ -s "$out/$p" ] || { echo "gnuplot made no $p"; exit 1; }
done
echo "report and plots: ok"
