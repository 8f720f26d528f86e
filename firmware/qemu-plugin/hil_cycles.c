/*
 * hil_cycles: a QEMU 7.2 TCG plugin that counts instructions exactly and
 * estimates the cycles a Cortex-M or RV32 core would take to run them.
 *
 * Built by the host (harness/timing/plugin.py) with `cc -shared -fPIC -O2`;
 * it declares the few plugin API functions it uses itself (Debian ships no
 * plugin header) and refuses to load unless QEMU offers plugin API version 1.
 * Loaded as `-plugin <so>,config=<file>`; the config file (written by the
 * host, one directive per line) holds everything the model needs:
 *
 *   output <path>                       where the records go (the rest of the line: spaces allowed)
 *   isa thumb|rv32
 *   cost <class> <millicycles>          one line per class; `default` for the rest
 *   penalty <millicycles>               a taken branch / PC write
 *   dual <class> / dual_second <mc>     Cortex-M7 dual issue
 *   region <name> <start> <size> <ws> <line_bytes> <prefetch 0|1> <fetch 0|1> <load 0|1>
 *          <lines> <ways> <line_bytes> of the instruction cache, then of the data cache (0 0 0: none)
 *   marker <id> <address>
 *   trace <class>                       print each translated instruction of that class to stderr
 *                                       (address and halfwords: to check the decoder's coverage)
 *
 * Model (what each executed instruction costs, in millicycles):
 * - its class cost from the core table; LDM/STM/VLDM/VSTM add their
 *   per-register cost x registers; a single load/store right after another
 *   one is `load_pipelined`/`store_pipelined` (also where straight-line
 *   code falls through from one block into the next); with a
 *   dual-issue rule, the second of two consecutive instructions both in the
 *   dual classes (not both memory accesses) costs `dual_second` instead.
 * - a block that ends in a branch or a PC write pays `penalty` when the
 *   next block executed does not start at its fall-through address
 *   (decided at run time, so conditional branches are charged when taken).
 * - instruction fetch from a region with `fetch 1`: the block's flash lines
 *   are looked up in order; a line in the instruction cache (if any; LRU,
 *   its own line size) or the line just fetched costs 0; the line after the one just
 *   fetched, with prefetch, costs max(0, wait_states + 1 - cycles spent in
 *   that previous line); any other line costs wait_states. A missed line is
 *   then cached. Fetch costs are charged with the block's instructions, for
 *   the lines of the instructions that ran.
 * - loads from a region with `load 1` (memory callbacks, registered only
 *   then): wait_states, unless the line is the last one loaded from there or
 *   is in the region's data cache (if any).
 * Costs are static per block; execution adds them in one callback per block.
 * Counts are charged for the previous block when the next one starts, so a
 * block left early (QEMU re-executes an I/O instruction alone under -icount)
 * is charged only for the instructions it ran: the counts stay exact.
 *
 * Records (text, cumulative since boot, one write() each so a line is in the
 * file before the guest's next UART byte): `M <marker> <insns> <cycles>` when
 * the guest reaches a marker address; at exit `X <insns> <cycles>`,
 * `H <class> <count>` (dynamic class histogram) and `U <count>` (instructions
 * no rule decoded, charged `default`). A config the plugin rejects is an
 * `E <message>` line in the output (when known) and on stderr, and QEMU exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the QEMU plugin API (version 1, QEMU 7.2), declared here ---------- */
typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef uint32_t qemu_plugin_meminfo_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                                          void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);

#define EXPORT __attribute__((visibility("default")))
#ifndef API_VERSION
#define API_VERSION 1 /* the API this file is written against; -DAPI_VERSION=n only to test the refusal */
#endif
EXPORT int qemu_plugin_version = API_VERSION;

/* ---- instruction classes (the contract's names, docs: harness/timing) -- */
#define CLASSES(X)                                                                                                    \
    X(default) X(alu) X(branch) X(load) X(store) X(load_pipelined) X(store_pipelined) X(load_pair) X(store_pair)      \
    X(ldm) X(ldm_per_reg) X(stm) X(stm_per_reg) X(mul) X(mla) X(mul_long) X(mla_long) X(dsp_mul) X(dsp_mac)           \
    X(dsp_mac_long) X(simd) X(sat) X(div) X(it) X(fp_alu) X(fp_mul) X(fp_mac) X(fp_div) X(fp_sqrt) X(fp_load)         \
    X(fp_store) X(fp_ldm) X(fp_ldm_per_reg) X(fp_stm) X(fp_stm_per_reg) X(fp_move) X(fp64_alu) X(fp64_mul)            \
    X(fp64_mac) X(fp64_div) X(mve_alu) X(mve_mul) X(mve_mac) X(mve_load) X(mve_store) X(mve_other) X(lob) X(system)   \
    X(barrier) X(jump) X(mulh) X(csr) X(atomic)
#define AS_ENUM(n) C_##n,
#define AS_NAME(n) #n,
enum cls { CLASSES(AS_ENUM) N_CLASSES };
static const char *const class_names[N_CLASSES] = {CLASSES(AS_NAME)};

/* ---- configuration ------------------------------------------------------ */
#define MAX_REGIONS 8
#define MAX_MARKERS 64
#define MAX_WAYS 64

