#!/usr/bin/env bash
# The PR gate's steps, shared by .github/workflows/bench.yml and tests/test_pr_gate.py.
#
# The base (trusted: the workflow, this script, the comparison) runs as the runner's user; the head
# (the pull request's code: its `make setup`, every one of its runs) runs as an unprivileged PR user
# through .github/scripts/pr_sandbox.sh, with a fresh environment and its own home and caches. The
# head can write only its own folder (JOB/pr) and the folder its runs' result files go to
# (JOB/out/head/runs, sticky and world-writable like /tmp); the comparison is computed by the base's
# code from the head's result files, read as data.
#
#   pr_gate.sh prepare JOB                   folders and their owners and modes; the PR user's folder
#   pr_gate.sh head-setup JOB HEAD [CMD...]  copy the head's checkout (no .git) into JOB/pr/src as the PR
#                                            user, then run CMD there in the sandbox (default: make setup)
#   pr_gate.sh base-warm JOB BASE            build the base's model cache before the snapshot
#   pr_gate.sh snapshot JOB BASE [PATH...]   hash the base's checkout + environment, caches and PATHs;
#                                            refuse if the PR user can write any of them
#   pr_gate.sh bench JOB BASE SUITE [AB...]  `effbench ab` with the base's code; head runs wrapped
#   pr_gate.sh verify JOB                    reap the PR user's processes; the hashes and the
#                                            writability probe again; exit 5 on any difference
#   pr_gate.sh report JOB BASE               the base's pr_report: JOB/comment/comment.md, exit status;
#                                            the compare page's site: JOB/comment/site/compare.html
#   pr_gate.sh cleanup JOB                   remove JOB, the PR user's files included
#
# Environment: PR_USER (default effbench-pr); PR_AS, the command prefix that runs a command as the PR
# user (default "sudo -n -u $PR_USER --"; the test, as root, uses setpriv); BASE_CACHE (default
# JOB/base/cache: the base's EFFBENCH_CACHE, HF_HOME, ... live under it); EFFBENCH_SITE_URL (report:
# where JOB/comment/site will be published; the comment then links its compare.html).
#
# Exit status: 0 done; 1 (report) a regression; 2 bad use or a misconfigured gate, or (report) bad
# input to the comparison (nothing matched included); 3 (report) inconclusive: no regression, but a
# judged metric neither shows a change nor rules one out (the comment says how many replicates would
# decide it); 4 (head-setup, bench) the head's environment cannot be imported as the PR user: a setup
# error of the gate, raised before any run starts, never a verdict on the head; 5 (verify) the
# base's files changed. report passes on effbench.render.pr_report's own status (0, 1, 2, 3).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PR_USER=${PR_USER:-effbench-pr}
read -r -a AS <<< "${PR_AS:-sudo -n -u $PR_USER --}"
PASS="CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES OMP_NUM_THREADS MKL_NUM_THREADS OPENBLAS_NUM_THREADS VECLIB_MAXIMUM_THREADS NUMEXPR_NUM_THREADS"

die() { echo "pr_gate: $1" >&2; exit "${2:-2}"; }  # MESSAGE [STATUS]
say() { echo "pr_gate: $*" >&2; }
as_pr() { "${AS[@]}" "$@"; }
sandbox() { as_pr "$JOB/bin/pr_sandbox.sh" run "$JOB/pr" -- "$@"; }
base_cache() { echo "${BASE_CACHE:-$JOB/base/cache}"; }

# The base's processes: their own caches and temporary files, no bytecode written into the checkout,
# no opportunistic git index refresh (the checkout is hashed before and after).
base_env() {
    local c; c=$(base_cache)
    export EFFBENCH_CACHE="$c/effbench" HF_HOME="$c/huggingface" XDG_CACHE_HOME="$c" TRITON_CACHE_DIR="$c/triton" \
        TORCHINDUCTOR_CACHE_DIR="$c/inductor" MPLCONFIGDIR="$JOB/base/tmp/mpl" TMPDIR="$JOB/base/tmp" \
        PYTHONPYCACHEPREFIX="$JOB/base/pycache" PYTHONNOUSERSITE=1 GIT_OPTIONAL_LOCKS=0
}

# One line per entry: type, mode, owner, path, and the SHA-256 of a file or the target of a link.
manifest() {
    local p
    for p in "$@"; do
        [ -e "$p" ] || { echo "missing $p"; continue; }
        find "$p" -printf '%y %m %u %p %l\n'
        find "$p" -type f -print0 | xargs -0 -r sha256sum
    done | LC_ALL=C sort
}

# What the PR user can write under the protected paths (nothing, or the gate is misconfigured).
writable_by_pr() {
    as_pr find "$@" -path "$JOB/out/head/runs" -prune -o -writable -print 2>/dev/null || true
}

protected() { cat "$JOB/state/protected"; }

