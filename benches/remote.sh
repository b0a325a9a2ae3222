#!/usr/bin/env bash
# Remote cache benchmark: `pipe push` / `pipe pull` against a loopback S3 server (moto,
# started by .ci/moto.sh), side by side with `dvc push` / `dvc pull` of the same bytes
# to the same server, full and no-op, for two caches:
#   - the cache of pipelines/transfer.yaml (its ~35 entries; computed first if missing,
#     about 2 minutes),
#   - a cache of 300 entries made by a pipeline of 300 small `cmd` stages (64 KiB each).
# Usage: benches/remote.sh [ROUNDS]   (medians of ROUNDS runs, default 3)
# DVC is installed into a virtualenv under $BENCH_STATE when missing (PyPI `dvc[s3]`);
# set NO_DVC=1 to measure pipe alone. Needs python3 and a release build of pipe.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
W=${BENCH_STATE:-/tmp/pipe-bench-remote}
PIPE=$PWD/target/release/pipe
mkdir -p "$W"
[ -x "$PIPE" ] || cargo build --release
ENVF="$W/s3.env"
MOTO_PY=${MOTO_STATE:-/tmp/pipe-ci-moto}/venv/bin/python
trap 'bash .ci/moto.sh stop' EXIT
bash .ci/moto.sh start "$ENVF" >/dev/null
. "$ENVF"
if [ -z "${NO_DVC:-}" ] && [ ! -x "$W/dvc/bin/dvc" ]; then
  python3 -m venv "$W/dvc" && "$W/dvc/bin/pip" install -q 'dvc[s3]' >/dev/null
fi

now() { date +%s.%N; }
# median of the ROUNDS timings of a command run in a folder: time_of DIR SETUP CMD...
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_of() {
  local dir=$1 setup=$2; shift 2
  for _ in $(seq "$ROUNDS"); do
    (cd "$dir" && eval "$setup") >/dev/null 2>&1
    local t0 t1
    t0=$(now)
    (cd "$dir" && "$@") >/dev/null 2>&1
    t1=$(now)
    echo "$t1 - $t0" | bc -l
  done | median | awk '{printf "%.3f", $1}'
}

# The two caches.
T=$W/transfer
mkdir -p "$T"
cp pipelines/transfer.yaml "$T/"
[ -d "$T/cache/entries" ] || (cd "$T" && "$PIPE" run transfer.yaml >/dev/null)
M=$W/many
mkdir -p "$M"
cat >"$M/many.yaml" <<'YAML'
stages:
  item:
    matrix: {i: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29], j: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}
    cmd: {run: "yes item-${i}-${j} | head -c 65536 > item_${i}_${j}.bin", outs: ["item_${i}_${j}.bin"]}
YAML
[ -d "$M/cache/entries" ] || (cd "$M" && "$PIPE" run many.yaml >/dev/null)

row() { printf '%-28s %10s %10s\n' "$@"; }
bench() {
  local name=$1 dir=$2 file=$3
  local entries objects bytes
  entries=$(find "$dir/cache/entries" -name '*.json' | wc -l)
  objects=$(find "$dir/cache/objects" -type f | wc -l)
  bytes=$(du -sb "$dir/cache/objects" | cut -f1)
  echo
  echo "== $name: $entries entries, $objects objects, $bytes bytes (seconds, median of $ROUNDS)"
  row "" pipe dvc
  local R="s3://$PIPE_S3_BUCKET/pipe-$name?endpoint=$PIPE_S3"
  # pipe: full push to an empty prefix, no-op push, full pull into an empty cache,
  # no-op pull.
  local rm_remote="$MOTO_PY -c \"import boto3,os; b=boto3.resource('s3',endpoint_url=os.environ['PIPE_S3']).Bucket(os.environ['PIPE_S3_BUCKET']); b.objects.filter(Prefix='pipe-$name/').delete()\""
  local p_push p_noop p_pull p_pull_noop
  p_push=$(time_of "$dir" "$rm_remote" "$PIPE" push "$file" --remote "$R")
  p_noop=$(time_of "$dir" true "$PIPE" push "$file" --remote "$R")
  local B=$W/$name-b
  mkdir -p "$B" && cp "$dir/$file" "$B/"
  p_pull=$(time_of "$B" "rm -rf cache" "$PIPE" pull "$file" --remote "$R")
  p_pull_noop=$(time_of "$B" true "$PIPE" pull "$file" --remote "$R")
  local d_push=- d_noop=- d_pull=- d_pull_noop=-
  if [ -x "$W/dvc/bin/dvc" ]; then
    # The same bytes as files of a DVC-tracked folder, pushed to the same server.
    local D=$W/$name-dvc DVC=$W/dvc/bin/dvc
    rm -rf "$D" && mkdir -p "$D/data" && cd "$D" && git init -q && "$DVC" init -q
    find "$dir/cache/objects" -type f -exec cp {} "$D/data/" \;
    "$DVC" add -q data
    "$DVC" remote add -q -d s3 "s3://$PIPE_S3_BUCKET/dvc-$name"
    "$DVC" remote modify -q s3 endpointurl "$PIPE_S3"
    cd - >/dev/null
    local rm_dvc="$MOTO_PY -c \"import boto3,os; b=boto3.resource('s3',endpoint_url=os.environ['PIPE_S3']).Bucket(os.environ['PIPE_S3_BUCKET']); b.objects.filter(Prefix='dvc-$name/').delete()\""
    d_push=$(time_of "$D" "$rm_dvc" "$DVC" push -q)
    d_noop=$(time_of "$D" true "$DVC" push -q)
    d_pull=$(time_of "$D" "rm -rf data .dvc/cache" "$DVC" pull -q)
    d_pull_noop=$(time_of "$D" true "$DVC" pull -q)
  fi
  row "push" "$p_push" "$d_push"
  row "push, nothing to send" "$p_noop" "$d_noop"
  row "pull into an empty cache" "$p_pull" "$d_pull"
  row "pull, everything here" "$p_pull_noop" "$d_pull_noop"
}

bench transfer "$T" transfer.yaml
bench many "$M" many.yaml