typedef struct {
    uint32_t sets, ways;
    uint64_t line_bytes;
    uint64_t *tags; /* sets x ways, most recent first; tag+1 (0 = empty); NULL: no cache */
} cache;

typedef struct {
    uint64_t start, size;
    int64_t ws_mc; /* wait states, millicycles */
    uint64_t line_bytes;
    int prefetch, fetch, load;
    cache icache, dcache;
    uint64_t last_line;      /* fetch: last flash line read, +1 (0 = none) */
    int64_t last_line_exec;  /* fetch: static cycles executed in that line */
    uint64_t last_load_line; /* loads: last line read, +1 */
} region;

static int isa_rv32;
static int64_t cost_mc[N_CLASSES];
static int cost_given[N_CLASSES];
static int64_t penalty_mc;
static int dual_in[N_CLASSES];
static int have_dual;
static int64_t dual_second_mc;
static region regions[MAX_REGIONS];
static int n_regions, any_load_region;
static uint64_t marker_addr[MAX_MARKERS];
static int marker_id[MAX_MARKERS];
static int n_markers;
static int out_fd = -1;
static int trace_cls = -1;

/* ---- run-time state (M-profile and RV32 virt: one vCPU) ------------------ */
typedef struct block {
    uint64_t vaddr, end; /* end: the fall-through address */
    uint32_t n;
    int pc_write_last;
    int has_target;  /* the last instruction is a direct branch to `target` */
    int ends_single_mem;      /* the last instruction is a single load/store */
    int64_t first_pipe_gain;  /* what the first instruction saves when it follows one in the block before */
    uint64_t target;
    uint64_t execs; /* whole executions (the histogram at exit) */
    uint32_t *off;  /* per instruction: offset from vaddr */
    int64_t *cum;   /* per instruction: static cost of instructions 0..i, millicycles */
    uint8_t *cls;
    region *fetch_region;
    uint32_t n_lines;
    uint64_t *line;       /* flash line index of each line the block touches, in order */
    int64_t *line_exec;   /* static cost of the instructions starting in that line */
    uint32_t *line_first; /* the first instruction that touches that line */
    struct block *next_all;
} block;

typedef struct {
    block *b;
    uint32_t idx;
    int id;
} marker_site;

static block *all_blocks;
static block *prev;
static uint64_t tot_insns, hist[N_CLASSES];
static int64_t tot_mc;

static void emit(const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (out_fd >= 0 && n > 0) {
        if ((size_t)n >= sizeof line) { /* cut short: still one whole line */
            n = sizeof line - 1;
            line[n - 1] = '\n';
        }
        ssize_t w = write(out_fd, line, (size_t)n);
        (void)w;
    }
}

static int reject(const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "hil_cycles: %s\n", msg);
    emit("E %s\n", msg);
    return -1;
}

static uint64_t cycles_of(int64_t mc) { return (uint64_t)((mc + 500) / 1000); }

/* ---- Thumb decoder (ARMv6-M .. ARMv8.1-M) --------------------------------- */
typedef struct {
    int cls;
    int nregs;  /* registers moved by LDM/STM/VLDM/VSTM */
    int pc_write;
    int known;
    int has_target; /* a direct branch: target = its address + offset */
    int64_t offset;
} decoded;

static int64_t sext(uint64_t v, int bits) { return (int64_t)(v << (64 - bits)) >> (64 - bits); }

static int popcount16(unsigned v) { return __builtin_popcount(v & 0xffffu); }

static decoded t16(unsigned h)
{
    decoded d = {C_alu, 0, 0, 1, 0, 0};
    unsigned top5 = h >> 11;
    if (top5 <= 0x07) /* shift, add, sub, mov, cmp (immediate) */
        return d;
    if ((h >> 10) == 0x10) { /* data processing */
        if (((h >> 6) & 0xf) == 0xd)
            d.cls = C_mul;
        return d;
    }
    if ((h >> 10) == 0x11) { /* special data, BX/BLX */
        unsigned op = (h >> 8) & 3;
        unsigned rd = ((h >> 4) & 8) | (h & 7);
        if (op == 3) {
            d.cls = C_branch;
            d.pc_write = 1;
        } else if (op != 1 && rd == 15) {
            d.pc_write = 1;
        }
        return d;
    }
    if (top5 == 0x09) { /* LDR literal */
        d.cls = C_load;
        return d;
    }
    if ((h >> 12) == 0x5) { /* load/store register offset */
        unsigned op = (h >> 9) & 7;
        d.cls = op < 3 ? C_store : C_load;
        return d;
    }
    if ((h >> 13) == 0x3 || (h >> 12) == 0x8 || (h >> 12) == 0x9) { /* LDR/STR imm, SP-relative */
        d.cls = (h >> 11) & 1 ? C_load : C_store;
        return d;
    }
    if ((h >> 12) == 0xa) /* ADR, ADD SP */
        return d;
    if ((h >> 12) == 0xb) { /* miscellaneous */
        unsigned op = (h >> 5) & 0x7f;
        if ((op & 0x78) == 0x08 || (op & 0x78) == 0x18 || (op & 0x78) == 0x48 || (op & 0x78) == 0x58) {
            d.cls = C_branch; /* CBZ/CBNZ */
            d.pc_write = 1;
            d.has_target = 1;
            d.offset = 4 + (((h >> 9) & 1) << 6 | ((h >> 3) & 0x1f) << 1);
        } else if ((op & 0x70) == 0x20) { /* PUSH */
            d.cls = C_stm;
            d.nregs = popcount16(h & 0x1ff);
        } else if ((op & 0x70) == 0x60) { /* POP */
            d.cls = C_ldm;
            d.nregs = popcount16(h & 0x1ff);
            d.pc_write = (h >> 8) & 1;
        } else if ((op & 0x78) == 0x70) { /* BKPT */
            d.cls = C_system;
        } else if ((op & 0x78) == 0x78) { /* IT, hints */
            d.cls = (h & 0xf) ? C_it : C_system;
        } else if (op == 0x33) { /* CPS */
            d.cls = C_system;
        }
        return d;
    }
    if ((h >> 12) == 0xc) { /* STM/LDM */
        d.cls = (h >> 11) & 1 ? C_ldm : C_stm;
        d.nregs = popcount16(h & 0xff);
        return d;
    }
    if ((h >> 12) == 0xd) { /* Bcc, UDF, SVC */
        unsigned cond = (h >> 8) & 0xf;
        if (cond >= 0xe) {
            d.cls = C_system;
        } else {
            d.cls = C_branch;
            d.pc_write = 1;
            d.has_target = 1;
            d.offset = 4 + sext((h & 0xff) << 1, 9);
        }
        return d;
    }
    if (top5 == 0x1c) { /* B */
        d.cls = C_branch;
        d.pc_write = 1;
        d.has_target = 1;
        d.offset = 4 + sext((h & 0x7ff) << 1, 12);
        return d;
    }
    d.cls = C_default;
    d.known = 0;
    return d;
}

