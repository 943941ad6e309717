/*
 * Disassembly for traces (-d in_asm, -d out_asm), with Capstone: a second,
 * independent decoder, so a trace shows what the bytes are rather than what
 * our Zydis-based classifier believed.
 */
#include <capstone/capstone.h>
#include <inttypes.h>

#include "popek/vm.h"

void dbt_disas(FILE *f, const uint8_t *code, size_t len, uint32_t addr)
{
    csh h;
    cs_insn *insn;
    if (cs_open(CS_ARCH_X86, CS_MODE_32, &h) != CS_ERR_OK)
        return;
    size_t n = cs_disasm(h, code, len, addr, 0, &insn);
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "  %08" PRIx64 ":  %-8s %s\n", insn[i].address, insn[i].mnemonic, insn[i].op_str);
        done += insn[i].size;
    }
    if (done < len)
        fprintf(f, "  %08x:  (%zu bytes not decoded)\n", addr + (uint32_t)done, len - done);
    cs_free(insn, n);
    cs_close(&h);
}
