#include "CFileExtents.h"
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

int64_t gnt_seek_data(int fd, int64_t offset) { return (int64_t)lseek(fd, (off_t)offset, SEEK_DATA); }
int64_t gnt_seek_hole(int fd, int64_t offset) { return (int64_t)lseek(fd, (off_t)offset, SEEK_HOLE); }

int gnt_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}

int64_t gnt_block_device_size(int fd) {
    uint64_t size = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0) return -1;
    return (int64_t)size;
}

int gnt_block_zero_out(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = { offset, length };
    return ioctl(fd, BLKZEROOUT, &range);
}

void gnt_advise_sequential(int fd) { (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); }

int gnt_start_writeback(int fd, int64_t offset, int64_t length) {
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
}

int gnt_wait_writeback(int fd, int64_t offset, int64_t length) {
    return sync_file_range(fd, (off_t)offset, (off_t)length,
                           SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
}

void gnt_drop_cache(int fd, int64_t offset, int64_t length) {
    (void)posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED);
}