static decoded t32_coproc(unsigned a, unsigned b)
{
    decoded d = {C_alu, 0, 0, 1, 0, 0};
    unsigned cp = (b >> 8) & 0xf;
    int fp = (cp & 0xe) == 0xa && (a & 0xef00) != 0xef00; /* 0xEF/0xFF: vector data processing */
    int dbl = cp == 0xb;
    unsigned op1 = (a >> 4) & 0x3f;
    if ((op1 & 0x3e) == 0x04) { /* 64-bit transfers */
        d.cls = fp ? C_fp_move : C_mve_other;
        return d;
    }
    if ((op1 & 0x20) == 0) { /* load/store */
        int load = op1 & 1;
        if (!fp) {
            d.cls = load ? C_mve_load : C_mve_store;
        } else if ((op1 & 0x12) == 0x10) { /* VLDR/VSTR: P=1, W=0 */
            d.cls = load ? C_fp_load : C_fp_store;
        } else {
            d.cls = load ? C_fp_ldm : C_fp_stm;
            d.nregs = dbl ? (int)(b & 0xff) / 2 : (int)(b & 0xff);
        }
        return d;
    }
    if ((op1 & 0x30) == 0x20 && fp) {
        if (b & 0x10) { /* VMOV core<->FP, VMRS/VMSR; VDUP (cp 11, bit 23 set, core to vector) fills a Q register */
            d.cls = dbl && (a & 0x0090) == 0x0080 ? C_mve_other : C_fp_move;
            return d;
        }
        if (a & 0x1000) { /* v8 FP: VSEL, VMAXNM, VRINT, VCVT{A,N,P,M} */
            d.cls = dbl ? C_fp64_alu : C_fp_alu;
            return d;
        }
        unsigned o = ((a >> 5) & 4) | ((a >> 4) & 3);
        int c;
        switch (o) {
        case 0: case 1: case 5: case 6: c = 2; break; /* VMLA/VMLS, VNMLA/VNMLS, VFNMA/S, VFMA/S */
        case 2: c = 1; break;                          /* VMUL, VNMUL */
        case 4: c = 3; break;                          /* VDIV */
        case 7: c = ((a & 0xf) == 1 && ((b >> 6) & 3) == 3) ? 4 : 0; break; /* VSQRT or other */
        default: c = 0; break;                         /* VADD/VSUB */
        }
        static const int single[5] = {C_fp_alu, C_fp_mul, C_fp_mac, C_fp_div, C_fp_sqrt};
        static const int dbl64[5] = {C_fp64_alu, C_fp64_mul, C_fp64_mac, C_fp64_div, C_fp64_div};
        d.cls = dbl ? dbl64[c] : single[c];
        return d;
    }
    /* M-profile Vector Extension data processing (0xEE/0xFE with a non-FP
     * coprocessor field, 0xEF/0xFF): not split further into multiply/MAC. */
    d.cls = (op1 & 0x30) == 0x20 && (b & 0x10) && (cp & 0xe) != 0xe ? C_mve_other : C_mve_alu;
    return d;
}

