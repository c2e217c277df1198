#!/usr/bin/env bash
# Installs what faults/powerloss needs, idempotently:
#   - libfuse2 (fusepy loads it with ctypes) and fusermount (package fuse3, or fuse);
#   - fusepy into compat/.venv (created by compat/install.sh, which must have run first).
# Needs root (or sudo) for apt-get when the libraries are missing; /dev/fuse must exist.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/compat/.venv"
log() { printf '[powerloss install] %s\n' "$*"; }

if [[ ! -e /dev/fuse ]]; then
  log "/dev/fuse does not exist: this machine cannot run FUSE file systems"
  exit 1
fi

have_libfuse2() { ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2'; }
if have_libfuse2 && command -v fusermount >/dev/null; then
  log "libfuse2 and fusermount: present"
else
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  known() { apt-cache show "$1" >/dev/null 2>&1; }
  if ! known libfuse2 && ! known libfuse2t64; then
    $sudo apt-get update -qq
  fi
  # Debian 13 / Ubuntu 24.04 renamed libfuse2 to libfuse2t64.
  lib=libfuse2
  if known libfuse2t64; then lib=libfuse2t64; fi
  fm=fuse3
  known fuse3 || fm=fuse
  log "apt-get install $lib $fm"
  $sudo apt-get install -y -q -o DPkg::Lock::Timeout=300 "$lib" "$fm" >/dev/null
  have_libfuse2 || { log "libfuse.so.2 still missing after apt-get"; exit 1; }
fi

if [[ ! -x "$venv/bin/python" ]]; then
  log "compat/.venv is missing: run bash compat/install.sh first"
  exit 1
fi
if "$venv/bin/python" -c 'import fuse' 2>/dev/null; then
  log "fusepy: present"
else
  log "pip install -r faults/powerloss/requirements.txt"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
fi
