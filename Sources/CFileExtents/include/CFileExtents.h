#ifndef GNT_MOVE_CFILEEXTENTS_H
#define GNT_MOVE_CFILEEXTENTS_H
#include <stdint.h>

/* lseek(fd, offset, SEEK_DATA); -1 with errno ENXIO past the last data. */
int64_t gnt_seek_data(int fd, int64_t offset);
/* lseek(fd, offset, SEEK_HOLE). */
int64_t gnt_seek_hole(int fd, int64_t offset);
/* fallocate(PUNCH_HOLE | KEEP_SIZE); 0 or -1 with errno. */
int gnt_punch_hole(int fd, int64_t offset, int64_t length);
/* Size of a block device in bytes (BLKGETSIZE64); -1 with errno. */
int64_t gnt_block_device_size(int fd);
/* ioctl(BLKZEROOUT) over [offset, offset+length); 0 or -1 with errno. */
int gnt_block_zero_out(int fd, uint64_t offset, uint64_t length);
/* posix_fadvise(SEQUENTIAL) over the whole file; best effort. */
void gnt_advise_sequential(int fd);

/* Writeback control (sync_file_range), so that a large stream's data goes to disk while it
 * arrives instead of in one long flush at the end. */
int gnt_start_writeback(int fd, int64_t offset, int64_t length);
int gnt_wait_writeback(int fd, int64_t offset, int64_t length);
/* posix_fadvise(DONTNEED): drop written-back pages, so a moved disk does not evict the host's cache. */
void gnt_drop_cache(int fd, int64_t offset, int64_t length);
#endif