static decoded t32(unsigned a, unsigned b)
{
    decoded d = {C_alu, 0, 0, 1, 0, 0};
    unsigned op1 = (a >> 11) & 3, op2 = (a >> 4) & 0x7f;
    if (op1 == 1) {
        if ((op2 & 0x64) == 0x00) { /* load/store multiple */
            unsigned mode = (a >> 7) & 3;
            if (mode == 1 || mode == 2) {
                int load = (a >> 4) & 1;
                d.cls = load ? C_ldm : C_stm;
                d.nregs = popcount16(b);
                d.pc_write = load && (b & 0x8000);
            } else {
                d.cls = C_system;
            }
            return d;
        }
        if ((op2 & 0x64) == 0x04) { /* dual, exclusive, table branch */
            unsigned o1 = (a >> 7) & 3, o2 = (a >> 4) & 3, o3 = (b >> 4) & 0xf;
            if (o1 == 0 && o2 == 0)
                d.cls = C_store;
            else if (o1 == 0 && o2 == 1)
                d.cls = C_load;
            else if (o1 == 1 && o2 == 0)
                d.cls = C_store;
            else if (o1 == 1 && o2 == 1) {
                if (o3 <= 1) {
                    d.cls = C_branch; /* TBB/TBH */
                    d.pc_write = 1;
                } else {
                    d.cls = C_load;
                }
            } else
                d.cls = (o2 & 1) ? C_load_pair : C_store_pair;
            return d;
        }
        if ((op2 & 0x60) == 0x20) /* data processing, shifted register */
            return d;
        return t32_coproc(a, b);
    }
    if (op1 == 2) {
        if (!(b & 0x8000)) { /* data processing, immediate */
            unsigned o = (a >> 4) & 0x1f;
            if ((a & 0x0200) && (o == 0x10 || o == 0x12 || o == 0x18 || o == 0x1a))
                d.cls = C_sat;
            return d;
        }
        unsigned o = (b >> 12) & 7;
        if ((a & 0xffc0) == 0xf000 && b == 0xe801) { /* VCTP: in the low-overhead-loop space, branches nowhere */
            d.cls = C_mve_other;
            return d;
        }
        if ((b & 0xd001) == 0xc001) { /* Armv8.1-M low-overhead loops: WLS, DLS, LE */
            d.cls = C_lob;
            d.pc_write = 1;
            return d;
        }
        if ((o & 5) == 0) {
            if (((a >> 7) & 7) != 7) { /* B<cond>.W */
                d.cls = C_branch;
                d.pc_write = 1;
                d.has_target = 1;
                uint64_t imm = ((uint64_t)((a >> 10) & 1) << 20) | ((uint64_t)((b >> 11) & 1) << 19) |
                               ((uint64_t)((b >> 13) & 1) << 18) | ((uint64_t)(a & 0x3f) << 12) | ((b & 0x7ff) << 1);
                d.offset = 4 + sext(imm, 21);
            } else if (((a >> 4) & 0x7f) == 0x3b && ((b >> 4) & 0xf) >= 4 && ((b >> 4) & 0xf) <= 6) {
                d.cls = C_barrier;
            } else {
                d.cls = C_system;
            }
            return d;
        }
        d.cls = C_branch; /* B.W, BL, BLX */
        d.pc_write = 1;
        if (o & 1) { /* B.W, BL: BLX's target is ARM state, never taken on M-profile */
            unsigned s = (a >> 10) & 1, i1 = !(((b >> 13) & 1) ^ s), i2 = !(((b >> 11) & 1) ^ s);
            uint64_t imm = ((uint64_t)s << 24) | ((uint64_t)i1 << 23) | ((uint64_t)i2 << 22) |
                           ((uint64_t)(a & 0x3ff) << 12) | ((b & 0x7ff) << 1);
            d.has_target = 1;
            d.offset = 4 + sext(imm, 25);
        }
        return d;
    }
    /* op1 == 3 */
    if ((op2 & 0x71) == 0x00) {
        d.cls = C_store;
        return d;
    }
    if ((op2 & 0x67) == 0x01 || (op2 & 0x67) == 0x03 || (op2 & 0x67) == 0x05) {
        d.cls = C_load;
        d.pc_write = (op2 & 0x67) == 0x05 && (b >> 12) == 15;
        return d;
    }
    if ((op2 & 0x70) == 0x20) { /* data processing, register */
        if (a & 0x80) {
            if (!(b & 0x80))
                d.cls = C_simd;
            else if ((a & 0x30) == 0 && (b & 0xc0) == 0x80)
                d.cls = C_sat; /* QADD, QSUB, QDADD, QDSUB */
            else if ((a & 0x30) == 0x20 && (b & 0xf0) == 0x80)
                d.cls = C_simd; /* SEL */
        }
        return d;
    }
    if ((op2 & 0x78) == 0x30) { /* multiply, multiply-accumulate */
        unsigned o = (a >> 4) & 7, ra = b >> 12;
        if (o == 0)
            d.cls = ((b >> 4) & 3) == 0 && ra == 15 ? C_mul : C_mla;
        else if (o == 7)
            d.cls = C_simd; /* USAD8, USADA8 */
        else
            d.cls = ra == 15 ? C_dsp_mul : C_dsp_mac;
        return d;
    }
    if ((op2 & 0x78) == 0x38) { /* long multiply, divide */
        unsigned o = (a >> 4) & 7, o2 = (b >> 4) & 0xf;
        if (o == 0 || o == 2)
            d.cls = C_mul_long;
        else if (o == 1 || o == 3)
            d.cls = C_div;
        else if ((o == 4 || o == 6) && (o2 == 0 || (o == 6 && o2 == 6)))
            d.cls = C_mla_long;
        else
            d.cls = C_dsp_mac_long;
        return d;
    }
    if ((op2 & 0x40) == 0x40)
        return t32_coproc(a, b);
    d.cls = C_default;
    d.known = 0;
    return d;
}

