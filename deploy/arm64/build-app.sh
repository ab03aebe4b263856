#!/usr/bin/env bash
# The app tree for linux-arm64: package.json + `npm ci --omit=dev --cpu=arm64` (onnxruntime-node's
# linux/arm64 binaries, sharp's @img/*-linux-arm64) + dist/ + models/. Reused while the lock file
# is unchanged. Prints the tree's path. Used by proof.sh (ARM64 proof) and yocto/make-release.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
APP=$PWD/deploy/arm64/.build/app
LOCK_SHA=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$APP/.lock-sha" ] || [ "$(cat "$APP/.lock-sha")" != "$LOCK_SHA" ]; then
  rm -rf "$APP" && mkdir -p "$APP"
  cp package.json package-lock.json .npmrc "$APP/"
  (cd "$APP" && npm ci --silent --no-audit --no-fund --omit=dev --ignore-scripts --cpu=arm64 --os=linux --libc=glibc >&2)
  echo "$LOCK_SHA" > "$APP/.lock-sha"
fi
rm -rf "$APP/dist" "$APP/models" && cp -r dist models "$APP/"
echo "$APP"
