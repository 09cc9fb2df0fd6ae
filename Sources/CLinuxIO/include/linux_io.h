#ifndef PULLBACK_LINUX_IO_H
#define PULLBACK_LINUX_IO_H
#include <stdint.h>
#include <sys/types.h>

/* Linux file calls that Swift's Glibc module does not export (they need _GNU_SOURCE).
   Each returns 0, or -1 with errno set. */

/* fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): the range reads as zeros and frees its blocks. */
int pullback_punch_hole(int fd, int64_t offset, int64_t length);

/* sync_file_range(SYNC_FILE_RANGE_WRITE): start writing the range's dirty pages to disk now, without
   waiting, so the final fsync has little left to do. */
int pullback_start_writeback(int fd, int64_t offset, int64_t length);

/* sync_file_range(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER): write the
   range's dirty pages and wait until they are on the disk, so that they can be dropped from the page cache. */
int pullback_finish_writeback(int fd, int64_t offset, int64_t length);

/* open("/proc/self/fd/<fd>", O_RDONLY | O_DIRECT | O_CLOEXEC): a second descriptor of the file `fd` has open,
   whose reads bypass the page cache. Returns the new descriptor, or -1 with errno set. */
int pullback_reopen_direct(int fd);

/* renameat2(RENAME_EXCHANGE): swaps the two names `a` and `b` (files or folders) in one atomic step, so that
   each name always exists. Fails with EINVAL where the file system cannot do it. */
int pullback_exchange_names(const char *a, const char *b);

/* lseek(SEEK_DATA) and lseek(SEEK_HOLE): the next offset at or after `offset` where data, or a hole (the end of
   the file counts as one), starts. Return the offset, or -1 with errno set (ENXIO: no data follows). */
int64_t pullback_next_data(int fd, int64_t offset);
int64_t pullback_next_hole(int fd, int64_t offset);

/* posix_spawn of `path` with `argv` (NULL-terminated) in a session of its own (POSIX_SPAWN_SETSID), every signal
   default and unblocked, standard input from /dev/null, standard output and error appended to `log` (made 0600),
   and every other descriptor closed (posix_spawn_file_actions_addclosefrom_np). Stores the child's id in `pid`.
   Returns 0, or an errno value. */
int pullback_spawn_detached(const char *path, char *const argv[], const char *log, pid_t *pid);

/* umount2(path, MNT_DETACH): takes the mount at `path` out of the tree now, and frees it once nothing uses it. */
int pullback_unmount(const char *path);

#endif
