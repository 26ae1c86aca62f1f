#!/usr/bin/env bash
# shmbus stat against Prometheus's own tools, on a live bus (tool_feeder):
#   1. `--prometheus | promtool check metrics` passes (histograms, names);
#   2. `--listen 127.0.0.1:0` serves the same over HTTP, promtool again;
#   3. a real Prometheus server scrapes it, and a query through its HTTP
#      API returns a counter and a histogram_quantile() of the latency.
set -euo pipefail
tool=$1 feeder=$2
for t in promtool prometheus curl; do
  command -v $t >/dev/null ||
    { echo "$t not found (tools/install-deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d)
bus="prom$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "$*"; exit 1; }

mkfifo "$work/feed"
"$feeder" "$bus" < "$work/feed" > "$work/feeder.out" &
pids+=($!)
exec 3>"$work/feed" # the feeder runs until this closes
for _ in $(seq 200); do grep -q ready "$work/feeder.out" && break; sleep 0.05; done
grep -q ready "$work/feeder.out" || fail "the feeder did not start"

# 1. the text
"$tool" stat "$bus" --prometheus > "$work/text"
promtool check metrics < "$work/text" > "$work/check" 2>&1 ||
  { cat "$work/check"; fail "promtool check metrics failed on --prometheus"; }
grep -q '^# TYPE shmbus_subscriber_latency_seconds histogram$' "$work/text" ||
  fail "no latency histogram"
grep -q 'shmbus_subscriber_latency_seconds_bucket{.*subscriber="good",le="+Inf"} [1-9]' "$work/text" ||
  fail "no +Inf bucket with samples for subscriber good"

# 2. the endpoint, on a port the kernel picks
"$tool" stat "$bus" --listen 127.0.0.1:0 2> "$work/listen.err" &
pids+=($!)
for _ in $(seq 100); do grep -q 'http://' "$work/listen.err" && break; sleep 0.05; done
addr=$(grep -o 'http://[^/]*' "$work/listen.err" | head -1)
[[ -n $addr ]] || { cat "$work/listen.err"; fail "--listen said no address"; }
[[ $addr == http://127.0.0.1:* ]] || fail "--listen is not on loopback: $addr"
curl -sf "$addr/metrics" > "$work/http" || fail "GET $addr/metrics failed"
promtool check metrics < "$work/http" > "$work/check" 2>&1 ||
  { cat "$work/check"; fail "promtool check metrics failed on $addr/metrics"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$addr/nothing")
[[ $code == 404 ]] || fail "GET /nothing answered $code, not 404"
# a bare port listens on loopback only
if "$tool" stat "$bus" --listen nothing:here 2> "$work/bad.err"; then
  fail "--listen nothing:here was accepted"
fi
grep -q "is not ADDR:PORT" "$work/bad.err" || { cat "$work/bad.err"; fail "no reason given"; }

# 3. a Prometheus server scraping it every second
port=
for _ in $(seq 20); do
  p=$((20000 + RANDOM % 30000))
  (exec 9<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { port=$p; break; }
done
[[ -n $port ]] || fail "no free port for prometheus"
cat > "$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: shmbus
    static_configs:
      - targets: ['${addr#http://}']
YML
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address=127.0.0.1:$port > "$work/prometheus.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$port/api/v1/query"
query() { curl -sf --get "$api" --data-urlencode "query=$1"; }
q1="shmbus_subscriber_delivered_total{bus=\"$bus\",subscriber=\"good\"}"
q2="histogram_quantile(0.99, sum by (le) (rate(shmbus_subscriber_latency_seconds_bucket{bus=\"$bus\"}[10s])))"
got=
for _ in $(seq 60); do
  r=$(query "$q1" 2>/dev/null) || r=
  if [[ $r == *'"status":"success"'* && $r == *'"value":'* ]]; then got=$r; break; fi
  sleep 0.5
done
[[ -n $got ]] || { tail -n 20 "$work/prometheus.log"; fail "Prometheus has no $q1 after 30 s"; }
echo "$got" | grep -Eq '"value":\[[0-9.]+,"[1-9][0-9]*"\]' ||
  fail "delivered_total is not a positive count: $got"
sleep 3 # the feeder publishes on: rate() over scrapes has samples
r=$(query "$q2") || fail "query $q2 failed"
echo "$r" | grep -Eq '"resultType":"vector","result":\[\{"metric":\{\},"value":\[[0-9.]+,"[0-9.e+-]+"\]' ||
  fail "histogram_quantile query: $r"
up=$(query "up{job=\"shmbus\"}")
echo "$up" | grep -q '"value":\[[0-9.]*,"1"\]' || fail "the scrape target is not up: $up"
echo "1 passed, 0 failed"
