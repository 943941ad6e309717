/*
 * The translation cache: block pool, lookup hash, chaining, the IBL tables,
 * invalidation and flush.
 *
 *   mon_base+MON_TC                                       mon_base+mon_size
 *   | tb0 code | tb0 stubs | tb1 code | tb1 stubs | ...  -> tc_next   free |
 *
 * Blocks are bump-allocated in TC order, so blocks[] is sorted by TC address
 * and a host fault's RIP finds its block by binary search.  When either the
 * code arena or the block pool is full everything is flushed (the simple
 * policy QEMU also uses); invalidated blocks keep their code until then, which
 * is what lets a block that overwrote itself finish its current instruction.
 */
#include <stdlib.h>
#include <string.h>

#include "popek/vm.h"

extern const char mon_stubs_start[], mon_stubs_end[];
extern const char mon_stub_exit_chain[], mon_stub_exit_emulate[], mon_stub_exit_ibl_miss[];
extern const char mon_stub_ibl_empty[];
extern const char mon_stub_exit64[], mon_stub_exit_host[];

/* Sizes the block pool: the Linux CI workload averages ~130 bytes of code and
 * stubs per (super)block, so a pool of one block per 64 bytes never fills
 * before the code arena does. */
#define TC_BYTES_PER_BLOCK 64
#define MAPS_PER_BLOCK 8

static uint32_t stub_addr(const struct vm *vm, const char *sym)
{
    return vm->mon_base + MON_STUBS + (uint32_t)(sym - mon_stubs_start);
}

static struct ibl_entry *ibl_table(const struct vm *vm, unsigned cls)
{
    return (struct ibl_entry *)(uintptr_t)(vm->mon_base + MON_IBL) + cls * MON_IBL_ENTRIES;
}

/* The IBL tables hold blocks for one CS base and one CR0.TS/EM setting. */
bool tcache_ibl_valid(const struct vm *vm)
{
    return vm->tc.ibl_cs_base == vm->cpu.seg[SEG_CS].base &&
           vm->tc.ibl_fpu_trap == !!(vm->cpu.cr0 & (CR0_TS | CR0_EM));
}

void tcache_ibl_clear(struct vm *vm)
{
    for (unsigned cls = 0; cls < MON_IBL_TABLES; cls++) {
        struct ibl_entry *t = ibl_table(vm, cls);
        for (unsigned i = 0; i < MON_IBL_ENTRIES; i++)
            t[i] = (struct ibl_entry){ 0, vm->tc.stub_ibl_empty };
    }
    vm->tc.ibl_cs_base = vm->cpu.seg[SEG_CS].base;
    vm->tc.ibl_fpu_trap = vm->cpu.cr0 & (CR0_TS | CR0_EM);
}

int tcache_init(struct vm *vm)
{
    struct tcache *tc = &vm->tc;
    size_t stubs_len = (size_t)(mon_stubs_end - mon_stubs_start);
    if (stubs_len > MON_STUBS_SIZE)
        return -1;
    memcpy((void *)(uintptr_t)(vm->mon_base + MON_STUBS), mon_stubs_start, stubs_len);
    tc->mon_base = vm->mon_base;
    tc->tc_start = vm->mon_base + MON_TC;
    tc->tc_end = vm->mon_base + vm->mon_size;
    tc->tc_next = tc->tc_start;
    tc->max_blocks = (tc->tc_end - tc->tc_start) / TC_BYTES_PER_BLOCK;
    tc->max_maps = tc->max_blocks * MAPS_PER_BLOCK;
    tc->blocks = calloc(tc->max_blocks, sizeof(*tc->blocks));
    tc->volatile_links = calloc(TC_VOLATILE_MAX, sizeof(*tc->volatile_links));
    tc->maps = calloc(tc->max_maps, sizeof(*tc->maps));
    tc->sites = calloc(TC_CALLOUT_SITES, sizeof(*tc->sites));
    tc->seg_ics = calloc(TC_CALLOUT_SITES, sizeof(*tc->seg_ics));
    tc->link_spaces = calloc(TC_LINK_SPACES, sizeof(*tc->link_spaces));
    tc->dormant = calloc(TC_VOLATILE_MAX, sizeof(*tc->dormant));
    tc->groups = calloc(TC_LINK_GROUPS, sizeof(*tc->groups));
    tc->fault_sites = calloc(TC_FAULT_SITES, sizeof(*tc->fault_sites));
    if (!tc->blocks || !tc->maps || !tc->volatile_links || !tc->sites || !tc->seg_ics ||
        !tc->link_spaces || !tc->dormant || !tc->groups || !tc->fault_sites)
        return -1;
    tc->page_checks = __builtin_cpu_supports("bmi2");
    tc->stub_exit_chain = stub_addr(vm, mon_stub_exit_chain);
    tc->stub_exit_emulate = stub_addr(vm, mon_stub_exit_emulate);
    tc->stub_exit_ibl_miss = stub_addr(vm, mon_stub_exit_ibl_miss);
    tc->stub_ibl_empty = stub_addr(vm, mon_stub_ibl_empty);
    tc->stub_exit64 = stub_addr(vm, mon_stub_exit64);
    tc->stub_exit_host = stub_addr(vm, mon_stub_exit_host);
    dbt_decoder_init(&tc->dec);
    tcache_ibl_clear(vm);
    return 0;
}

