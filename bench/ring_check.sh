#!/usr/bin/env bash
# Ring attention at full size (issue 16's check): bench/ring_check.c, compiled here against
# build/libattn.a (built with MPI), under mpirun with NP ranks of THREADS threads each.
# Prints each rank's forward and backward time and peak resident size, and the largest
# difference from the single-process kernel on a slice (see ring_check.c).
#
# usage: bench/ring_check.sh [build dir]
# environment: NP (4), N (65536), H (8), D (64), CAUSAL (0), LAYOUT (0 contiguous, 1 zig-zag), THREADS (1)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${1:-$root/build}
NP=${NP:-4}; N=${N:-65536}; H=${H:-8}; D=${D:-64}; CAUSAL=${CAUSAL:-0}; LAYOUT=${LAYOUT:-0}; THREADS=${THREADS:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -I"$root/include" $(pkg-config --cflags ompi-c) "$here/ring_check.c" "$BUILD/libattn.a" $(pkg-config --libs ompi-c) -lm -lpthread \
   $(pkg-config --libs libpng freetype2 fontconfig zlib 2>/dev/null) -o "$tmp/ring_check"
echo "machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), load $(cut -d' ' -f1-3 /proc/loadavg)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
ATTN_THREADS=$THREADS mpirun --oversubscribe -np "$NP" -x ATTN_THREADS "$tmp/ring_check" "$N" "$H" "$D" "$CAUSAL" "$LAYOUT"