check_pr_user() {
    local uid; uid=$(as_pr id -u) || die "cannot run a command as the PR user with PR_AS='${AS[*]}'"
    [ "$uid" != 0 ] || die "PR_AS runs commands as root; it must switch to an unprivileged user"
    [ "$uid" != "$(id -u)" ] || die "PR_AS runs commands as this same user (uid $uid); the head would have the base's rights"
}

# The head's interpreter must import torch and its own effbench as the PR user, from a folder that is
# not the checkout (as its runs do). If it cannot (typically: its environment, or packages a .pth
# file points at, lie under a folder the PR user cannot enter, such as a 0700 home or mktemp -d),
# every head run would fail at once and read as the head being broken or slow: stop here instead,
# naming the first folder on each needed path that the PR user cannot enter, and its mode.
check_head_env() {
    local py="$JOB/pr/src/.venv/bin/python" err
    err=$(sandbox sh -c 'cd "$0" && "$1" -c "import torch, effbench.child" 2>&1 >/dev/null' "$JOB/pr/tmp" "$py") && return 0
    say "the head's environment cannot be imported as $(as_pr id -un): $(printf '%s\n' "$err" | tail -n 1)"
    # as the PR user: the interpreter, its venv's home, and every folder its .pth files name
    as_pr sh -c '
        py=$1; venv=${py%/bin/python}
        { readlink -f "$py" || echo "$py"; sed -n "s/^home *= *//p" "$venv/pyvenv.cfg"
          cat "$venv"/lib/python*/site-packages/*.pth | grep "^/"; } 2>/dev/null |
        while read -r p; do
            (a=""; IFS=/; set -f
             for part in $p; do
                 [ -n "$part" ] || continue
                 a="$a/$part"
                 if [ -d "$a" ] && ! [ -x "$a" ]; then
                     echo "  $a (mode $(stat -c %a "$a"), owner $(stat -c %U "$a")) cannot be entered by $(id -un); needed for $p"
                     break
                 fi
             done)
        done | sort -u' sh "$py" >&2 || true
    die "stopped before any run: build the head's environment inside the job folder, or give every folder above it o+x" 4
}

cmd=${1:-}; JOB=${2:-}
[ -n "$cmd" ] && [ -n "$JOB" ] || die "usage: pr_gate.sh prepare|head-setup|base-warm|snapshot|bench|verify|report|cleanup JOB ..."
shift 2
JOB=$(realpath -m "$JOB")
case "$cmd" in
prepare)
    check_pr_user
    [ ! -e "$JOB" ] || die "$JOB exists; use a fresh folder per job"
    umask 022
    mkdir -p "$(dirname "$JOB")"
    mkdir -m 711 "$JOB"
    mkdir -m 755 "$JOB/bin" "$JOB/base"
    mkdir -m 700 "$JOB/state" "$JOB/comment" "$JOB/base/tmp" "$JOB/base/pycache"
    mkdir -p -m 700 "$(base_cache)"
    mkdir -m 711 "$JOB/out"
    mkdir -m 700 "$JOB/out/base"
    mkdir -m 755 "$JOB/out/head"
    mkdir -m 1777 "$JOB/out/head/runs" "$JOB/pr"   # sticky: the PR user cannot remove the runner's files
    install -m 755 "$HERE/pr_sandbox.sh" "$JOB/bin/pr_sandbox.sh"
    as_pr mkdir -m 700 "$JOB/pr/home" "$JOB/pr/tmp" "$JOB/pr/cache"
    as_pr mkdir -m 755 "$JOB/pr/src"  # the runner's `effbench ab` must see src/.venv/bin/python (it never runs it)
    say "prepared $JOB (head runs as $(as_pr id -un))"
    ;;
head-setup)
    head=${1:?head-setup JOB HEAD [CMD...]}; shift
    [ $# -gt 0 ] || set -- make setup
    # tar stores links as links: nothing in the head's tree is followed or run by the runner's user
    tar -C "$head" --exclude=./.git -cf - . | as_pr tar -C "$JOB/pr/src" -xf - --no-same-owner
    sandbox sh -c 'cd "$0" && exec "$@"' "$JOB/pr/src" "$@"
    check_head_env
    ;;
base-warm)
    base=$(cd "${1:?base-warm JOB BASE}" && pwd); base_env
    cd "$JOB/state"  # never a folder with importable names: `python -m`/`-c` put the working directory first on sys.path
    "$base/.venv/bin/python" -c "from effbench import models; print(models.smollm2_checkpoint())"
    ;;
snapshot)
    base=${1:?snapshot JOB BASE [PATH...]}; shift
    printf '%s\n' "$(cd "$base" && pwd)" "$(base_cache)" "$JOB/bin" "$@" > "$JOB/state/protected"
    mapfile -t paths < "$JOB/state/protected"
    w=$(writable_by_pr "${paths[@]}" "$JOB/out" "$JOB/base" "$JOB/state" "$JOB/comment")
    [ -z "$w" ] || die "the PR user can write these protected paths (fix owners/modes first):
$w"
    manifest "${paths[@]}" > "$JOB/state/before"
    say "snapshot of $(wc -l < "$JOB/state/before") entries under ${paths[*]}"
    ;;
bench)
    base=$(cd "${1:?bench JOB BASE SUITE [AB ARGS...]}" && pwd); suite=$(realpath -e "${2:?bench JOB BASE SUITE}" 2>/dev/null || echo "$2"); shift 2
    [ -s "$JOB/state/before" ] || die "no snapshot: run 'pr_gate.sh snapshot' before the head's code runs"
    check_head_env
    base_env
    pass=()
    for v in $PASS; do [ -z "${!v:-}" ] || pass+=("$v=${!v}"); done
    wrap=$(printf '%q ' "${AS[@]}" "$JOB/bin/pr_sandbox.sh" run "$JOB/pr" "${pass[@]}" --)
    set +e
    cd "$JOB/state"
    "$base/.venv/bin/python" -m effbench.cli ab "$base" "$JOB/pr/src" --suite "$suite" --out "$JOB/out" \
        --wrap "head=$wrap" "$@"
    rc=$?
    set -e
    as_pr "$JOB/bin/pr_sandbox.sh" reap "$JOB/pr"
    echo "$rc" > "$JOB/state/ab.rc"
    say "effbench ab exited $rc"
    ;;
verify)
    as_pr "$JOB/bin/pr_sandbox.sh" reap "$JOB/pr"
    mapfile -t paths < "$JOB/state/protected"
    manifest "${paths[@]}" > "$JOB/state/after"
    c=$(base_cache)
    # changed or removed entries fail; new ones only under the base's cache (e.g. the lm-eval task
    # files its runs write), and only when the PR user cannot write them
    gone=$(LC_ALL=C comm -23 "$JOB/state/before" "$JOB/state/after")
    new=$(LC_ALL=C comm -13 "$JOB/state/before" "$JOB/state/after" | grep -v -F " $c/" | grep -v -F "  $c/" || true)
    w=$(writable_by_pr "${paths[@]}" "$JOB/out" "$JOB/base" "$JOB/state" "$JOB/comment")
    owned=$(find "${paths[@]}" "$JOB/out" "$JOB/base" -path "$JOB/out/head/runs" -prune -o -user "$(as_pr id -u)" -print 2>/dev/null || true)
    if [ -n "$gone$new$w$owned" ]; then
        die "the base's protected files changed while the head ran:
${gone:+changed or removed (before):
$gone
}${new:+added or changed (after):
$new
}${w:+writable by the PR user:
$w
}${owned:+owned by the PR user:
$owned}" 5
    fi
    say "verified: $(wc -l < "$JOB/state/after") entries unchanged, none writable by the PR user"
    ;;
report)
    base=$(cd "${1:?report JOB BASE}" && pwd); base_env
    set +e
    cd "$JOB/state"
    "$base/.venv/bin/python" -m effbench.render.pr_report "$JOB/out/base" "$JOB/out/head" --comment "$JOB/comment/comment.md"
    rc=$?
    # The compare page (the comment links it where EFFBENCH_SITE_URL says the folder is published):
    # built from copies of the two results.json the base's code wrote, never from out/head/runs,
    # the PR user's folder, where a planted results.json or link would otherwise join the site.
    # A site that cannot be built leaves the verdict as it is.
    rm -rf "$JOB/state/site-sets" "$JOB/comment/site"
    mkdir -p "$JOB/state/site-sets/base" "$JOB/state/site-sets/head"
    for side in base head; do
        f="$JOB/out/$side/results.json"
        [ -f "$f" ] && [ ! -L "$f" ] && cp "$f" "$JOB/state/site-sets/$side/results.json"
    done
    "$base/.venv/bin/python" -m effbench.cli site "$JOB/state/site-sets" --out "$JOB/comment/site" \
        --compare "$JOB/state/site-sets/base" "$JOB/state/site-sets/head" >&2 || say "no compare page: effbench site failed"
    set -e
    echo "$rc" > "$JOB/comment/status"
    exit "$rc"
    ;;
cleanup)
    [ -d "$JOB" ] || exit 0
    as_pr "$JOB/bin/pr_sandbox.sh" reap "$JOB/pr" || true
    as_pr find "$JOB/pr" "$JOB/out/head/runs" -mindepth 1 -user "$(as_pr id -u)" -delete 2>/dev/null || true
    rm -rf "$JOB"
    ;;
*)
    die "unknown step '$cmd'; valid: prepare head-setup base-warm snapshot bench verify report cleanup"
    ;;
esac