/* ---- RV32IMAC decoder ----------------------------------------------------- */
static decoded rv(const uint8_t *p, size_t size)
{
    decoded d = {C_alu, 0, 0, 1, 0, 0};
    if (size == 2) {
        unsigned h = (unsigned)p[0] | ((unsigned)p[1] << 8);
        unsigned q = h & 3, f3 = h >> 13;
        if (q == 0) {
            d.cls = f3 == 2 ? C_load : f3 == 6 ? C_store : f3 == 0 ? C_alu : C_default;
        } else if (q == 1) {
            if (f3 == 1 || f3 == 5) { /* C.JAL, C.J */
                d.cls = C_jump;
                d.pc_write = 1;
                d.has_target = 1;
                uint64_t imm = ((h >> 12) & 1) << 11 | ((h >> 11) & 1) << 4 | ((h >> 9) & 3) << 8 |
                               ((h >> 8) & 1) << 10 | ((h >> 7) & 1) << 6 | ((h >> 6) & 1) << 7 |
                               ((h >> 3) & 7) << 1 | ((h >> 2) & 1) << 5;
                d.offset = sext(imm, 12);
            } else if (f3 >= 6) { /* C.BEQZ, C.BNEZ */
                d.cls = C_branch;
                d.pc_write = 1;
                d.has_target = 1;
                uint64_t imm = ((h >> 12) & 1) << 8 | ((h >> 10) & 3) << 3 | ((h >> 5) & 3) << 6 |
                               ((h >> 3) & 3) << 1 | ((h >> 2) & 1) << 5;
                d.offset = sext(imm, 9);
            }
        } else {
            unsigned rs1 = (h >> 7) & 0x1f, rs2 = (h >> 2) & 0x1f;
            if (f3 == 2)
                d.cls = C_load;
            else if (f3 == 6)
                d.cls = C_store;
            else if (f3 == 4 && rs2 == 0) {
                if ((h >> 12) & 1 && rs1 == 0)
                    d.cls = C_system; /* C.EBREAK */
                else {
                    d.cls = C_jump; /* C.JR, C.JALR */
                    d.pc_write = 1;
                }
            } else if (f3 != 0 && f3 != 4)
                d.cls = C_default;
        }
        d.known = d.cls != C_default;
        return d;
    }
    uint32_t w = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    unsigned op = w & 0x7f, f3 = (w >> 12) & 7;
    switch (op) {
    case 0x33:
        if ((w >> 25) == 1)
            d.cls = f3 == 0 ? C_mul : f3 < 4 ? C_mulh : C_div;
        break;
    case 0x13: case 0x37: case 0x17:
        break;
    case 0x03: d.cls = C_load; break;
    case 0x23: d.cls = C_store; break;
    case 0x63:
        d.cls = C_branch;
        d.pc_write = 1;
        d.has_target = 1;
        d.offset = sext(((w >> 31) & 1) << 12 | ((w >> 7) & 1) << 11 | ((w >> 25) & 0x3f) << 5 | ((w >> 8) & 0xf) << 1,
                        13);
        break;
    case 0x6f:
        d.cls = C_jump;
        d.pc_write = 1;
        d.has_target = 1;
        d.offset = sext(((w >> 31) & 1) << 20 | ((w >> 12) & 0xff) << 12 | ((w >> 20) & 1) << 11 |
                            ((w >> 21) & 0x3ff) << 1, 21);
        break;
    case 0x67: d.cls = C_jump; d.pc_write = 1; break;
    case 0x73: d.cls = f3 == 0 ? C_system : C_csr; break;
    case 0x0f: d.cls = C_system; break;
    case 0x2f: d.cls = C_atomic; break;
    default: d.cls = C_default; d.known = 0; break;
    }
    return d;
}

/* An instruction's length from its first halfword. QEMU 7.2's reported
 * size is not enough: for a Thumb instruction that ends just before a page
 * boundary, the translator's look-ahead at the next halfword is appended to
 * the instruction's bytes (seen as 16-bit instructions of size 4 and 32-bit
 * ones of size 6 at page ends). */
static size_t insn_length(const uint8_t *p)
{
    unsigned h1 = (unsigned)p[0] | ((unsigned)p[1] << 8);
    if (isa_rv32)
        return (h1 & 3) == 3 ? 4 : 2;
    return (h1 >> 11) >= 0x1d ? 4 : 2;
}

static decoded decode(const uint8_t *p, size_t size)
{
    if (isa_rv32)
        return rv(p, size);
    unsigned h1 = (unsigned)p[0] | ((unsigned)p[1] << 8);
    if (size == 4)
        return t32(h1, (unsigned)p[2] | ((unsigned)p[3] << 8));
    return t16(h1);
}

/* ---- the memory model ------------------------------------------------------ */
static region *region_of(uint64_t addr)
{
    for (int i = 0; i < n_regions; i++)
        if (addr - regions[i].start < regions[i].size)
            return &regions[i];
    return NULL;
}

/* LRU lookup of the cache line holding `addr`; inserts it on a miss. */
static int cache_hit(cache *c, uint64_t addr)
{
    if (!c->tags)
        return 0;
    uint64_t tag = addr / c->line_bytes;
    uint64_t *set = c->tags + (tag % c->sets) * c->ways;
    uint32_t i;
    for (i = 0; i < c->ways; i++)
        if (set[i] == tag + 1)
            break;
    int hit = i < c->ways;
    if (!hit)
        i = c->ways - 1;
    memmove(set + 1, set, i * sizeof *set);
    set[0] = tag + 1;
    return hit;
}

