/*
 * Console, formatted output, exit and the C helpers GCC may call.
 *
 * Output goes to COM1 only, polled on LSR.THRE: test kernels run with
 * interrupts masked, and the golden files are exactly these bytes, so lines
 * end in a bare "\n".
 */
#include "guest.h"

#define COM1      0x3F8
#define UART_THR  0     /* DLAB=0 */
#define UART_DLL  0     /* DLAB=1 */
#define UART_IER  1
#define UART_DLM  1     /* DLAB=1 */
#define UART_FCR  2
#define UART_LCR  3
#define UART_MCR  4
#define UART_LSR  5
#define UART_LCR_8N1  0x03
#define UART_LCR_DLAB 0x80
#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_LSR_THRE 0x20

void serial_init(void)
{
    outb(COM1 + UART_IER, 0);
    outb(COM1 + UART_LCR, UART_LCR_DLAB);
    outb(COM1 + UART_DLL, 1);           /* 115200 baud */
    outb(COM1 + UART_DLM, 0);
    outb(COM1 + UART_LCR, UART_LCR_8N1);
    outb(COM1 + UART_FCR, 0);
    outb(COM1 + UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
}

void serial_putc(char c)
{
    while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE))
        ;
    outb(COM1 + UART_THR, (uint8_t)c);
}

static void put_str(const char *s, int *n)
{
    while (*s) {
        serial_putc(*s++);
        (*n)++;
    }
}

static void put_num(uint32_t v, unsigned base, int neg, unsigned width, char pad, int *n)
{
    char buf[12];
    unsigned len = 0;

    do {
        buf[len++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg) {
        if (pad == '0') {
            serial_putc('-');
            (*n)++;
            if (width)
                width--;
        } else {
            buf[len++] = '-';
        }
    }
    for (; width > len; width--) {
        serial_putc(pad);
        (*n)++;
    }
    while (len) {
        serial_putc(buf[--len]);
        (*n)++;
    }
}

int vprintf(const char *fmt, va_list ap)
{
    int n = 0;

    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            serial_putc(*fmt);
            n++;
            continue;
        }
        char pad = ' ';
        unsigned width = 0;
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (unsigned)(*fmt++ - '0');
        switch (*fmt) {
        case 'd': {
            int32_t v = va_arg(ap, int32_t);
            put_num(v < 0 ? -(uint32_t)v : (uint32_t)v, 10, v < 0, width, pad, &n);
            break;
        }
        case 'u':
            put_num(va_arg(ap, uint32_t), 10, 0, width, pad, &n);
            break;
        case 'x':
            put_num(va_arg(ap, uint32_t), 16, 0, width, pad, &n);
            break;
        case 's':
            put_str(va_arg(ap, const char *), &n);
            break;
        case 'c':
            serial_putc((char)va_arg(ap, int));
            n++;
            break;
        case '%':
            serial_putc('%');
            n++;
            break;
        case '\0':
            return n;
        default:
            /* Unknown conversion: print it verbatim so the golden diff shows it. */
            serial_putc('%');
            serial_putc(*fmt);
            n += 2;
            break;
        }
    }
    return n;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

void exit_qemu(uint32_t code)
{
    /* isa-debug-exit: the emulator exits with status (code << 1) | 1. */
    outl(DEBUG_EXIT_PORT, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}
