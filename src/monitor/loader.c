/*
 * What the kernel loaders (multiboot.c, linuxboot.c) share.
 */
#include <errno.h>
#include <unistd.h>

#include "popek/loader.h"

int loader_read_all(int fd, void *dst, size_t len, size_t *got)
{
    uint8_t *p = dst;
    size_t done = 0;

    while (done < len) {
        ssize_t n = read(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}
