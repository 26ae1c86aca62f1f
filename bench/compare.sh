#!/usr/bin/env bash
# compare.sh: shmbus against the machine's floor and the available peers.
#
# Runs A B A B: every round measures the floor, then shmbus, then each peer,
# so that drift of the machine (other load, frequency) hits all alike; each
# figure is reported as the median over rounds and as its ratio to the
# floor measured in the same round (median of the per-round ratios).
#
# Output, in OUT (default: compare-out beside the binary, in the build
# tree, never the source tree): a Markdown table on stdout and in
# OUT/compare.md, the raw JSON lines (with their round) in
# OUT/compare.json, and, when gnuplot is installed, OUT/latency.png and
# OUT/throughput.png.
#
# Before each round it waits (up to 10 minutes) for a load average under
# 0.3, and says so; -n does not wait.
#
# usage: bench/compare.sh [-r ROUNDS] [-l LAT_COUNT] [-t TP_COUNT]
#                         [-s "SIZES"] [-w WAIT] [-c CPUS] [-b BINARY]
#                         [-o OUT] [-n]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=""
quiet=1
bin=$here/../build/bench/shmbus_bench
rounds=3
lat_count=50000
tp_count=1000000
sizes="8 64 256 1024 4096"
wait=spin
cpus=""

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while getopts "r:l:t:s:w:c:b:o:nh" opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	l) lat_count=$OPTARG ;;
	t) tp_count=$OPTARG ;;
	s) sizes=$OPTARG ;;
	w) wait=$OPTARG ;;
	c) cpus=$OPTARG ;;
	b) bin=$OPTARG ;;
	o) out=$OPTARG ;;
	n) quiet=0 ;;
	h) usage 0 ;;
	*) usage 2 >&2 ;;
	esac
done
[ -x "$bin" ] || { echo "compare.sh: no $bin (build first, or -b)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "compare.sh: needs python3" >&2; exit 2; }

[ -n "$out" ] || out=$(cd "$(dirname "$bin")" && pwd)/compare-out
mkdir -p "$out"
# Run a snapshot of the program and of the shmbus libraries it loads
# (libshmbus, and libshmbus_bridge for the bridge workload): a rebuild
# during the run (other work in the tree) must not swap any of them.
snap=$out/bin
rm -rf "$snap" && mkdir -p "$snap"
cp "$bin" "$snap/shmbus_bench"
ldd "$bin" | awk '$1 ~ /^libshmbus(_bridge)?\.so/ {print $3}' |
	while read -r lib; do cp -L "$lib" "$snap/"; done
export LD_LIBRARY_PATH=$snap${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
bin=$snap/shmbus_bench
raw=$out/compare.json.tmp
: >"$raw"

# Peers this build has (the others say why they are skipped).
peers=()
while IFS=$'\t' read -r name state; do
	case $name in
	*-pingpong) [ "$state" = available ] && peers+=("${name%-pingpong}") ;;
	esac
done < <("$bin" --list)
for p in uds zmq nng iox; do
	[[ " ${peers[*]} " == *" $p "* ]] || echo "compare.sh: $p: $("$bin" --list | awk -F'\t' -v w="$p-pingpong" '$1==w {print $2}')" >&2
done

common=(--json --wait "$wait")
[ -n "$cpus" ] && common+=(--cpus "$cpus")
failed=0

# run ROUND WORKLOAD SIZE COUNT: one result set, tagged with its round
run() {
	local round=$1 wl=$2 size=$3 count=$4 lines
	echo "compare.sh: round $round: $wl --size $size --count $count" >&2
	if ! lines=$("$bin" "$wl" --size "$size" --count "$count" "${common[@]}"); then
		echo "compare.sh: $wl --size $size FAILED" >&2
		failed=1
	fi
	printf '%s\n' "$lines" | python3 -c '
import json, sys
r = int(sys.argv[1])
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        d = json.loads(line); d["round"] = r; print(json.dumps(d))
' "$round" >>"$raw"
}

# A quiet machine before each round: another process's work shows up as
# milliseconds in every tail on two cores.
wait_quiet() {
	local load
	for _ in $(seq 600); do
		load=$(cut -d' ' -f1 /proc/loadavg)
		python3 -c "import sys; sys.exit(0 if $load < 0.3 else 1)" && {
			echo "compare.sh: round $1: load average $load" >&2
			return
		}
		sleep 1
	done
	echo "compare.sh: round $1: load average still $load after 10 minutes; going on" >&2
}

load=$(cut -d' ' -f1 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
	[ "$quiet" = 1 ] && wait_quiet "$r"
	run "$r" floor 8 "$lat_count"
	for s in 32 64; do
		run "$r" pingpong "$s" "$lat_count"
		for p in "${peers[@]}"; do run "$r" "$p-pingpong" "$s" "$lat_count"; done
	done
	for s in $sizes; do
		run "$r" floorring "$s" "$tp_count"
		run "$r" throughput "$s" "$tp_count"
		for p in "${peers[@]}"; do run "$r" "$p-throughput" "$s" "$tp_count"; done
	done
done

mv "$raw" "$out/compare.json"
python3 "$here/compare_report.py" "$out" \
	--rounds "$rounds" --lat-count "$lat_count" --tp-count "$tp_count" \
	--wait "$wait" --load-before "$load" >"$out/compare.md"
cat "$out/compare.md"

if command -v gnuplot >/dev/null; then
	(cd "$out" && gnuplot plots.gp) && echo "compare.sh: plots in $out/latency.png, $out/throughput.png" >&2
else
	echo "compare.sh: no gnuplot (apt-get install -y gnuplot-nox): no plots" >&2
fi
exit "$failed"
