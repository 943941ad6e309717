/*
 * What the kernel loaders (multiboot.c, linuxboot.c) share.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

int loader_fail(char err[LOADER_ERR_LEN], const char *kernel_path, int rc, const char *fmt, ...)
{
    int n = snprintf(err, LOADER_ERR_LEN, "kernel '%s': ", kernel_path);
    va_list ap;

    if (n >= 0 && n < (int)LOADER_ERR_LEN) {
        va_start(ap, fmt);
        vsnprintf(err + n, LOADER_ERR_LEN - n, fmt, ap);
        va_end(ap);
    }
    return rc;
}
