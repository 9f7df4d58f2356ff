#!/usr/bin/env bash
# Distributed exploration (issue 14): states/s and bytes per state of
# `pinlab check --cluster` with 1, 2 and 4 local ranks, side by side with the
# one-process BFS, on one scaled cell. Each rank runs under /usr/bin/time so its
# own peak RSS is known; bytes/state = the ranks' summed peak RSS / states.
#
#   benches/cluster.sh [FAMILY VALUES... -- POLICY]   default: rdma-pagecache-truncate 1 5 -- legacy
#
# Prints a Markdown table (docs/PERFORMANCE.md quotes it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
BIN=target/release/pinlab
if [ $# -gt 0 ]; then
    POLICY=${*: -1}
    SPEC=("$@"); SPEC=("${SPEC[@]:0:$(($# - 2))}")
else
    SPEC=(rdma-pagecache-truncate 1 5); POLICY=legacy
fi
WORK=$(mktemp -d /tmp/pinlab-cluster-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$BIN" scale "${SPEC[@]}" > "$WORK/cell.scn"
NAME=$(sed -n 's/^scenario //p' "$WORK/cell.scn")

states() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cells"][0]["states"])' "$1"; }

echo "| cell | ranks | states | time | states/s | peak RSS per rank | bytes/state (all ranks) |"
echo "|---|---|---|---|---|---|---|"
# One process, one BFS thread: the reference.
/usr/bin/time -f "%e %M" -o "$WORK/t.single" "$BIN" check -s "$WORK/cell.scn" -p "$POLICY" --threads 1 --json --max-memory none > "$WORK/single.json" 2>/dev/null || true
read -r secs kb < "$WORK/t.single"
n=$(states "$WORK/single.json")
echo "| $NAME / $POLICY | 1 process (no cluster) | $n | ${secs} s | $(python3 -c "print(f'{$n/$secs/1000:.0f} k')") | $((kb / 1024)) MiB | $(python3 -c "print(round($kb*1024/$n))") |"
for ranks in 1 2 4; do
    : > "$WORK/hosts"
    for r in $(seq 0 $((ranks - 1))); do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        echo "127.0.0.1:$port" >> "$WORK/hosts"
    done
    pids=()
    start=$(date +%s.%N)
    for r in $(seq 0 $((ranks - 1))); do
        /usr/bin/time -f "%e %M" -o "$WORK/t.$r" "$BIN" check -s "$WORK/cell.scn" -p "$POLICY" --json --max-memory none \
            --cluster "$WORK/hosts" --rank "$r" > "$WORK/out.$r.json" 2>"$WORK/err.$r" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    end=$(date +%s.%N)
    cmp -s <(python3 -m json.tool "$WORK/single.json") <(python3 -m json.tool "$WORK/out.0.json") \
        || { echo "ranks=$ranks: result differs from one process" >&2; cat "$WORK"/err.* >&2; exit 1; }
    secs=$(python3 -c "print(f'{$end-$start:.1f}')")
    rss=(); total=0
    for r in $(seq 0 $((ranks - 1))); do
        read -r _ kb < "$WORK/t.$r"; rss+=("$((kb / 1024))"); total=$((total + kb))
    done
    echo "| $NAME / $POLICY | $ranks | $n | ${secs} s | $(python3 -c "print(f'{$n/$secs/1000:.0f} k')") | $(IFS=/; echo "${rss[*]}") MiB | $(python3 -c "print(round($total*1024/$n))") |"
done
