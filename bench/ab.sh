#!/usr/bin/env bash
# Compares two commits on one workload in one sitting: builds BASE and HEAD (release; cached per commit), runs
# the workload alternately — BASE, HEAD, BASE, HEAD… ROUNDS times each, the order swapped every round so neither
# always goes first — and prints every figure of every run, then per figure the median of each side and the
# ratio HEAD/BASE.
#
#   bench/ab.sh BASE HEAD WORKLOAD BACKEND [ROUNDS] [-- WORKLOAD ARGS…]
#   bench/ab.sh 850d2d6 main get sqlite 5
#   bench/ab.sh 850d2d6 HEAD send-fixed postgres 3 -- 500 10
#
# WORKLOAD and BACKEND are those of bench/workloads.sh (start, get, send, send-fixed, deliver, webhooks, ses;
# sqlite or postgres). The workload script is always this tree's, so both commits are driven the same way;
# only the binaries (and the examples of the webhooks and ses workloads) differ. Builds live under
# /var/cache/opensend/ab (a worktree per commit, one shared target directory, binaries copied out per
# commit), so a second comparison with the same commits starts at once. A ratio above 1 is HEAD higher: better
# for a rate, worse for a latency or a memory figure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${1:?BASE commit}
head=${2:?HEAD commit}
workload=${3:?workload}
backend=${4:?backend}
rounds=3
shift 4
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  rounds=$1
  shift
fi
[ "${1:-}" = "--" ] && shift
args=("$@")
cache=${OPENSEND_AB_DIR:-/var/cache/opensend/ab}
mkdir -p "$cache"

# Builds `commit` once: prints the directory holding its `opensend` binary and examples.
build() {
  local commit
  commit=$(git -C "$root" rev-parse --verify "$1^{commit}")
  local short=${commit:0:12}
  local out=$cache/bin-$short
  if [ ! -x "$out/opensend" ]; then
    local src=$cache/src-$short
    [ -d "$src" ] || git -C "$root" worktree add --detach -q "$src" "$commit" >&2
    echo "building $short (release)…" >&2
    (
      cd "$src"
      export CARGO_TARGET_DIR=$cache/target
      cargo build --release --locked --bin opensend --quiet >&2
      mkdir -p "$out.partial/examples"
      cp "$CARGO_TARGET_DIR/release/opensend" "$out.partial/"
      for example in webhook_throughput ses_ingest_throughput; do
        if [ -f "crates/server/examples/$example.rs" ]; then
          cargo build --release --locked -p opensend-server --example "$example" --quiet >&2
          cp "$CARGO_TARGET_DIR/release/examples/$example" "$out.partial/examples/"
        fi
      done
    )
    rm -rf "$out"
    mv "$out.partial" "$out"
  fi
  echo "$out"
}

base_dir=$(build "$base")
head_dir=$(build "$head")
base_name="$base ($(git -C "$root" rev-parse --short "$base"))"
head_name="$head ($(git -C "$root" rev-parse --short "$head"))"
results=$(mktemp)
trap 'rm -f "$results"' EXIT

run() {
  local side=$1 dir=$2 round=$3
  echo "== round $round: $side" >&2
  local out
  out=$(OPENSEND_BIN=$dir/opensend OPENSEND_EXAMPLES=$dir/examples \
    bash "$root/bench/workloads.sh" "$workload" "$backend" "${args[@]}" 2>&1) || {
    echo "$out" >&2
    echo "the $side run of round $round failed" >&2
    exit 1
  }
  echo "$out" | grep -v '^FIGURE' | sed 's/^/   /' >&2
  echo "$out" | awk -v side="$side" -v round="$round" '$1 == "FIGURE" {print side, round, $2, $3, $4}' >>"$results"
}

for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then
    run base "$base_dir" "$round"
    run head "$head_dir" "$round"
  else
    run head "$head_dir" "$round"
    run base "$base_dir" "$round"
  fi
done

echo
echo "workload: $workload on $backend ${args[*]:-}, $rounds rounds each, alternating; $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "base: $base_name    head: $head_name"
python3 - "$results" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(lambda: collections.defaultdict(list))
units = {}
for line in open(sys.argv[1]):
    side, _round, name, value, unit = line.split(maxsplit=4)
    runs[name][side].append(float(value))
    units[name] = unit.strip()
print(f"{'figure':<22} {'unit':<14} {'base runs':<32} {'head runs':<32} {'base':>10} {'head':>10} {'head/base':>9}")
for name, sides in runs.items():
    base, head = sides.get("base", []), sides.get("head", [])
    fmt = lambda xs: " ".join(f"{x:g}" for x in xs)
    mb = statistics.median(base) if base else float("nan")
    mh = statistics.median(head) if head else float("nan")
    ratio = f"{mh / mb:.2f}" if base and mb else "-"
    print(f"{name:<22} {units[name]:<14} {fmt(base):<32} {fmt(head):<32} {mb:>10g} {mh:>10g} {ratio:>9}")
PY
