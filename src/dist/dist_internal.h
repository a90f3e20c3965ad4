/* Internals of the MPI files (not API; compiled only when MPI is found). */
#ifndef ATTN_DIST_INTERNAL_H
#define ATTN_DIST_INTERNAL_H

#include <mpi.h>

#include "attn/dist.h"

/* Waits for n requests until the deadline (attn_dist_timeout()): ATTN_OK, or ATTN_EIO with a
 * message naming `what` and this rank when MPI fails or the deadline passes (a rank died or
 * hangs). Polls rather than blocks, so that no wait can last forever. */
int attn__dist_wait(int n, MPI_Request *req, const char *what);

/* An element count as MPI's int, or -1 (with the error set) when it does not fit. */
int attn__dist_count(int64_t n, const char *what);

#endif