/* The fetch cost of the block's first `k` instructions. */
static int64_t fetch_cost(block *b, uint32_t k)
{
    region *r = b->fetch_region;
    int64_t cost = 0;
    for (uint32_t i = 0; i < b->n_lines && b->line_first[i] < k; i++) {
        uint64_t line = b->line[i];
        int64_t c;
        if (line + 1 == r->last_line) {
            c = 0;
        } else if (cache_hit(&r->icache, line * r->line_bytes)) {
            c = 0;
        } else if (r->prefetch && line == r->last_line) { /* last_line holds index + 1 */
            c = r->ws_mc + 1000 - r->last_line_exec;
            if (c < 0)
                c = 0;
        } else {
            c = r->ws_mc;
        }
        cost += c;
        r->last_line = line + 1;
        r->last_line_exec = b->line_exec[i];
    }
    return cost;
}

static void on_load(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *ud)
{
    (void)vcpu;
    (void)ud;
    if (qemu_plugin_mem_is_store(info))
        return;
    region *r = region_of(vaddr);
    if (!r || !r->load)
        return;
    uint64_t line = vaddr / r->line_bytes;
    if (line + 1 == r->last_load_line)
        return;
    r->last_load_line = line + 1;
    if (!cache_hit(&r->dcache, vaddr))
        tot_mc += r->ws_mc;
}

/* ---- execution -------------------------------------------------------------- */
static void charge(block *p, uint64_t next)
{
    /* The next block starts inside this one: either this block's branch
     * went there (a loop back into it), or the block was left early (QEMU
     * re-executes an I/O access alone under -icount, then goes on at the
     * next instruction): charge only what ran. */
    int inside = next > p->vaddr && next < p->end;
    if (inside && !(p->pc_write_last && (!p->has_target || p->target == next))) {
        uint32_t k = 0;
        while (k < p->n && p->vaddr + p->off[k] < next)
            k++;
        if (k == 0)
            return;
        tot_insns += k;
        tot_mc += p->cum[k - 1];
        if (p->fetch_region)
            tot_mc += fetch_cost(p, k);
        for (uint32_t i = 0; i < k; i++)
            hist[p->cls[i]]++;
        return;
    }
    tot_insns += p->n;
    tot_mc += p->cum[p->n - 1];
    if (p->fetch_region)
        tot_mc += fetch_cost(p, p->n);
    p->execs++;
    if (p->pc_write_last && next != p->end)
        tot_mc += penalty_mc;
}

static void on_block(unsigned int vcpu, void *ud)
{
    (void)vcpu;
    block *b = ud;
    if (prev) {
        charge(prev, b->vaddr);
        /* A load/store run that QEMU split into two blocks (a page end, or
         * -icount cutting a block short before a timer deadline) still
         * pipelines: the estimate must not depend on where blocks end. */
        if (b->first_pipe_gain && prev->ends_single_mem && b->vaddr == prev->end)
            tot_mc -= b->first_pipe_gain;
    }
    prev = b;
}

static void on_marker(unsigned int vcpu, void *ud)
{
    (void)vcpu;
    marker_site *m = ud;
    uint64_t insns = tot_insns + m->idx;
    int64_t mc = tot_mc + (m->idx ? m->b->cum[m->idx - 1] : 0);
    emit("M %d %" PRIu64 " %" PRIu64 "\n", m->id, insns, cycles_of(mc));
}

static int64_t insn_cost(const decoded *d, int cls)
{
    int64_t c = cost_mc[cls];
    if (cls == C_ldm || cls == C_stm || cls == C_fp_ldm || cls == C_fp_stm)
        c += cost_mc[cls + 1] * d->nregs; /* the *_per_reg class follows its base class */
    return c;
}

static int is_mem(int c)
{
    return c == C_load || c == C_store || c == C_load_pipelined || c == C_store_pipelined || c == C_load_pair ||
           c == C_store_pair || c == C_ldm || c == C_stm || c == C_fp_load || c == C_fp_store || c == C_fp_ldm ||
           c == C_fp_stm || c == C_mve_load || c == C_mve_store;
}

