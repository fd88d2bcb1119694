#!/usr/bin/env bash
# Installs Open MPI and libclang (for rsmpi's bindings) from Debian's packages unless they are
# already there. Needs root (CI runs as root) or sudo.
set -euo pipefail
have_libclang() { ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; }
if command -v mpirun >/dev/null && command -v mpicc >/dev/null && have_libclang; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openmpi-bin libopenmpi-dev libclang-dev >/dev/null
