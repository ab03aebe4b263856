#!/usr/bin/env bash
# Installs what `npm test` needs on Debian 12, and only what is missing: Debian packages, node_modules,
# the training venv (training/setup-venv.sh) and the Yocto lint venv (oelint-adv). Runs before every
# `npm test` (pretest) and in .ci/run; with everything present it only looks (a few milliseconds).
# Not root and a Debian package missing: installs nothing and names the one command that does.
#   bash scripts/setup.sh [--check]    (--check: list what is missing, install nothing; exit 1 if any)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package -> something it installs. Files rather than commands where a non-root PATH lacks
# /usr/sbin (mosquitto) or the tests look for a path (chromium, the arm64 libraries).
CHECKS=(
  "ffmpeg ffmpeg" "ffmpeg ffprobe"
  "mosquitto /usr/sbin/mosquitto" "mosquitto mosquitto_passwd" "mosquitto-clients mosquitto_sub"
  "openssl openssl"
  "systemd systemd-analyze" "systemd systemd-notify"
  "chromium ${CHROMIUM_PATH:-/usr/bin/chromium}"
  "qemu-user-static qemu-aarch64-static"
  "libc6-arm64-cross /usr/aarch64-linux-gnu/lib/libc.so.6"
  "libstdc++6-arm64-cross /usr/aarch64-linux-gnu/lib/libstdc++.so.6"
  "python3 python3"
  "fdisk /usr/sbin/sfdisk" "e2fsprogs /usr/sbin/mkfs.ext4" "e2fsprogs /usr/sbin/debugfs"
)
LINT_VENV=deploy/yocto/.venv-lint
need_train_venv=0; [ -x training/.venv/bin/python ] || need_train_venv=1
need_lint_venv=0; [ -x "$LINT_VENV/bin/oelint-adv" ] || need_lint_venv=1
need_node_modules=0; [ -e node_modules/.package-lock.json ] || need_node_modules=1
# a package-lock.json changed since the last install (a pull that adds a dev tool) needs npm ci again
[ package-lock.json -nt node_modules/.package-lock.json ] && need_node_modules=1

missing=()
add() { [[ " ${missing[*]} " == *" $1 "* ]] || missing+=("$1"); }
for c in "${CHECKS[@]}"; do
  pkg=${c%% *} probe=${c#* }
  if [[ $probe == /* ]]; then [ -e "$probe" ] || add "$pkg"; else command -v "$probe" >/dev/null || add "$pkg"; fi
done
# a venv to make needs ensurepip (python3-venv); checked only then, it costs a Python start
if (( need_train_venv || need_lint_venv )); then
  if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then add python3-venv; fi
fi

if (( ${#missing[@]} == 0 && !need_train_venv && !need_lint_venv && !need_node_modules )); then exit 0; fi
if [ "${1:-}" = --check ]; then
  (( ${#missing[@]} )) && echo "missing Debian packages: ${missing[*]}"
  (( need_node_modules )) && echo "missing: node_modules (npm ci)"
  (( need_train_venv )) && echo "missing: training/.venv (bash training/setup-venv.sh)"
  (( need_lint_venv )) && echo "missing: $LINT_VENV (oelint-adv)"
  exit 1
fi

if (( ${#missing[@]} )); then
  if (( EUID != 0 )); then
    {
      echo "npm test needs Debian packages that are not installed: ${missing[*]}"
      echo "Install them (and the rest npm test needs) with:"
      echo "  sudo bash scripts/setup.sh"
    } >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null; then
    echo "npm test needs these packages (Debian names), and this machine has no apt-get: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # the package starts a broker on 1883; the tests start their own, and npm start embeds one there
  if [[ " ${missing[*]} " == *" mosquitto "* ]]; then systemctl disable --now mosquitto 2>/dev/null || true; fi
fi

# The rest needs no root: under sudo it is done as the user who asked, so they own what is made.
as_user() {
  if (( EUID == 0 )) && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    sudo -u "$SUDO_USER" -H -- "$@"
  else
    "$@"
  fi
}
if (( need_node_modules )); then
  echo "setup: npm ci" >&2
  as_user npm ci --no-audit --no-fund
fi
if (( need_train_venv )); then
  echo "setup: training venv (training/setup-venv.sh)" >&2
  as_user bash training/setup-venv.sh
fi
if (( need_lint_venv )); then
  echo "setup: Yocto lint venv ($LINT_VENV)" >&2
  as_user python3 -m venv "$LINT_VENV"
  as_user "$LINT_VENV/bin/pip" install -q -r deploy/yocto/requirements-lint.txt
fi
echo "setup: done" >&2
