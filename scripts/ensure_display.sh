#!/usr/bin/env bash
# Make sure headless windows work: Xvfb (virtual X server) and Mesa's OpenGL (llvmpipe), which
# `neumat view --headless` and tests/test_viewer*.py use. Installs via apt when missing and root
# (or password-less sudo); otherwise prints the command. Never fails the build.
set -euo pipefail

packages="xvfb libgl1-mesa-dri libgl1 libegl1"
missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if command -v Xvfb >/dev/null 2>&1 && [ -z "$missing" ]; then
  echo "display: Xvfb and Mesa GL found"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "display: missing${missing:- Xvfb} and no apt-get: install Xvfb and Mesa's OpenGL (llvmpipe) yourself" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; else
    echo "display: not root, skipping. As root run:" >&2
    echo "  apt-get update && apt-get install -y$missing" >&2
    exit 0
  fi
fi
echo "display: installing$missing ..."
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
echo "display: Xvfb at $(command -v Xvfb)"