void tcache_destroy(struct vm *vm)
{
    free(vm->tc.blocks);
    free(vm->tc.maps);
    free(vm->tc.volatile_links);
    free(vm->tc.sites);
    vm->tc.sites = NULL;
    free(vm->tc.seg_ics);
    vm->tc.seg_ics = NULL;
    free(vm->tc.link_spaces);
    vm->tc.link_spaces = NULL;
    free(vm->tc.dormant);
    vm->tc.dormant = NULL;
    free(vm->tc.groups);
    vm->tc.groups = NULL;
    free(vm->tc.fault_sites);
    vm->tc.fault_sites = NULL;
    vm->tc.blocks = NULL;
    vm->tc.maps = NULL;
}

static unsigned tc_hash(uint32_t eip)
{
    return (eip ^ (eip >> 16)) & (TC_HASH_SIZE - 1);
}

static bool *dormant_flag(const struct volatile_link *l)
{
    return l->from ? &l->from->exits[l->exit].dormant : &l->to->ibl_dormant;
}

static void dormant_clear(struct tcache *tc)
{
    if (!tc->ndormant)
        return;
    for (uint32_t i = 0; i < tc->ndormant; i++)
        if (tc->dormant[i].l.to) /* NULL: woken, out of the pool already */
            *dormant_flag(&tc->dormant[i].l) = false;
    memset(tc->dormant_head, 0, sizeof(tc->dormant_head));
    tc->ndormant = 0;
}

static unsigned dormant_hash(uint32_t page)
{
    return (page >> 12) & (TC_DORMANT_HASH - 1);
}

static uint32_t block_page(const struct tblock *tb)
{
    return (tb->cs_base + tb->eip) & PAGE_MASK;
}

static void dormant_push(struct tcache *tc, const struct volatile_link *l)
{
    uint32_t *head = &tc->dormant_head[dormant_hash(block_page(l->to))];
    tc->dormant[tc->ndormant] = (struct dormant_link){ *l, *head };
    *head = ++tc->ndormant;
}

static void dormant_add(struct tcache *tc, const struct volatile_link *l)
{
    bool *flag = dormant_flag(l);
    if (*flag)
        return;
    if (tc->ndormant == TC_VOLATILE_MAX) {
        /* Full: squeeze out the woken ones; if that frees nothing, start over. */
        uint32_t n = tc->ndormant;
        memset(tc->dormant_head, 0, sizeof(tc->dormant_head));
        tc->ndormant = 0;
        for (uint32_t i = 0; i < n; i++)
            if (tc->dormant[i].l.to)
                dormant_push(tc, &tc->dormant[i].l);
        if (tc->ndormant == TC_VOLATILE_MAX)
            dormant_clear(tc);
    }
    *flag = true;
    dormant_push(tc, l);
}

/* No volatile links any more (every one undone, or its block gone). */
static void links_reset(struct tcache *tc)
{
    tc->nvolatile = 0;
    tc->volatile_free = 0;
    tc->ngroups = 0;
    tc->group_free = 0;
    memset(tc->group_hash, 0, sizeof(tc->group_hash));
}

void tcache_flush(struct vm *vm)
{
    struct tcache *tc = &vm->tc;
    tc->space_gen++;
    for (uint32_t i = 0; i < tc->nblocks; i++)
        for (unsigned p = 0; p < 2; p++)
            if (tc->blocks[i].phys[p] != ~0u)
                shadow_set_code(&vm->shadow, &vm->ram, tc->blocks[i].phys[p], false);
    tc->nblocks = 0;
    tc->nmaps = 0;
    tc->tc_next = tc->tc_start;
    memset(tc->hash, 0, sizeof(tc->hash));
    memset(tc->lpage_hash, 0, sizeof(tc->lpage_hash));
    memset(tc->ppage_hash, 0, sizeof(tc->ppage_hash));
    links_reset(tc);
    dormant_clear(tc);
    tc->nsites = 0;
    tc->nseg_ics = 0;
    tc->nsys_inline = 0;
    tcache_ibl_clear(vm);
    tc->stats.flushes++;
}

uint32_t tcache_add_callout_site(struct vm *vm, const struct tblock *tb, const struct dbt_insn *in,
                                 const uint8_t *bytes)
{
    struct tcache *tc = &vm->tc;
    if (tc->nsites == TC_CALLOUT_SITES)
        return 0;
    struct callout_site *s = &tc->sites[tc->nsites++];
    s->tb = tb;
    s->ic = NULL;
    s->next = NULL;
    s->in = *in;
    memcpy(s->bytes, bytes, sizeof(s->bytes));
    return tc->nsites;
}

struct callout_site *tcache_callout_site(struct vm *vm, uint32_t index)
{
    struct tcache *tc = &vm->tc;
    if (index == 0 || index > tc->nsites || !tc->sites[index - 1].tb->valid)
        return NULL;
    return &tc->sites[index - 1];
}

struct seg_ic *tcache_add_seg_ic(struct vm *vm)
{
    struct tcache *tc = &vm->tc;
    if (tc->nseg_ics == TC_CALLOUT_SITES)
        return NULL;
    struct seg_ic *ic = &tc->seg_ics[tc->nseg_ics++];
    memset(ic, 0, sizeof(*ic));
    return ic;
}

static void patch_u32(uint32_t addr, uint32_t v)
{
    memcpy((void *)(uintptr_t)addr, &v, 4);
}

static void patch_u16(uint32_t addr, uint16_t v)
{
    memcpy((void *)(uintptr_t)addr, &v, 2);
}

