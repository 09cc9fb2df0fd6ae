#ifndef PULLBACK_PUNCH_HOLE_H
#define PULLBACK_PUNCH_HOLE_H
#include <stdint.h>

/* fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE), which Swift's Glibc module does not export
   (it needs _GNU_SOURCE). Returns 0, or -1 with errno set. */
int pullback_punch_hole(int fd, int64_t offset, int64_t length);

#endif
