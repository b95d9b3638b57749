#!/usr/bin/env bash
# Make sure Mitsuba's vectorized CPU variant (llvm_ad_rgb) can run: it JIT-compiles through
# libLLVM, and Debian 12's default LLVM 15 aborts on its first kernel ("Cannot select:
# f32 = fminimum"); LLVM >= 16 works. `neumat fidelity` uses it to evaluate Mitsuba at exactly
# neumat's sub-pixel rays (and falls back to Mitsuba's own image render without it).
# Installs libllvm19 via apt when missing and root (or password-less sudo); otherwise prints the
# command. Never fails the build.
set -euo pipefail

for v in 19 18 17 16; do
  if ls /usr/lib/*/libLLVM-$v.so* /usr/lib/*/libLLVM.so.$v* >/dev/null 2>&1; then
    echo "llvm: libLLVM $v found (Mitsuba llvm_ad_rgb)"; exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "llvm: no libLLVM >= 16 and no apt-get: install libLLVM 16-19 for Mitsuba's llvm_ad_rgb yourself" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; else
    echo "llvm: not root, skipping. As root run:" >&2
    echo "  apt-get update && apt-get install -y libllvm19" >&2
    exit 0
  fi
fi
echo "llvm: installing libllvm19 ..."
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q libllvm19; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q libllvm19 || \
    echo "llvm: libllvm19 is not in this system's package lists; the fidelity suite falls back to Mitsuba image renders" >&2
fi