/* The GDT entry of `sel` into the cache's compares (and into desc), if
 * translated code can read it (a GDT selector, the entry in guest RAM below
 * the monitor and not on page 0); false (and the cache left to miss) if not. */
static bool seg_ic_entry(struct vm *vm, struct seg_ic *ic, uint16_t sel, uint32_t desc[2])
{
    const struct vcpu *c = &vm->cpu;
    uint32_t entry = c->gdtr.base + (sel & ~7u), gpa = entry, err;
    struct walk w;
    struct paging_mode m = vm_paging_mode(vm);
    if ((c->cr0 & CR0_PG) && paging_walk(&vm->ram, &m, entry, WALK_PROBE, &w, &err))
        gpa = w.gpa;
    else if (c->cr0 & CR0_PG)
        gpa = ~0u;
    if ((sel & 4) || (sel | 7u) > c->gdtr.limit || entry < PAGE_SIZE || entry > vm->mon_base - 8 ||
        (entry & PAGE_MASK) != ((entry + 7) & PAGE_MASK) || !guest_ram_contains(&vm->ram, gpa, 8) ||
        !vm_read_linear(vm, entry, desc, 8)) {
        patch_u32(ic->neg_sel, (uint32_t)-0x10000);
        return false;
    }
    patch_u32(ic->desc_addr[0], entry);
    patch_u32(ic->desc_addr[1], entry + 4);
    patch_u32(ic->neg_desc[0], -desc[0]);
    patch_u32(ic->neg_desc[1], -desc[1]);
    return true;
}

/* After the emulator loaded segment register `seg` through the site's
 * callout: make the inline code repeat that load. */
void tcache_seg_ic_patch(struct vm *vm, struct seg_ic *ic, unsigned seg)
{
    const struct vcpu *c = &vm->cpu;
    if (ic->other) {
        /* Two ways, neither of which matched: replace them in turn. */
        ic->victim_other = !ic->victim_other;
        if (!ic->victim_other)
            ic = ic->other;
    }
    uint16_t sel = c->seg[seg].sel;
    uint32_t desc[2];
    if (!seg_ic_entry(vm, ic, sel, desc))
        return;
    ic->cache = c->seg[seg];
    if (seg == SEG_GS) {
        patch_u16(ic->host_sel_imm2, c->blk->gs_alias);
        patch_u16(ic->host_sel_imm, c->blk->gs_alias_wrap);
    } else {
        patch_u32(ic->host_sel_imm, c->blk->host_sel[seg]);
        patch_u16(ic->host_sel_imm2, c->blk->host_sel[seg]);
    }
    patch_u16(ic->guest_sel_imm, sel);
    if (ic->ds_key_imm)
        patch_u32(ic->ds_key_imm, seg_ds_key(&c->seg[seg]));
    patch_u32(ic->neg_sel, -(uint32_t)sel);
}

/* After the emulator ran VERW of `sel` through the site's callout, with the
 * result `zf`: make the inline code give that result again. */
void tcache_verw_ic_patch(struct vm *vm, struct seg_ic *ic, uint16_t sel, bool zf)
{
    uint32_t desc[2];
    if (!seg_ic_entry(vm, ic, sel, desc))
        return;
    patch_u32(ic->zf_table, MON_BLOCK + VB_ZF_TABLES + (zf ? 256 : 0));
    patch_u32(ic->neg_sel, -(uint32_t)sel);
}

/* After the emulator ran an IRET through the site's callout: if it stayed
 * at CPL 0 in a flat-limit CS loaded from the GDT entry it names, with no
 * virtual EFLAGS bit but ID, make the inline code repeat it while
 * CS, its GDT entry, cs_desc and those bits are unchanged. */
void tcache_iret_ic_patch(struct vm *vm, struct seg_ic *ic)
{
    const struct vcpu *c = &vm->cpu;
    const struct seg_cache *cs = &c->seg[SEG_CS];
    patch_u32(ic->neg_sel, (uint32_t)-0x10000);
    uint32_t vflags = c->blk->vflags, desc[2];
    if ((cs->sel & 3) || cs->limit != 0xffffffffu || (vflags & ~EFLAGS_ID) ||
        !seg_ic_entry(vm, ic, cs->sel, desc) || desc[0] != c->blk->cs_desc[0] ||
        desc[1] != c->blk->cs_desc[1])
        return; /* neg_sel stays unmatchable */
    patch_u32(ic->iret_neg_cur[0], -(uint32_t)cs->sel);
    patch_u32(ic->iret_neg_cur[1], -desc[0]);
    patch_u32(ic->iret_neg_cur[2], -desc[1]);
    patch_u32(ic->iret_vflags_key[0], -vflags);
    patch_u32(ic->iret_vflags_key[1], -(vflags >> 16));
    patch_u32(ic->neg_sel, -(uint32_t)cs->sel);
}

/* The GDT moved or host selectors were reassigned: every inline segment
 * load goes back to the monitor until it is patched again. */
void tcache_seg_ic_reset(struct vm *vm)
{
    for (uint32_t i = 0; i < vm->tc.nseg_ics; i++)
        patch_u32(vm->tc.seg_ics[i].neg_sel, (uint32_t)-0x10000);
}

static unsigned lpage_hash(uint32_t lin)
{
    return (lin >> 12) & (TC_LPAGE_HASH - 1);
}

