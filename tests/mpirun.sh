#!/usr/bin/env bash
# tests/mpirun.sh: runs a test under MPI on this machine alone, as ctest's MPI tests do
# (tests/mpi_*.c, tests/mpi_*.sh). Skips (77) when mpirun is missing; never passes without
# running the test.
#
#   bash tests/mpirun.sh NP PROGRAM [ARGS...]
#
# The ranks talk over shared memory on one machine (settings: tests/mpienv.sh). A hung run is
# killed after ATTN_MPI_TEST_LIMIT seconds (default 300) rather than waiting for ctest's own
# timeout.
set -u
np=$1; shift
. "$(dirname "$0")/mpienv.sh"
exec timeout "${ATTN_MPI_TEST_LIMIT:-300}" mpirun --oversubscribe -np "$np" "$@"
