# tests/mpienv.sh: sourced by the MPI tests (tests/mpirun.sh, tests/mpi_*.sh): skips (77) where
# mpirun is missing, and sets what mpirun needs on one machine: root may run it (CI's containers
# run as root), no CMA single-copy (containers often forbid the ptrace it needs), more ranks
# than cores; no leak check (OpenMPI keeps allocations of its plugins past MPI_Finalize;
# AddressSanitizer builds still check every access).
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found (install openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
