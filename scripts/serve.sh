#!/usr/bin/env bash
# Set everything up, then serve a robot (the built-in fake one unless --config is given).
set -euo pipefail
cd "$(dirname "$0")/.."
PEERBOT_SKIP_CLIENTS=1 scripts/setup.sh
exec .venv/bin/peerbot serve "$@"
