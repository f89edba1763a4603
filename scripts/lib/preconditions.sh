# shellcheck shell=bash
# Test groups that need something this machine may not have, for scripts/test.sh.
#
# A test never decides on its own to pass without running. Each group below names a
# precondition, the nextest filter expression that selects the group's tests, and a probe
# that checks the precondition the way the tests themselves do. scripts/test.sh probes every
# group once; for a group whose precondition is not met it leaves the group out of the
# nextest run (nextest then counts those tests as skipped) and prints
# "SKIP <group> (<n> tests): <reason>". Run directly (cargo nextest run ...) without the
# precondition, a test of the group fails with a message naming it.
#
# Conventions that put a test in a group:
#   fuse            every test of tests/tunnel-sim/tests/fuse_file.rs (mounts the simulated
#                   /dev/tunN, or /dev/tapN, as FUSE files): root, and /dev/fuse opening
#                   read-write
#   apple-exports   kext-bundle tests inside a module named `needs_apple_exports` (they call
#                   common::exports_dir()): Apple's KPI export lists in ../shared/xnu-exports
# A new group: add its name to PRECONDITION_GROUPS, a filter_<name> and a why_not_<name>
# (dashes become underscores in the function names).
#
# (The script suites in tests/suites/ check their own preconditions and print their own SKIP
# lines, e.g. tests/suites/traffic.sh for root and network namespaces.)

# shellcheck disable=SC2034 # read by scripts/test.sh
PRECONDITION_GROUPS=(fuse apple-exports)

filter_fuse() { echo 'binary_id(tunnel-sim::fuse_file)'; }

# why_not_fuse: what tests/tunnel-sim/tests/fuse_file.rs `mount` checks (root, then
# fusedev::available: /dev/fuse opens read-write); prints the reason, or nothing.
why_not_fuse() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "not root (mounting FUSE needs root)"
    elif [ ! -c /dev/fuse ]; then
        echo "/dev/fuse is missing"
    elif ! { : <>/dev/fuse; } 2>/dev/null; then
        echo "/dev/fuse does not open read-write"
    fi
}

filter_apple_exports() { echo 'package(kext-bundle) & test(/^needs_apple_exports::/)'; }

# why_not_apple_exports: what kext-bundle/tests/common exports_dir checks.
why_not_apple_exports() {
    local dir
    dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/../shared/xnu-exports
    [ -d "$dir" ] || echo "$(realpath -m "$dir") not found (Apple's KPI export lists)"
}

# precondition_filter GROUP / precondition_why_not GROUP: the group's filter expression; why
# its precondition is not met (nothing when it is).
precondition_filter() { "filter_${1//-/_}"; }
precondition_why_not() { "why_not_${1//-/_}"; }
