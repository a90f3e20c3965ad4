#!/usr/bin/env bash
# tests/mpirun.sh: runs a test under MPI on this machine alone, as ctest's MPI tests do
# (tests/mpi_*.c, tests/mpi_*.sh). Skips (77) when mpirun is missing; never passes without
# running the test.
#
#   bash tests/mpirun.sh NP PROGRAM [ARGS...]
#
# The ranks talk over shared memory on one machine (--oversubscribe: more ranks than cores is
# fine for a test); root may run them (CI's containers run as root); no CMA single-copy
# (containers often forbid the ptrace it needs). A hung run is killed after ATTN_MPI_TEST_LIMIT
# seconds (default 300) rather than waiting for ctest's own timeout.
set -u
np=$1; shift
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found (install openmpi-bin)"; exit 77; }
# OpenMPI keeps allocations of its plugins past MPI_Finalize: no leak check under mpirun
# (AddressSanitizer builds still check every access).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
exec timeout "${ATTN_MPI_TEST_LIMIT:-300}" mpirun --oversubscribe -np "$np" "$@"
