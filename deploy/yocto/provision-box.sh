#!/usr/bin/env bash
# Gives one box its own settings: writes them into the data partition of a built image, before it is flashed.
#   deploy/yocto/provision-box.sh [--base IMAGE_CONFIG] IMAGE.wic BOX.yaml [FILE ...]
# BOX.yaml is the box's layer over the image's /etc/thyroid-edge/config.yaml: deviceId, the broker and its
# credentials, the ROI (thyroid-edge calibrate). FILEs (the CA, the client certificate and key) go beside it in
# /data/box; point the config at them there (e.g. mqtt.caFile: /data/box/ca.pem). The daemon reads both layers
# (20-data-partition.conf).
# - BOX.yaml is checked over the image's config first (--base, default: the layer's files/config.yaml, the one
#   the image carries; give a site's own if a bbappend replaces it). A bad key exits 2 naming it, image untouched.
# - The partition is found by its GPT name, tedata (wic/thyroid-edge-qemuarm64.wks), and formatted anew: whatever
#   it held (an earlier box's settings, state) is replaced. Use it on a fresh copy of the built image, once per box.
# - IMAGE must be raw (.wic); for a .wic.qcow2: qemu-img convert -O raw IMAGE.wic.qcow2 IMAGE.wic
# Needs: node (the built CLI: npm run build), sfdisk (fdisk), mkfs.ext4 (e2fsprogs). No root needed.
set -euo pipefail
PATH="$PATH:/usr/sbin:/sbin" # sfdisk and mkfs.ext4, for a user whose PATH lacks them
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BASE="$ROOT/deploy/yocto/meta-thyroid-edge/recipes-thyroid-edge/thyroid-edge/files/config.yaml"
PART_NAME=tedata

usage() {
  echo "usage: $0 [--base IMAGE_CONFIG] IMAGE.wic BOX.yaml [FILE ...]" >&2
  exit 2
}
fail() {
  echo "provision-box: $*" >&2
  exit 1
}

if [ "${1:-}" = --base ]; then
  [ $# -ge 2 ] || usage
  BASE=$2
  shift 2
fi
[ $# -ge 2 ] || usage
IMAGE=$1 BOX=$2
shift 2
[ -f "$IMAGE" ] || fail "$IMAGE: no such image"
[ -f "$BOX" ] || fail "$BOX: no such file"
[ -f "$ROOT/dist/src/cli.js" ] || fail "the CLI is not built: npm run build"
if [ "$(head -c 4 "$IMAGE" | od -An -tx1 | tr -d ' \n')" = 514649fb ]; then
  fail "$IMAGE is a qcow2 image; convert it first: qemu-img convert -O raw $IMAGE ${IMAGE%.qcow2}"
fi
declare -A seen=([config.yaml]=1)
for f in "$@"; do
  [ -f "$f" ] || fail "$f: no such file"
  name=$(basename "$f")
  [ -z "${seen[$name]:-}" ] || fail "$name: two files with this name for /data/box (it is flat)"
  seen[$name]=1
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# the box's layer over the image's config, as the daemon will load them; no THYROID_EDGE__* of this shell leaks in
if ! env -i PATH="$PATH" node "$ROOT/dist/src/cli.js" check-config "$BASE" "$BOX" >"$work/effective.json" 2>"$work/check.err"; then
  cat "$work/check.err" >&2
  echo "provision-box: $BOX is not valid over $BASE (the line above names the key and the reason); $IMAGE is unchanged" >&2
  exit 2
fi

# the layer must name its box: every box of the fleet would otherwise share the image's deviceId (the broker's
# client id, the topics). Read from the files as written, since the image's config need not be valid alone.
boxFile=$(realpath "$BOX") baseFile=$(realpath "$BASE")
deviceId=$(cd "$ROOT" && node --input-type=module -e '
  import { readFileSync } from "node:fs";
  import YAML from "yaml";
  const [box, base] = process.argv.slice(1).map((f) => YAML.parse(readFileSync(f, "utf8")) ?? {});
  const id = box.deviceId;
  if (typeof id !== "string" || id === "" || id === base.deviceId) {
    console.error(`deviceId: must be set, to this box'"'"'s own (the image'"'"'s is ${base.deviceId ?? "the default"}, which every box would share)`);
    process.exit(2);
  }
  console.log(id);
' "$boxFile" "$baseFile") || {
  echo "provision-box: $BOX: see the line above; $IMAGE is unchanged" >&2
  exit 2
}

# the data partition: start and size in bytes
read -r START SIZE < <(sfdisk --json "$IMAGE" | node -e '
  const t = JSON.parse(require("fs").readFileSync(0, "utf8")).partitiontable;
  const ss = t.sectorsize ?? 512;
  const p = (t.partitions ?? []).filter((q) => q.name === process.argv[1]);
  if (p.length !== 1) {
    console.error(`${p.length} partitions named ${process.argv[1]} (want 1); names: ${(t.partitions ?? []).map((q) => q.name ?? "-").join(", ")}`);
    process.exit(1);
  }
  console.log(p[0].start * ss, p[0].size * ss);
' "$PART_NAME") || fail "$IMAGE: no data partition found (GPT name $PART_NAME; is this the thyroid-edge image?)"

mkdir -m 0755 "$work/tree"
mkdir -m 0750 "$work/tree/box"
install -m 0640 "$BOX" "$work/tree/box/config.yaml"
for f in "$@"; do install -m 0640 "$f" "$work/tree/box/$(basename "$f")"; done
truncate -s "$SIZE" "$work/data.ext4"
mkfs.ext4 -q -F -L "$PART_NAME" -d "$work/tree" "$work/data.ext4"
dd if="$work/data.ext4" of="$IMAGE" bs=4M oflag=seek_bytes seek="$START" conv=notrunc,fsync status=none
echo "provision-box: $IMAGE is now box $deviceId: data partition ($((SIZE / 1048576)) MiB at byte $START) written," \
  "/data/box holds: $(ls "$work/tree/box" | tr '\n' ' ')"