/* With paging on, a block is only valid where its linear pages still map
 * the frames it was translated from (the translation is keyed by both). */
static bool frames_match(struct vm *vm, const struct tblock *tb)
{
    if (!(vm->cpu.cr0 & CR0_PG))
        return true;
    uint32_t lin = tb->cs_base + tb->eip;
    for (unsigned p = 0; p < 2 && tb->phys[p] != ~0u; p++) {
        struct walk w;
        struct fault f;
        uint32_t at = p ? (lin & PAGE_MASK) + PAGE_SIZE : lin;
        if (!vm_translate(vm, at, vcpu_cpl(&vm->cpu) == 3 ? PFERR_U : 0, &w, &f) ||
            (w.gpa & PAGE_MASK) != tb->phys[p])
            return false;
    }
    return true;
}

struct tblock *tcache_lookup(struct vm *vm, uint32_t eip)
{
    const struct vcpu *c = &vm->cpu;
    for (struct tblock *tb = vm->tc.hash[tc_hash(eip)]; tb; tb = tb->hash_next)
        if (tb->eip == eip && tb->cs_base == c->seg[SEG_CS].base && tb->cpl == vcpu_cpl(c) &&
            tb->fpu_trap == !!(c->cr0 & (CR0_TS | CR0_EM)) && frames_match(vm, tb))
            return tb;
    return NULL;
}

static unsigned group_hash(uint32_t page, uint32_t frame)
{
    return ((page >> 12) ^ (frame >> 12) * 31u) % TC_LINK_GROUP_HASH;
}

static void group_release(struct tcache *tc, struct link_group *g)
{
    uint32_t gi = (uint32_t)(g - tc->groups) + 1;
    for (uint32_t *pp = &tc->group_hash[group_hash(g->page, g->frame)]; *pp;
         pp = &tc->groups[*pp - 1].hnext)
        if (*pp == gi) {
            *pp = g->hnext;
            break;
        }
    g->head = 0;
    g->count = 0;
    g->hnext = tc->group_free;
    tc->group_free = gi;
}

static void link_release(struct tcache *tc, uint32_t i)
{
    tc->volatile_links[i - 1].next = tc->volatile_free;
    tc->volatile_free = i;
}

/* Volatile link `l` is in place: its exit or IBL entry leads to its target. */
static bool link_live(const struct vm *vm, const struct volatile_link *l)
{
    if (l->from)
        return l->from->valid && l->from->exits[l->exit].to == l->to;
    return ibl_table(vm, 0)[l->ibl_index].tc == l->to->tc - TB_IBL_PROLOGUE;
}

/* Out of pool entries or groups: drop the listed links that were undone
 * since (INVLPG, invalidation); true if that freed any. */
static bool links_sweep(struct vm *vm)
{
    struct tcache *tc = &vm->tc;
    bool freed = false;
    for (uint32_t gi = 0; gi < tc->ngroups; gi++) {
        struct link_group *g = &tc->groups[gi];
        if (!g->head)
            continue;
        for (uint32_t *pp = &g->head; *pp;) {
            uint32_t i = *pp;
            struct volatile_link *l = &tc->volatile_links[i - 1];
            if (link_live(vm, l)) {
                pp = &l->next;
                continue;
            }
            *pp = l->next;
            g->count--;
            link_release(tc, i);
            freed = true;
        }
        if (!g->head)
            group_release(tc, g);
    }
    return freed;
}

/* The group of links into `to`, made if there is none; NULL if full. */
static struct link_group *group_of(struct tcache *tc, const struct tblock *to)
{
    uint32_t page = block_page(to), frame = to->phys[0];
    bool user = to->cpl == 3, spans = to->phys[1] != ~0u;
    uint32_t *head = &tc->group_hash[group_hash(page, frame)];
    for (uint32_t gi = *head; gi; gi = tc->groups[gi - 1].hnext) {
        struct link_group *g = &tc->groups[gi - 1];
        if (g->page == page && g->frame == frame && g->user == user && g->spans == spans)
            return g;
    }
    uint32_t gi;
    if (tc->group_free) {
        gi = tc->group_free;
        tc->group_free = tc->groups[gi - 1].hnext;
    } else if (tc->ngroups < TC_LINK_GROUPS) {
        gi = ++tc->ngroups;
    } else {
        return NULL;
    }
    struct link_group *g = &tc->groups[gi - 1];
    *g = (struct link_group){ page, frame, user, spans, 0, 0, *head };
    *head = gi;
    return g;
}

static void unchain_exit(struct tblock *from, unsigned exit);

/* Undo the links of group `g` that are in place (into the dormant pool, and
 * into `saved` if not NULL) and free it. */
static void group_undo(struct vm *vm, struct link_group *g, struct link_space *saved)
{
    struct tcache *tc = &vm->tc;
    for (uint32_t i = g->head, next; i; i = next) {
        struct volatile_link *l = &tc->volatile_links[i - 1];
        next = l->next;
        if (link_live(vm, l)) {
            if (saved && saved->n < TC_LINK_SPACE_MAX && l->age < TC_LINK_MAX_AGE)
                saved->links[saved->n++] = *l;
            if (l->from)
                unchain_exit(l->from, l->exit);
            else
                ibl_table(vm, 0)[l->ibl_index] = (struct ibl_entry){ 0, tc->stub_ibl_empty };
            dormant_add(tc, l);
        }
        link_release(tc, i);
    }
    group_release(tc, g);
}

