#!/usr/bin/env bash
# Installs Open MPI and libclang (for rsmpi's bindings) from Debian's packages when mpirun
# is missing. Needs root (CI runs as root) or sudo.
set -euo pipefail
if command -v mpirun >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h -o -e /usr/include/mpi.h -o -n "$(command -v mpicc)" ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openmpi-bin libopenmpi-dev libclang-dev >/dev/null
