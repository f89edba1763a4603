#!/usr/bin/env bash
# The mutation check as a suite of scripts/test.sh: each classic bug of the seed driver (the
# lost wakeup of unlock-then-msleep(NULL mutex), and the ifnet released before its `detached`
# callback), put back into a copy of the tree, must make the tests fail. See
# scripts/mutation-check.sh; measured at 15 s with target/mutation warm and 40 s cold (2
# cores), so it fits the time budget of scripts/test.sh.
#
# Prints one PASS/FAIL/SKIP line per check and closes with "N passed, N failed[, N skipped]".
set -u
exec bash "$(cd "$(dirname "$0")/../.." && pwd)/scripts/mutation-check.sh"
