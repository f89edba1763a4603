/*
 * The simulator's variadic KPI functions. Stable Rust cannot define C variadic functions, so
 * these format with the host libc and hand a finished string to the Rust simulator.
 * The driver's `printf`/`panic` references are renamed to xnusim_* in its host objects.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xnusim_log_line(const char *line);
void xnusim_panic_message(const char *message) __attribute__((noreturn));
void *xnusim_devfs_make_node_named(int dev, int chrblk, unsigned uid, unsigned gid, int perms,
                                   const char *name);

int xnusim_printf(const char *format, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(line, sizeof line, format, ap);
    va_end(ap);
    xnusim_log_line(line);
    return n;
}

void xnusim_panic(const char *format, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    xnusim_panic_message(message);
}

size_t xnusim_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = 0;
    }
    return len;
}

void *devfs_make_node(int dev, int chrblk, unsigned uid, unsigned gid, int perms,
                      const char *format, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, format);
    vsnprintf(name, sizeof name, format, ap);
    va_end(ap);
    return xnusim_devfs_make_node_named(dev, chrblk, uid, gid, perms, name);
}
