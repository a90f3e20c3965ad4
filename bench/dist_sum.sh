#!/usr/bin/env bash
# The gradient sum of data-parallel training timed on this machine (bench/dist_sum.c, compiled
# here against build/libattn.a built with MPI): mpirun -np NP, N floats, R runs.
# usage: bench/dist_sum.sh [build dir]        environment: NP (2), N (1463260), R (21)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${1:-$root/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -I"$root/include" $(pkg-config --cflags ompi-c) "$here/dist_sum.c" "$BUILD/libattn.a" $(pkg-config --libs ompi-c) -lm -lpthread \
   $(pkg-config --libs libpng freetype2 fontconfig zlib 2>/dev/null) -o "$tmp/dist_sum"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun --oversubscribe -np "${NP:-2}" "$tmp/dist_sum" "${N:-1463260}" "${R:-21}"