static void add_volatile(struct vm *vm, struct volatile_link l)
{
    struct tcache *tc = &vm->tc;
    tc->last_volatile = 0;
    bool room = tc->volatile_free || tc->nvolatile < TC_VOLATILE_MAX || links_sweep(vm);
    struct link_group *g = room ? group_of(tc, l.to) : NULL;
    if (room && !g && links_sweep(vm))
        g = group_of(tc, l.to);
    if (!g) {
        /* Full of links in place: undo them all, as a CR3 write to tables
         * that map nothing the same would (they wait in the dormant pool). */
        for (uint32_t gi = 0; gi < tc->ngroups; gi++)
            if (tc->groups[gi].head)
                group_undo(vm, &tc->groups[gi], NULL);
        g = group_of(tc, l.to);
    }
    uint32_t i;
    if (tc->volatile_free) {
        i = tc->volatile_free;
        tc->volatile_free = tc->volatile_links[i - 1].next;
    } else {
        i = ++tc->nvolatile;
    }
    l.next = g->head;
    tc->volatile_links[i - 1] = l;
    g->head = i;
    g->count++;
    tc->last_volatile = i;
}

struct tblock *tcache_alloc_block(struct vm *vm, uint32_t worst_bytes, unsigned worst_maps)
{
    struct tcache *tc = &vm->tc;
    if (tc->nblocks == tc->max_blocks || tc->tc_end - tc->tc_next < worst_bytes ||
        tc->max_maps - tc->nmaps < worst_maps)
        tcache_flush(vm);
    struct tblock *tb = &tc->blocks[tc->nblocks];
    memset(tb, 0, sizeof(*tb));
    tb->tc = tc->tc_next + TB_IBL_PROLOGUE;
    tb->map = &tc->maps[tc->nmaps];
    tb->phys[0] = tb->phys[1] = ~0u;
    return tb;
}

void tcache_commit_block(struct vm *vm, struct tblock *tb, uint32_t end)
{
    struct tcache *tc = &vm->tc;
    tc->nblocks++;
    tc->nmaps += tb->nmap;
    uint32_t lin = tb->cs_base + tb->eip;
    shadow_note_code_page(&vm->shadow, lin);
    if (tb->phys[1] != ~0u)
        shadow_note_code_page(&vm->shadow, (lin & PAGE_MASK) + PAGE_SIZE);
    tc->tc_next = (end + 15) & ~15u;
    tb->valid = true;
    unsigned h = tc_hash(tb->eip);
    tb->hash_next = tc->hash[h];
    tc->hash[h] = tb;
    unsigned lh = lpage_hash(tb->cs_base + tb->eip);
    tb->lpage_next = tc->lpage_hash[lh];
    tc->lpage_hash[lh] = tb;
    for (unsigned p = 0; p < 2; p++)
        if (tb->phys[p] != ~0u) {
            unsigned ph = lpage_hash(tb->phys[p]);
            if (p == 0 || ph != lpage_hash(tb->phys[0])) { /* once per slot */
                tb->ppage_next[p] = tc->ppage_hash[ph];
                tc->ppage_hash[ph] = tb;
            }
            shadow_set_code(&vm->shadow, &vm->ram, tb->phys[p], true);
        }
    tc->stats.blocks_translated++;
}

static void patch_rel32(uint32_t slot, uint32_t target)
{
    int32_t rel = (int32_t)(target - (slot + 4));
    memcpy((void *)(uintptr_t)slot, &rel, 4);
}

void tcache_chain(struct vm *vm, struct tblock *from, unsigned exit, struct tblock *to)
{
    struct tb_exit *e = &from->exits[exit];
    if (e->to || !from->valid || !to->valid)
        return;
    if (e->ic_key) {
        uint32_t key = -to->eip;
        memcpy((void *)(uintptr_t)e->ic_key, &key, 4);
        e->target_eip = to->eip;
        patch_rel32(e->ic_miss, e->ic_generic); /* misses look up the IBL from now on */
    }
    /* Between plain blocks the poll store is skipped: the timer signal
     * takes execution out of a plain block directly (signal.c,
     * plain_block_exit), so cycles of them cannot run on unpolled. */
    patch_rel32(e->slot, from->plain && to->plain ? to->tc + TB_POLL_BYTES : to->tc);
    e->to = to;
    /* A jump within the source's first linear page lands on a frame the
     * source's own validity vouches for; global-to-global survives CR3
     * writes as global TLB entries do; anything else is volatile. */
    uint32_t from_page = (from->cs_base + from->eip) & PAGE_MASK;
    bool same_page = ((to->cs_base + to->eip) & PAGE_MASK) == from_page && to->phys[1] == ~0u;
    if ((vm->cpu.cr0 & CR0_PG) && !same_page && !(from->global && to->global))
        add_volatile(vm, (struct volatile_link){ from, (uint8_t)exit, 0, to, 0, 0 });
    e->in_next = to->in_head;
    e->in_next_exit = to->in_head_exit;
    e->in_prev = NULL;
    if (to->in_head) {
        struct tb_exit *next = &to->in_head->exits[to->in_head_exit];
        next->in_prev = from;
        next->in_prev_exit = (uint8_t)exit;
    }
    to->in_head = from;
    to->in_head_exit = (uint8_t)exit;
    vm->tc.stats.chained_exits++;
}

