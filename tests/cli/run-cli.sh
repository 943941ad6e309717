#!/usr/bin/env bash
# Runs popek once (or twice, see --compare-without-last) and checks what it did.
#
#   run-cli.sh --status N [CHECK...] -- POPEK [ARGS...]
#
# Checks:
#   --status N              exit status must be N
#   --stderr ERE            a line of stderr must match ERE (repeatable)
#   --no-stderr             stderr must be empty
#   --stdout FILE           stdout must equal FILE
#   --stdout-match ERE      a line of stdout must match ERE (repeatable)
#   --file PATH ERE         PATH (removed before the run) must then exist and
#                           have a line matching ERE, e.g. a -D trace file
#   --compare-without-last N
#                           also run the command without its last N arguments
#                           (the reference run); both must have the same status
#                           and the same stdout
#   --compare-column K      compare only the K-th whitespace-separated column of
#                           stdout (output that has timings in other columns)
#
# Always checked: popek must not crash (status >= 128 is a signal or a core
# dump), time out (POPEK_CLI_TIMEOUT seconds, default 30), or print
# "internal error" or a sanitizer report; with status 2 (bad command line or
# kernel file) stderr must be exactly one line, "popek: <the problem>".
# Exits 0 if every check passes, 1 otherwise, naming each failed check.
set -u

usage() {
    echo "usage: $0 --status N [CHECK...] -- POPEK [ARGS...]" >&2
    exit 2
}

want_status=
stderr_res=()
stdout_res=()
no_stderr=0
stdout_file=
files=()
file_res=()
compare_drop=0
compare_column=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case $1 in
    --status) [ $# -ge 2 ] || usage; want_status=$2; shift 2 ;;
    --stderr) [ $# -ge 2 ] || usage; stderr_res+=("$2"); shift 2 ;;
    --no-stderr) no_stderr=1; shift ;;
    --stdout) [ $# -ge 2 ] || usage; stdout_file=$2; shift 2 ;;
    --stdout-match) [ $# -ge 2 ] || usage; stdout_res+=("$2"); shift 2 ;;
    --file) [ $# -ge 3 ] || usage; files+=("$2"); file_res+=("$3"); shift 3 ;;
    --compare-without-last) [ $# -ge 2 ] || usage; compare_drop=$2; shift 2 ;;
    --compare-column) [ $# -ge 2 ] || usage; compare_column=$2; shift 2 ;;
    *) usage ;;
    esac
done
if [ $# -lt 2 ] || [ -z "$want_status" ]; then
    usage
fi
shift
[ "$compare_drop" -lt $# ] || usage

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-cli.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

failed=0
fail() {
    echo "run-cli: $*" >&2
    failed=1
}

# run NAME ARGS...: runs with stdin closed, stdout and stderr to $tmp/NAME.*,
# sets $status and checks what every run must satisfy.
run() {
    local name=$1
    shift
    timeout -k 5 "${POPEK_CLI_TIMEOUT:-30}" "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err"
    status=$?
    echo "run-cli: $name run: $* -> status $status" >&2
    sed 's/^/  stderr: /' "$tmp/$name.err" >&2
    if [ $status -eq 124 ]; then
        fail "$name run timed out after ${POPEK_CLI_TIMEOUT:-30} s"
    elif [ $status -ge 128 ]; then
        fail "$name run crashed: status $status (signal $((status - 128)))"
    fi
    if grep -Eq 'internal error|AddressSanitizer|LeakSanitizer|runtime error:' "$tmp/$name.err"; then
        fail "$name run: stderr reports a bug in popek"
    fi
}

# Stdout of a run, or only the column compared.
stdout_of() {
    if [ -n "$compare_column" ]; then
        awk -v k="$compare_column" '{ print $k }' "$tmp/$1.out"
    else
        cat "$tmp/$1.out"
    fi
}

for f in ${files[@]+"${files[@]}"}; do
    rm -f "$f"
done

run test "$@"
if [ "$status" -ne "$want_status" ]; then
    fail "exit status $status, expected $want_status"
fi
if [ "$status" -eq 2 ]; then
    lines=$(wc -l <"$tmp/test.err")
    if [ "$lines" -ne 1 ] || ! grep -q '^popek: ' "$tmp/test.err"; then
        fail "status 2 needs exactly one stderr line 'popek: ...', got $lines lines"
    fi
fi
for re in ${stderr_res[@]+"${stderr_res[@]}"}; do
    grep -Eq -- "$re" "$tmp/test.err" || fail "no stderr line matches: $re"
done
if [ $no_stderr -eq 1 ] && [ -s "$tmp/test.err" ]; then
    fail "stderr is not empty"
fi
if [ -n "$stdout_file" ] &&
    ! diff -u --label expected --label actual "$stdout_file" "$tmp/test.out" >&2; then
    fail "stdout differs from $stdout_file"
fi
for re in ${stdout_res[@]+"${stdout_res[@]}"}; do
    grep -Eq -- "$re" "$tmp/test.out" || fail "no stdout line matches: $re"
done
for i in ${files[@]+"${!files[@]}"}; do
    if [ ! -f "${files[$i]}" ]; then
        fail "${files[$i]} was not written"
    elif ! grep -Eq -- "${file_res[$i]}" "${files[$i]}"; then
        fail "no line of ${files[$i]} matches: ${file_res[$i]}"
    fi
done

if [ "$compare_drop" -gt 0 ]; then
    test_status=$status
    run reference "${@:1:$# - compare_drop}"
    if [ "$status" -ne "$test_status" ]; then
        fail "status $test_status differs from the reference run's $status"
    fi
    if ! diff -u --label reference --label test <(stdout_of reference) <(stdout_of test) >&2; then
        fail "stdout${compare_column:+ column $compare_column} differs from the reference run's"
    fi
fi
exit $failed
