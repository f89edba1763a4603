#!/usr/bin/env bash
# Builds the crates (the kext itself comes with the kext-build work).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
ensure_build_deps
cargo build --workspace
