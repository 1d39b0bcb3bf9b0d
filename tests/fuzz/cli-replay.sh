#!/bin/sh
# Files that crash or hang the HDF5 library itself (found by the fuzzers; no reader check can
# stop them in-process): through the CLI, which reads model files in a child first, each must
# end with exit status 1 and a line naming the file. TAP. Usage: cli-replay.sh CLI FILE...
cli=$1
shift
echo "1..$#"
i=0
for f in "$@"; do
  i=$((i + 1))
  err=$(timeout 120 "$cli" info "$f" 2>&1 >/dev/null)
  status=$?
  if [ $status -eq 1 ] && printf '%s\n' "$err" | grep -q "^prunescope-cli: $f: "; then
    echo "ok $i - $(basename "$f"): $(printf '%s\n' "$err" | grep "^prunescope-cli: " | head -1)"
  else
    echo "not ok $i - $(basename "$f"): exit $status"
    printf '%s\n' "$err" | sed 's/^/# /'
  fi
done