static void ibl_forget(struct vm *vm, const struct tblock *tb)
{
    if (tb->cpl != 0 && tb->cpl != 3)
        return;
    struct ibl_entry *e = &ibl_table(vm, tb->cpl == 3)[tb->eip & 0xffff];
    if (e->tc == tb->tc - TB_IBL_PROLOGUE)
        *e = (struct ibl_entry){ 0, vm->tc.stub_ibl_empty };
}

void tcache_ibl_insert(struct vm *vm, const struct tblock *tb)
{
    if (tb->cpl != 0 && tb->cpl != 3)
        return;
    if (!tcache_ibl_valid(vm))
        tcache_ibl_clear(vm);
    unsigned cls = tb->cpl == 3;
    struct ibl_entry *e = &ibl_table(vm, cls)[tb->eip & 0xffff];
    if (e->tc == tb->tc - TB_IBL_PROLOGUE)
        return; /* there already (and in the volatile list if it must be) */
    *e = (struct ibl_entry){ -tb->eip, tb->tc - TB_IBL_PROLOGUE };
    if ((vm->cpu.cr0 & CR0_PG) && !tb->global)
        add_volatile(vm, (struct volatile_link){ NULL, 0, cls * MON_IBL_ENTRIES + (tb->eip & 0xffff),
                                                 (struct tblock *)tb, 0, 0 });
}

static void unchain_exit(struct tblock *from, unsigned exit)
{
    struct tb_exit *e = &from->exits[exit];
    struct tblock *to = e->to;
    if (!to)
        return;
    patch_rel32(e->slot, e->stub);
    if (e->ic_key)
        patch_rel32(e->ic_miss, e->ic_first); /* the monitor sets the cache again */
    e->to = NULL;
    /* Out of the target's incoming list. */
    if (e->in_prev) {
        struct tb_exit *prev = &e->in_prev->exits[e->in_prev_exit];
        prev->in_next = e->in_next;
        prev->in_next_exit = e->in_next_exit;
    } else {
        to->in_head = e->in_next;
        to->in_head_exit = e->in_next_exit;
    }
    if (e->in_next) {
        struct tb_exit *next = &e->in_next->exits[e->in_next_exit];
        next->in_prev = e->in_prev;
        next->in_prev_exit = e->in_prev_exit;
    }
}

/* The saved links of the address space at `cr3`, or the slot to reuse for it
 * (n = 0) if `create`; NULL if none. */
static struct link_space *link_space(struct tcache *tc, uint32_t cr3, bool create)
{
    struct link_space *victim = &tc->link_spaces[0];
    for (unsigned i = 0; i < TC_LINK_SPACES; i++) {
        struct link_space *s = &tc->link_spaces[i];
        if (s->last_used && s->cr3 == cr3 && s->flushes == tc->stats.flushes)
            return s;
        if (s->last_used < victim->last_used)
            victim = s;
    }
    if (!create)
        return NULL;
    victim->cr3 = cr3;
    victim->n = 0;
    return victim;
}

/* The last page a restore found mapped as a block needs it. */
struct page_memo {
    uint32_t page, frame;
    bool user, valid;
};

/* The loaded tables map linear `page` to `frame`, by a walk that changes
 * nothing and trusts only entries the guest has used (A set), as a TLB fill
 * could. */
static bool page_maps(struct vm *vm, const struct paging_mode *m, uint32_t page, uint32_t frame,
                      bool user)
{
    struct walk w;
    uint32_t err;
    return paging_walk(&vm->ram, m, page, WALK_PROBE | (user ? PFERR_U : 0), &w, &err) &&
           (w.gpa & PAGE_MASK) == frame;
}

/* A block still valid where it is in the address space just loaded: its
 * pages map the frames it came from. */
static bool block_mapped(struct vm *vm, const struct paging_mode *m, const struct tblock *tb,
                         struct page_memo *memo)
{
    if (!tb->valid)
        return false;
    uint32_t lin = tb->cs_base + tb->eip;
    bool user = tb->cpl == 3;
    for (unsigned p = 0; p < 2 && tb->phys[p] != ~0u; p++) {
        uint32_t page = (lin & PAGE_MASK) + p * PAGE_SIZE;
        if (memo->valid && memo->page == page && memo->frame == tb->phys[p] && memo->user == user)
            continue;
        if (!page_maps(vm, m, page, tb->phys[p], user))
            return false;
        *memo = (struct page_memo){ page, tb->phys[p], user, true };
    }
    return true;
}

/* Make link `l` again if its blocks still allow it (the target's frames
 * already checked); true if it is in the volatile list again, with `age`. */
static bool relink(struct vm *vm, const struct volatile_link *l, uint8_t age)
{
    struct tcache *tc = &vm->tc;
    tc->last_volatile = 0;
    if (!l->from) {
        /* As the run loop inserts: for the CS base and CR0.TS/EM the
         * tables hold now. */
        if (l->to->cs_base == vm->cpu.seg[SEG_CS].base &&
            l->to->fpu_trap == !!(vm->cpu.cr0 & (CR0_TS | CR0_EM)))
            tcache_ibl_insert(vm, l->to);
    } else if (l->from->valid && !l->from->exits[l->exit].to) {
        tcache_chain(vm, l->from, l->exit, l->to);
    }
    if (!tc->last_volatile)
        return false;
    tc->volatile_links[tc->last_volatile - 1].age = age;
    return true;
}