static int is_load(int c)
{
    return c == C_load || c == C_load_pipelined || c == C_load_pair || c == C_ldm || c == C_fp_load ||
           c == C_fp_ldm || c == C_mve_load;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (n == 0)
        return;
    block *b = calloc(1, sizeof *b);
    b->off = calloc(n, sizeof *b->off);
    b->cum = calloc(n, sizeof *b->cum);
    b->cls = calloc(n, sizeof *b->cls);
    b->line = calloc(n * 2 + 1, sizeof *b->line);
    b->line_exec = calloc(n * 2 + 1, sizeof *b->line_exec);
    b->line_first = calloc(n * 2 + 1, sizeof *b->line_first);
    if (!b->off || !b->cum || !b->cls || !b->line || !b->line_exec || !b->line_first) {
        fprintf(stderr, "hil_cycles: out of memory\n");
        abort();
    }
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->n = (uint32_t)n;
    b->fetch_region = region_of(b->vaddr);
    if (b->fetch_region && !b->fetch_region->fetch)
        b->fetch_region = NULL;
    int64_t total = 0;
    int prev_cls = -1, paired = 0;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        size_t size = qemu_plugin_insn_size(insn);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        uint8_t bytes[4] = {0};
        memcpy(bytes, qemu_plugin_insn_data(insn), size < 4 ? size : 4);
        if (size >= 2 && insn_length(bytes) < size)
            size = insn_length(bytes);
        decoded d = decode(bytes, size);
        int cls = d.cls;
        if (cls == trace_cls)
            fprintf(stderr, "hil_cycles: %s at 0x%" PRIx64 ": %02x%02x %02x%02x\n", class_names[cls], va, bytes[1],
                    bytes[0], bytes[3], bytes[2]);
        int single_mem = !isa_rv32 && (cls == C_load || cls == C_store);
        if (single_mem && i == 0)
            b->first_pipe_gain = cost_mc[cls] - cost_mc[cls == C_load ? C_load_pipelined : C_store_pipelined];
        if (single_mem && (prev_cls == C_load || prev_cls == C_store || prev_cls == C_load_pipelined ||
                           prev_cls == C_store_pipelined))
            cls = cls == C_load ? C_load_pipelined : C_store_pipelined;
        b->ends_single_mem = single_mem;
        int64_t c = insn_cost(&d, cls);
        if (have_dual && prev_cls >= 0 && !paired && dual_in[prev_cls] && dual_in[cls] &&
            !(is_mem(prev_cls) && is_mem(cls))) {
            c = dual_second_mc;
            paired = 1;
        } else {
            paired = 0;
        }
        total += c;
        b->off[i] = (uint32_t)(va - b->vaddr);
        b->cum[i] = total;
        b->cls[i] = (uint8_t)cls;
        b->end = va + size;
        b->pc_write_last = d.pc_write;
        b->has_target = d.has_target;
        b->target = va + (uint64_t)d.offset;
        prev_cls = cls;
        if (b->fetch_region) {
            uint64_t lb = b->fetch_region->line_bytes;
            for (uint64_t l = va / lb; l <= (va + size - 1) / lb; l++)
                if (b->n_lines == 0 || b->line[b->n_lines - 1] != l) {
                    b->line_first[b->n_lines] = (uint32_t)i;
                    b->line[b->n_lines++] = l;
                }
            b->line_exec[b->n_lines - 1] += c;
        }
        /* MEM_RW, stores dropped in on_load: Debian's QEMU 7.2 delivers only stores for MEM_R
         * (measured: a MEM_R callback saw 7,936 accesses, all stores, where MEM_RW saw 8.9 M) */
        if (any_load_region && is_load(cls))
            qemu_plugin_register_vcpu_mem_cb(insn, on_load, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
        for (int m = 0; m < n_markers; m++) {
            if (marker_addr[m] == va) {
                marker_site *s = malloc(sizeof *s);
                s->b = b;
                s->idx = (uint32_t)i;
                s->id = marker_id[m];
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, s);
            }
        }
    }
    b->next_all = all_blocks;
    all_blocks = b;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void at_qemu_exit(qemu_plugin_id_t id, void *ud)
{
    (void)id;
    (void)ud;
    if (prev) {
        charge(prev, prev->end);
        prev = NULL;
    }
    for (block *b = all_blocks; b; b = b->next_all) {
        if (!b->execs)
            continue;
        for (uint32_t i = 0; i < b->n; i++)
            hist[b->cls[i]] += b->execs;
    }
    emit("X %" PRIu64 " %" PRIu64 "\n", tot_insns, cycles_of(tot_mc));
    for (int c = 0; c < N_CLASSES; c++)
        if (hist[c])
            emit("H %s %" PRIu64 "\n", class_names[c], hist[c]);
    emit("U %" PRIu64 "\n", hist[C_default]); /* only undecoded instructions are class `default` */
    if (out_fd >= 0)
        close(out_fd);
    out_fd = -1;
}

/* ---- configuration parsing ------------------------------------------------- */
static int class_index(const char *name)
{
    for (int c = 0; c < N_CLASSES; c++)
        if (strcmp(class_names[c], name) == 0)
            return c;
    return -1;
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (*s == '-') /* strtoull would wrap it */
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end)
        return -1;
    *v = x;
    return 0;
}

