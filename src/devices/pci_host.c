/*
 * PCI configuration mechanism #1: CONFIG_ADDRESS at 0xCF8 (a 32-bit latch
 * that reads back) and CONFIG_DATA at 0xCFC-0xCFF.  The bus holds one
 * function, a host bridge at 00:00.0 with the IDs of QEMU's i440FX (Linux's
 * type-1 probe, pci_sanity_check(), wants a host bridge or a display
 * device on bus 0 before it trusts the mechanism); every other function
 * reads as absent (all ones).  The bridge has no BARs and ignores writes.
 * 0xCF9 (reset control) is a separate device (resetcf9.c).
 */
#include "popek/devices.h"

#define PCI_CONFIG_ADDRESS 0xcf8

static uint32_t pci_addr_read(void *opaque, uint16_t off, unsigned size)
{
    const struct pci_host *h = opaque;
    (void)off;
    return size == 4 ? h->config_address : 0xffffffffu;
}

static void pci_addr_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    struct pci_host *h = opaque;
    (void)off;
    /* Only dword accesses reach CONFIG_ADDRESS; Linux's type-1 probe also
     * writes a byte to 0xCFB, which on a PC goes elsewhere. */
    if (size == 4)
        h->config_address = val & 0x80fffffcu;
}

#define PCI_ENABLE 0x80000000u

/* 00:00.0's configuration header (the rest of its 256 bytes read as zero). */
static const uint8_t host_bridge[16] = {
    0x86, 0x80, 0x37, 0x12, /* vendor 8086 (Intel), device 1237 (82441FX) */
    0x06, 0x00, 0x00, 0x00, /* command: memory + bus master; status */
    0x02, 0x00, 0x00, 0x06, /* revision 2, class 06 00 00: host bridge */
    0x00, 0x00, 0x00, 0x00, /* cache line, latency, header type 0, BIST */
};

static uint32_t pci_data_read(void *opaque, uint16_t off, unsigned size)
{
    const struct pci_host *h = opaque;
    uint32_t a = h->config_address;
    /* Bus 0, device 0, function 0 (bits 23-8 zero) and enabled. */
    if ((a & PCI_ENABLE) == 0 || (a & 0x00ffff00u) != 0)
        return 0xffffffffu;
    uint32_t reg = (a & 0xfc) + off, v = 0;
    for (unsigned i = 0; i < size; i++)
        if (reg + i < sizeof(host_bridge))
            v |= (uint32_t)host_bridge[reg + i] << (8 * i);
    return v;
}

static void pci_data_write(void *opaque, uint16_t off, unsigned size, uint32_t val)
{
    (void)opaque;
    (void)off;
    (void)size;
    (void)val;
}

static const struct io_ops pci_addr_ops = { .read = pci_addr_read, .write = pci_addr_write };
static const struct io_ops pci_data_ops = { .read = pci_data_read, .write = pci_data_write };

int pci_host_register(struct pci_host *h, struct iobus *bus)
{
    h->config_address = 0;
    /* One port: dword accesses dispatch by their first port, and 0xCF9 is
     * the reset control register. */
    int err = iobus_register(bus, PCI_CONFIG_ADDRESS, 1, &pci_addr_ops, h);
    return err ? err : iobus_register(bus, 0xcfc, 4, &pci_data_ops, h);
}
