#!/usr/bin/env bash
# Install everything peerbot and its tests need, idempotently, from the repo's own files:
# Debian packages, the project venv (.venv) and the real-client venv (.venv-viam, kept apart
# because viam-sdk pins its own protobuf and registers the same proto names as we do).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Debian packages the tests use (real peers and services, never downloaded by a tool itself).
APT_PACKAGES=()
# Browser tests (tests/browser/): Debian's Chromium, driven by playwright via executable_path.
[ "${PEERBOT_SKIP_CLIENTS:-0}" = 1 ] || APT_PACKAGES+=(chromium)
# Distributed signalling and NAT traversal tests: a real redis-server, coturn as the TURN relay,
# iptables for the NAT namespaces (tests start them themselves; the packages' services stay off).
[ "${PEERBOT_SKIP_CLIENTS:-0}" = 1 ] || APT_PACKAGES+=(redis-server coturn iptables)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp() { cat "$@" | sha256sum | cut -c1-16; }

want=$(stamp pyproject.toml)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.peerbot-stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: project venv (.venv)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > .venv/.peerbot-stamp
fi

want=$(stamp tests/clients/viam-requirements.txt)
if [ "${PEERBOT_SKIP_CLIENTS:-0}" != 1 ] && \
   { [ ! -x .venv-viam/bin/python ] || [ "$(cat .venv-viam/.peerbot-stamp 2>/dev/null)" != "$want" ]; }; then
  echo "setup: viam-sdk client venv (.venv-viam)"
  [ -x .venv-viam/bin/python ] || "$PY" -m venv .venv-viam
  .venv-viam/bin/python -m pip install -q --upgrade pip
  .venv-viam/bin/python -m pip install -q -r tests/clients/viam-requirements.txt
  echo "$want" > .venv-viam/.peerbot-stamp
fi

# Browser code (web/client/): @viamrobotics/sdk + esbuild from the committed lock file, bundled
# into web/static/ (git-ignored): the control panel served at / and the browser tests' harness.
want=$(stamp web/client/package.json web/client/package-lock.json)
if [ ! -d web/client/node_modules ] || [ "$(cat web/client/node_modules/.peerbot-stamp 2>/dev/null)" != "$want" ]; then
  command -v npm >/dev/null || { echo "setup: npm (Node.js >= 18) is needed for web/client" >&2; exit 1; }
  echo "setup: npm ci (web/client)"
  (cd web/client && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > web/client/node_modules/.peerbot-stamp
fi
(cd web/client && npm run --silent build)

# Browser-test driver (Python playwright, no browser download) in the project venv.
want=$(stamp tests/browser/requirements.txt)
if [ "${PEERBOT_SKIP_CLIENTS:-0}" != 1 ] && [ "$(cat .venv/.peerbot-browser-stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: playwright (tests/browser/requirements.txt) into .venv"
  .venv/bin/python -m pip install -q -r tests/browser/requirements.txt
  echo "$want" > .venv/.peerbot-browser-stamp
fi