static int parse_config(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return reject("cannot read config %s: %s", path, strerror(errno));
    static char line[8192]; /* an output path can be as long as PATH_MAX */
    int lineno = 0, rc = 0, have_isa = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = reject("config line %d is longer than %d characters", lineno, (int)sizeof line - 2);
            break;
        }
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "output", 6) == 0 && (line[6] == ' ' || line[6] == '\t')) {
            char *path = line + 6 + strspn(line + 6, " \t"); /* the rest of the line: a path may hold spaces */
            out_fd = *path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644) : -1;
            if (out_fd < 0)
                rc = reject("config line %d: cannot write '%s': %s", lineno, path, *path ? strerror(errno) : "no path");
            continue;
        }
        char *tok[20];
        int nt = 0;
        for (char *t = strtok(line, " \t\r\n"); t && nt < 20; t = strtok(NULL, " \t\r\n"))
            tok[nt++] = t;
        if (nt == 0 || tok[0][0] == '#')
            continue;
        uint64_t v[14];
        int ok = 1;
        if (strcmp(tok[0], "version") == 0 && nt == 2) {
            if (strcmp(tok[1], "1") != 0)
                rc = reject("config line %d: config version %s, this plugin reads version 1", lineno, tok[1]);
        } else if (strcmp(tok[0], "isa") == 0 && nt == 2) {
            if (strcmp(tok[1], "thumb") == 0)
                isa_rv32 = 0;
            else if (strcmp(tok[1], "rv32") == 0)
                isa_rv32 = 1;
            else
                rc = reject("config line %d: unknown isa '%s' (thumb or rv32)", lineno, tok[1]);
            have_isa = 1;
        } else if ((strcmp(tok[0], "cost") == 0 || strcmp(tok[0], "dual") == 0) && nt >= 2) {
            int c = class_index(tok[1]);
            if (c < 0)
                rc = reject("config line %d: unknown instruction class '%s'", lineno, tok[1]);
            else if (tok[0][0] == 'c' && nt == 3 && parse_u64(tok[2], &v[0]) == 0) {
                cost_mc[c] = (int64_t)v[0];
                cost_given[c] = 1;
            } else if (tok[0][0] == 'd' && nt == 2) {
                dual_in[c] = 1;
                have_dual = 1;
            } else
                ok = 0;
        } else if (strcmp(tok[0], "trace") == 0 && nt == 2) {
            trace_cls = class_index(tok[1]);
            if (trace_cls < 0)
                rc = reject("config line %d: unknown instruction class '%s'", lineno, tok[1]);
        } else if (strcmp(tok[0], "penalty") == 0 && nt == 2 && parse_u64(tok[1], &v[0]) == 0) {
            penalty_mc = (int64_t)v[0];
        } else if (strcmp(tok[0], "dual_second") == 0 && nt == 2 && parse_u64(tok[1], &v[0]) == 0) {
            dual_second_mc = (int64_t)v[0];
        } else if (strcmp(tok[0], "region") == 0 && nt == 15) {
            for (int i = 0; i < 13 && ok; i++)
                ok = parse_u64(tok[2 + i], &v[i]) == 0;
            if (ok && n_regions == MAX_REGIONS)
                rc = reject("config line %d: more than %d regions", lineno, MAX_REGIONS);
            else if (ok && (v[1] == 0 || v[3] < 2 || (v[3] & (v[3] - 1))))
                rc = reject("config line %d: region %s needs a size, and line_bytes a power of two >= 2", lineno,
                            tok[1]);
            else if (ok && ((v[7] && (v[8] == 0 || v[8] > MAX_WAYS || v[7] % v[8] || v[9] == 0)) ||
                            (v[10] && (v[11] == 0 || v[11] > MAX_WAYS || v[10] % v[11] || v[12] == 0))))
                rc = reject("config line %d: region %s cache: lines a multiple of ways (1..%d), line_bytes > 0",
                            lineno, tok[1], MAX_WAYS);
            else if (ok) {
                region *r = &regions[n_regions++];
                r->start = v[0];
                r->size = v[1];
                r->ws_mc = (int64_t)v[2] * 1000;
                r->line_bytes = v[3];
                r->prefetch = v[4] != 0;
                r->fetch = v[5] != 0;
                r->load = v[6] != 0;
                for (int c = 0; c < 2; c++) {
                    uint64_t *cv = v + 7 + 3 * c;
                    cache *k = c == 0 ? &r->icache : &r->dcache;
                    if (cv[0]) {
                        k->ways = (uint32_t)cv[1];
                        k->sets = (uint32_t)(cv[0] / cv[1]);
                        k->line_bytes = cv[2];
                        k->tags = calloc(cv[0], sizeof *k->tags);
                        if (!k->tags)
                            rc = reject("config line %d: region %s: no memory for a cache of %" PRIu64 " lines",
                                        lineno, tok[1], cv[0]);
                    }
                }
                any_load_region |= r->load;
            }
        } else if (strcmp(tok[0], "marker") == 0 && nt == 3 && parse_u64(tok[1], &v[0]) == 0 &&
                   parse_u64(tok[2], &v[1]) == 0) {
            if (n_markers == MAX_MARKERS)
                rc = reject("config line %d: more than %d markers", lineno, MAX_MARKERS);
            else {
                marker_id[n_markers] = (int)v[0];
                marker_addr[n_markers++] = v[1] & ~(uint64_t)1; /* Thumb bit */
            }
        } else {
            ok = 0;
        }
        if (!ok && rc == 0)
            rc = reject("config line %d: cannot read '%s ...'", lineno, tok[0]);
    }
    fclose(f);
    if (rc == 0 && out_fd < 0)
        rc = reject("config %s names no output file", path);
    if (rc == 0 && !have_isa)
        rc = reject("config %s names no isa", path);
    for (int c = 0; c < N_CLASSES && rc == 0; c++)
        if (!cost_given[c])
            cost_mc[c] = cost_mc[C_default];
    return rc;
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (info->version.cur < API_VERSION || info->version.min > API_VERSION) {
        fprintf(stderr, "hil_cycles: written for QEMU plugin API version %d; this QEMU offers %d..%d\n",
                API_VERSION, info->version.min, info->version.cur);
        return -1;
    }
    const char *config = NULL;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "config=", 7) == 0)
            config = argv[i] + 7;
    if (!config) {
        fprintf(stderr, "hil_cycles: needs a config=<file> argument\n");
        return -1;
    }
    if (parse_config(config) != 0)
        return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_qemu_exit, NULL);
    return 0;
}
