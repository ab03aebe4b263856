#!/usr/bin/env bash
# Release files for the Yocto layer, in deploy/yocto/release/ (the layer's THYROID_EDGE_RELEASE_DIR):
#   thyroid-edge-<version>-linux-arm64.tar.gz  dist/, docs/, the systemd unit, package.json and the
#                                              arm64 node_modules the ARM64 proof ran, pruned to linux-arm64
#   thyroid-nodule-int8.onnx/.json            the factory model and its card (own package)
#   SHA256SUMS
# Usage: npm run build && deploy/yocto/make-release.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(node -p 'require("./package.json").version')
APP=$(deploy/arm64/build-app.sh)
OUT=deploy/yocto/release
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$OUT" "$STAGE/deploy"
cp -r "$APP/dist" "$APP/node_modules" "$APP/package.json" docs "$STAGE/"
cp -r deploy/systemd "$STAGE/deploy/"
# other platforms' prebuilt binaries would only fail the image's QA (wrong architecture)
ORT=$STAGE/node_modules/onnxruntime-node/bin/napi-v6
find "$ORT" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
find "$ORT/linux" -mindepth 1 -maxdepth 1 ! -name arm64 -exec rm -rf {} +
if find "$STAGE/node_modules" -name '*.node' -o -name '*.so*' | xargs -r file | grep -E 'ELF' | grep -v 'aarch64' | grep -q .; then
  echo "make-release: non-arm64 binaries left in node_modules" >&2
  exit 1
fi
TARBALL=$OUT/thyroid-edge-$VERSION-linux-arm64.tar.gz
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2026-01-01 00:00Z' -C "$STAGE" -czf "$TARBALL" .
cp models/thyroid-nodule-int8.onnx models/thyroid-nodule-int8.json "$OUT/"
(cd "$OUT" && sha256sum "$(basename "$TARBALL")" thyroid-nodule-int8.onnx thyroid-nodule-int8.json > SHA256SUMS)
du -h "$TARBALL" >&2
cat "$OUT/SHA256SUMS"