/*
 * The guest switched address space (CR3 write, after shadow_switch): undo the
 * links into pages the new tables do not map as the old ones did,
 * remembering them for when the guest comes back to the old space, and make
 * again those of the new one whose target blocks it still maps as before.  A
 * context switch would otherwise pay an exit for every chain and
 * indirect-branch entry it had used.  Links into pages both map the same way
 * stay, as a TLB refilled from those entries would lead to the same frames.
 */
void tcache_address_space_changed(struct vm *vm, uint32_t old_cr3, uint32_t new_cr3)
{
    struct tcache *tc = &vm->tc;
    struct paging_mode m = vm_paging_mode(vm);
    tc->space_gen++;
    struct link_space *saved = NULL;
    if (old_cr3 != new_cr3) {
        saved = link_space(tc, old_cr3, true);
        saved->flushes = tc->stats.flushes;
        saved->last_used = ++tc->link_clock;
        saved->n = 0;
    }
    for (uint32_t gi = 0; gi < tc->ngroups; gi++) {
        struct link_group *g = &tc->groups[gi];
        if (!g->head)
            continue;
        if (!g->spans && page_maps(vm, &m, g->page, g->frame, g->user))
            tc->stats.links_kept += g->count;
        else
            group_undo(vm, g, saved);
    }

    struct link_space *s = old_cr3 != new_cr3 ? link_space(tc, new_cr3, false) : NULL;
    if (!s)
        return;
    s->last_used = ++tc->link_clock;
    struct page_memo memo = { 0 };
    uint64_t flushes = tc->stats.flushes;
    for (uint32_t i = 0; i < s->n && tc->stats.flushes == flushes; i++) {
        const struct volatile_link *l = &s->links[i];
        if (block_mapped(vm, &m, l->to, &memo) && relink(vm, l, (uint8_t)(l->age + 1)))
            tc->stats.links_restored++;
    }
}

/*
 * The monitor found `to` for the guest (after an unchained exit or IBL miss):
 * the address space loaded maps its page, so make again the dormant links
 * into that page whose target blocks it maps as before (a walk each, memoized
 * per page).  Each dormant link is tried once.
 */
void tcache_wake_links(struct vm *vm, const struct tblock *to)
{
    struct tcache *tc = &vm->tc;
    if (!tc->ndormant || to->global)
        return;
    uint32_t page = block_page(to);
    struct paging_mode m = vm_paging_mode(vm);
    struct page_memo memo = { 0 };
    uint64_t flushes = tc->stats.flushes;
    for (uint32_t *pp = &tc->dormant_head[dormant_hash(page)]; *pp && tc->stats.flushes == flushes;) {
        struct dormant_link *d = &tc->dormant[*pp - 1];
        if (block_page(d->l.to) != page) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        *dormant_flag(&d->l) = false;
        struct volatile_link l = d->l;
        d->l.to = NULL; /* woken: a hole until the pool is squeezed */
        if (block_mapped(vm, &m, l.to, &memo) && relink(vm, &l, 0))
            tc->stats.links_woken++;
    }
}

/* A full TLB flush (CR4.PGE toggled): every chain and IBL entry goes, the
 * translations stay (their frames are checked again at lookup). */
void tcache_unchain_all(struct vm *vm)
{
    struct tcache *tc = &vm->tc;
    tc->space_gen++;
    for (uint32_t i = 0; i < tc->nblocks; i++)
        for (unsigned e = 0; e < tc->blocks[i].nexits; e++)
            unchain_exit(&tc->blocks[i], e);
    links_reset(tc);
    dormant_clear(tc);
    tcache_ibl_clear(vm);
}

/* INVLPG: nothing may reach blocks on that linear page without a lookup. */
void tcache_invalidate_linear_page(struct vm *vm, uint32_t lin)
{
    bool any = false;
    lin &= PAGE_MASK;
    for (struct tblock *tb = vm->tc.lpage_hash[lpage_hash(lin)]; tb; tb = tb->lpage_next) {
        uint32_t start = (tb->cs_base + tb->eip) & PAGE_MASK;
        if (!tb->valid || (start != lin && !(tb->phys[1] != ~0u && start + PAGE_SIZE == lin)))
            continue;
        while (tb->in_head)
            unchain_exit(tb->in_head, tb->in_head_exit);
        ibl_forget(vm, tb);
        any = true;
    }
    /* Blocks starting on the page before and spilling onto this one. */
    for (struct tblock *tb = vm->tc.lpage_hash[lpage_hash(lin - PAGE_SIZE)]; tb; tb = tb->lpage_next)
        if (tb->valid && tb->phys[1] != ~0u && ((tb->cs_base + tb->eip) & PAGE_MASK) + PAGE_SIZE == lin) {
            while (tb->in_head)
                unchain_exit(tb->in_head, tb->in_head_exit);
            ibl_forget(vm, tb);
            any = true;
        }
    /* Only a lookup that could have found one of these gives another answer
     * now (a data page's INVLPG leaves the callout's next block as it was). */
    if (any)
        vm->tc.space_gen++;
}

static void tblock_invalidate(struct vm *vm, struct tblock *tb)
{
    struct tcache *tc = &vm->tc;
    tb->valid = false;
    /* Out of the hash chain. */
    for (struct tblock **pp = &tc->hash[tc_hash(tb->eip)]; *pp; pp = &(*pp)->hash_next)
        if (*pp == tb) {
            *pp = tb->hash_next;
            break;
        }
    ibl_forget(vm, tb);
    /* Unchain everything that jumps here (back to the stubs), and our own
     * chains (the code stays until the next flush, for a block finishing
     * its current instruction, but nothing may list it as a source). */
    while (tb->in_head)
        unchain_exit(tb->in_head, tb->in_head_exit);
    for (unsigned i = 0; i < tb->nexits; i++)
        unchain_exit(tb, i);
    tc->stats.invalidations++;
}

