#!/usr/bin/env bash
# The Debian packages the course needs: chromium (the browser tests; playwright drives it, never
# `playwright install`), bubblewrap (`bwrap`, the sandbox every graded submission runs in) and npm (the book build
# installs onnxruntime-web with it for the Try the lens page).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v npm >/dev/null 2>&1 || missing+=(npm)  # the Try the lens page's runtime (onnxruntime-web), at build time
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "error: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
