#!/usr/bin/env bash
# Make sure a Vulkan driver slangpy can use exists: a GPU driver, or Mesa lavapipe >= 24.
# Debian bookworm's own Mesa (22.3) lavapipe lacks VK_KHR_shader_non_semantic_info, so on
# bookworm we install mesa-vulkan-drivers from bookworm-backports. Needs root (or sudo).
set -euo pipefail

icd_dirs="/usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d"
for d in $icd_dirs; do
  if ls "$d"/nvidia_icd*.json >/dev/null 2>&1; then
    echo "vulkan: NVIDIA driver found in $d"; exit 0
  fi
done

mesa_version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
mesa_major=${mesa_version%%.*}
mesa_major=${mesa_major##*:}
if [ -n "$mesa_version" ] && [ "${mesa_major:-0}" -ge 24 ] && [ -f /usr/share/vulkan/icd.d/lvp_icd.json ] \
   && ldconfig -p | grep -q libvulkan.so.1; then
  echo "vulkan: Mesa lavapipe $mesa_version found"; exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "vulkan: no usable driver and no apt-get: install a Vulkan GPU driver or Mesa >= 24 lavapipe yourself" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=sudo; else
    echo "vulkan: not root, skipping lavapipe install. As root run:" >&2
    echo "  echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bpo.list" >&2
    echo "  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1" >&2
    exit 0
  fi
fi
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
echo "vulkan: installing Mesa lavapipe (software Vulkan) for $codename ..."
if [ "$codename" = bookworm ]; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/neumat-bpo.list >/dev/null
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1
else
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q mesa-vulkan-drivers libvulkan1
fi
echo "vulkan: installed $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