void tcache_invalidate_phys(struct vm *vm, uint32_t gpa)
{
    struct tcache *tc = &vm->tc;
    gpa &= PAGE_MASK;
    /* A block is on the list of its first frame's hash slot through
     * ppage_next[0], and of its second frame's (if another) through [1]. */
    for (struct tblock *tb = tc->ppage_hash[lpage_hash(gpa)], *next; tb; tb = next) {
        unsigned p = lpage_hash(tb->phys[0]) == lpage_hash(gpa) ? 0 : 1;
        next = tb->ppage_next[p];
        if (tb->valid && (tb->phys[0] == gpa || tb->phys[1] == gpa))
            tblock_invalidate(vm, tb);
    }
    shadow_set_code(&vm->shadow, &vm->ram, gpa, false);
}

/* ---- fault sites (dbt.h) ---- */

/* The physical address of guest instruction eip of tb, ~0u if not RAM. */
static uint32_t insn_phys(const struct tblock *tb, uint32_t eip)
{
    uint32_t start = tb->cs_base + tb->eip, lin = tb->cs_base + eip;
    uint32_t frame = (lin & PAGE_MASK) == (start & PAGE_MASK) ? tb->phys[0] : tb->phys[1];
    return frame == ~0u ? ~0u : frame | (lin & ~PAGE_MASK);
}

/* The site of gpa; with `add`, a free slot (or the least faulting unchecked
 * one of its probes) claimed for it if it has none.  NULL if none. */
static struct fault_site *fault_site(const struct tcache *tc, uint32_t gpa, bool add)
{
    uint32_t h = (gpa * 0x9e3779b1u) >> 20;
    struct fault_site *victim = NULL;
    for (unsigned i = 0; i < TC_FAULT_PROBES; i++) {
        struct fault_site *s = &tc->fault_sites[(h + i) & (TC_FAULT_SITES - 1)];
        if (s->gpa1 == gpa + 1)
            return s;
        if (!s->checked && !s->never &&
            (!victim || (victim->gpa1 && (!s->gpa1 || s->faults < victim->faults))))
            victim = s;
    }
    if (!add || !victim)
        return NULL;
    *victim = (struct fault_site){ .gpa1 = gpa + 1 };
    return victim;
}

void tcache_note_fault(struct vm *vm, struct tblock *tb, uint32_t eip)
{
    struct tcache *tc = &vm->tc;
    uint32_t gpa = insn_phys(tb, eip);
    struct fault_site *s;
    if (!tc->page_checks || !tb->valid || gpa == ~0u || !(s = fault_site(tc, gpa, true)) ||
        s->checked || s->never || ++s->faults < TC_FAULT_HOT)
        return;
    s->checked = true;
    tc->stats.sites_checked++;
    /* Every block holding the instruction is translated again, with the
     * check, at its next lookup.  Only now: one that cannot have it (no
     * callout site left, say) then faults without being retranslated. */
    for (struct tblock *b = tc->ppage_hash[lpage_hash(gpa & PAGE_MASK)], *next; b; b = next) {
        next = b->ppage_next[lpage_hash(b->phys[0]) == lpage_hash(gpa & PAGE_MASK) ? 0 : 1];
        for (unsigned i = 0; b->valid && i < b->nmap; i++)
            if (insn_phys(b, b->eip + b->map[i].eip_off) == gpa)
                tblock_invalidate(vm, b);
    }
}

bool tcache_site_checked(const struct vm *vm, const struct tblock *tb, uint32_t eip)
{
    uint32_t gpa = insn_phys(tb, eip);
    const struct fault_site *s = NULL;
    if (vm->tc.page_checks && gpa != ~0u)
        s = fault_site(&vm->tc, gpa, false);
    return s && s->checked;
}

void tcache_uncheck_site(struct vm *vm, const struct tblock *tb, uint32_t eip)
{
    uint32_t gpa = insn_phys(tb, eip);
    struct fault_site *s = gpa == ~0u ? NULL : fault_site(&vm->tc, gpa, true);
    if (!s)
        return;
    s->checked = false;
    s->never = true;
    vm->tc.stats.sites_unchecked++;
    tcache_invalidate_phys(vm, gpa);
}

struct tblock *tcache_find_by_tc(struct vm *vm, uint32_t addr)
{
    struct tcache *tc = &vm->tc;
    uint32_t lo = 0, hi = tc->nblocks;
    if (addr < tc->tc_start || addr >= tc->tc_next)
        return NULL;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (tc->blocks[mid].tc <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? &tc->blocks[lo - 1] : NULL;
}

const struct tb_map *tcache_map_tc(const struct tblock *tb, uint32_t addr)
{
    if (addr < tb->tc || addr >= tb->tc_end || !tb->nmap)
        return NULL;
    uint32_t off = addr - tb->tc;
    const struct tb_map *best = &tb->map[0];
    for (unsigned i = 1; i < tb->nmap && tb->map[i].tc_off <= off; i++)
        best = &tb->map[i];
    return best;
}
