#!/usr/bin/env bash
# Pack into .gpu/ (git-ignored) what scripts/gpu_check.sh needs on a bare GPU machine, whose
# image has Python 3.12, torch, cupy, pybind11, scikit-build-core and nvcc but no network:
#   .gpu/slangpy-cp312.tar.xz  slangpy's cp312 wheel, unpacked, without its 75 MB static library
#                              (libslang-rhi.a, unused at run time), xz -9: ~49 MB (the wheel is
#                              92 MB, over the device tool's 64 MiB per call);
#   .gpu/wheels/               the pure-Python wheels the image lacks (trimesh);
#   .gpu/debs/                 the Vulkan/EGL loader .debs (../.library/device/README.md).
# Run once where pip and apt reach their indexes: scripts/gpu_pack.sh; then each device call
# carries ".gpu" and runs `OUT=$OUT make gpu-check` (or scripts/gpu_check.sh).
# FALCOR=1 also packs .gpu-falcor/ (falcorcomp's cp312 wheel, 59 MB) for a second call on the
# same warm machine carrying ".gpu-falcor": `OUT=$OUT make gpu-check-falcor`.
set -euo pipefail
cd "$(dirname "$0")/.."
SLANGPY=$(sed -n 's/.*"slangpy==\([0-9.]*\)".*/\1/p' pyproject.toml)
TRIMESH=${TRIMESH:-5.2.0}
mkdir -p .gpu/wheels .gpu/debs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ! -s .gpu/slangpy-cp312.tar.xz ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_34_x86_64 -d "$tmp" "slangpy==$SLANGPY"
  (cd "$tmp" && unzip -q slangpy-*.whl && rm slangpy-*.whl && find slangpy -name '*.a' -delete \
    && tar -cf - slangpy slangpy-*.dist-info | xz -9 -T0 >"$OLDPWD/.gpu/slangpy-cp312.tar.xz.part")
  mv .gpu/slangpy-cp312.tar.xz.part .gpu/slangpy-cp312.tar.xz
fi
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .gpu/wheels "trimesh==$TRIMESH"
if ! ls .gpu/debs/*.deb >/dev/null 2>&1; then
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$tmp/lists"
  mkdir -p "$tmp/lists/partial"
  apt-get $o update -qq
  (cd .gpu/debs && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
if [ "${FALCOR:-0}" = 1 ]; then  # the second call's folder (gpu_check.sh --falcor): falcorcomp alone
  mkdir -p .gpu-falcor
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_35_x86_64 -d .gpu-falcor falcorcomp
  size=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) + $(du -sb .gpu-falcor | cut -f1) ))
  echo "packed .gpu-falcor/ ($(du -sh .gpu-falcor | cut -f1)); tree + .gpu-falcor = $(( size >> 20 )) MiB of 64 MiB"
  [ "$size" -lt $(( 64 << 20 )) ] || { echo ".gpu-falcor too large for one device call" >&2; exit 1; }
fi
size=$(( $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) + $(du -sb .gpu | cut -f1) ))
echo "packed .gpu/ ($(du -sh .gpu | cut -f1)); tree + .gpu = $(( size >> 20 )) MiB of the 64 MiB a device call carries"
[ "$size" -lt $(( 64 << 20 )) ] || { echo "too large for one device call" >&2; exit 1; }
