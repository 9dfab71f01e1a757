#!/usr/bin/env bash
# Runs the cargo-fuzz targets of native/fuzz, each for a bounded time.
#
#   test/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]     (default: 60 s, every target)
#
# Installs cargo-fuzz (cargo install --locked) if it is missing. Stable Rust:
# the targets are built with `--sanitizer none` (cargo-fuzz's default,
# AddressSanitizer, needs `-Zsanitizer`, a nightly flag); libFuzzer's
# coverage instrumentation itself works on stable. The core crate has no
# unsafe code, and the targets' allocator aborts on any absurd allocation.
#
# Each target starts from its committed seeds (native/fuzz/corpus/<target>,
# crash reproducers included) and grows a working corpus in
# native/fuzz/work/<target> (not committed). A crash, a panic, an input
# running over 10 s or the process going over 2 GiB makes the script exit
# non-zero; the input is saved in native/fuzz/artifacts/<target>/.
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET [TARGET...]]" >&2
    exit 2
fi
shift $(($# > 0 ? 1 : 0))

cd "$(dirname "$0")/.."
fuzz_dir=native/fuzz
all_targets=(registration conversation etf records riak_reply riak_nodes render rotation)
targets=("${@:-${all_targets[@]}}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

flags=(--fuzz-dir "$fuzz_dir" --sanitizer none)
cargo fuzz build "${flags[@]}"

failed=()
for target in "${targets[@]}"; do
    seeds=$fuzz_dir/corpus/$target
    work=$fuzz_dir/work/$target
    log=$fuzz_dir/work/$target.log
    if [[ ! -d $seeds ]]; then
        echo "unknown target: $target (targets: ${all_targets[*]})" >&2
        exit 2
    fi
    mkdir -p "$work"
    # The registration body limit is 8192 bytes: go past it.
    max_len=4096
    [[ $target == registration ]] && max_len=9000
    if cargo fuzz run "${flags[@]}" "$target" "$work" "$seeds" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -max_len="$max_len" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        corpus=$(find "$work" -type f | wc -l)
        echo "fuzz $target: ok, ${runs:-?} executions in ${seconds} s, working corpus $corpus inputs"
    else
        echo "fuzz $target: FAILED (log: $log)"
        tail -n 40 "$log"
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}; reproducers in $fuzz_dir/artifacts/" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds} s each without a crash"
