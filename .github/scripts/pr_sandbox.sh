#!/usr/bin/env bash
# The head's side of the PR gate: runs as the unprivileged PR user (started through sudo/setpriv by
# .github/scripts/pr_gate.sh, and through `effbench ab --wrap head=...` for each head run).
#
#   pr_sandbox.sh run DIR [NAME=VALUE ...] -- CMD ARGS...   run CMD with a fresh environment whose
#       home, temp, caches (EFFBENCH_CACHE, HF_HOME, pip) all lie under DIR (the PR user's own folder),
#       then kill every process the PR user has left behind (daemons that would otherwise slow the
#       base's next run or keep writing). NAME must be one of PASS (device and thread settings).
#   pr_sandbox.sh reap DIR   kill every process of the PR user, repeating until none is left.
#
# Refuses to run as root, or as a user who does not own DIR/home (a misconfigured wrap would
# otherwise run the head with the runner's rights, and `kill -1` would hit the runner's processes).
set -uo pipefail
PASS="CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES OMP_NUM_THREADS MKL_NUM_THREADS OPENBLAS_NUM_THREADS VECLIB_MAXIMUM_THREADS NUMEXPR_NUM_THREADS"

die() { echo "pr_sandbox: $*" >&2; exit 97; }

guard() {  # DIR
    [ "$(id -u)" != 0 ] || die "refusing to run as root (the wrap must switch to the unprivileged PR user)"
    [ -d "$1/home" ] && [ -O "$1/home" ] || die "$1/home is missing or not owned by $(id -un) (uid $(id -u)): not the PR user?"
}

reap() {  # DIR: kill(-1) signals every process this user may signal except the caller itself
    local uid i left="$1/tmp/.reap.$$"
    uid=$(id -u)
    for i in $(seq 1 100); do
        kill -KILL -1 2>/dev/null
        pgrep -U "$uid" -r D,R,S,T,t,W,I,P > "$left"  # zombies left out: they run nothing
        grep -q -v -x "$$" "$left" || { rm -f "$left"; return 0; }
        sleep 0.05
    done
    die "processes of $(id -un) still run after 100 rounds of kill -KILL -1: $(tr '\n' ' ' < "$left")"
}

mode=${1:-}; dir=${2:-}
[ -n "$mode" ] && [ -n "$dir" ] || die "usage: pr_sandbox.sh run DIR [NAME=VALUE ...] -- CMD... | pr_sandbox.sh reap DIR"
shift 2
guard "$dir"
case "$mode" in
    reap) reap "$dir"; exit 0 ;;
    run) ;;
    *) die "unknown mode '$mode'; valid: run, reap" ;;
esac

envs=(HOME="$dir/home" TMPDIR="$dir/tmp" XDG_CACHE_HOME="$dir/cache" EFFBENCH_CACHE="$dir/cache/effbench"
      HF_HOME="$dir/cache/huggingface" PIP_CACHE_DIR="${PIP_CACHE_DIR_PR:-$dir/cache/pip}" PYTHONNOUSERSITE=1
      PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 USER="$(id -un)" LOGNAME="$(id -un)")
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    name=${1%%=*}
    [[ "$1" == *=* ]] && [[ " $PASS " == *" $name "* ]] || die "'$1': expected NAME=VALUE with NAME one of: $PASS"
    envs+=("$1"); shift
done
[ "${1:-}" = "--" ] && [ $# -gt 1 ] || die "no command after --"
shift
umask 022  # result files must stay readable by the runner user, which gathers them
env -i "${envs[@]}" "$@"
rc=$?
reap "$dir"
exit $rc
