/* Fibers. On x86-64 a switch saves the callee-saved registers and swaps stack pointers (a
 * dozen instructions); elsewhere it is ucontext's swapcontext (as OpenSSL's ASYNC jobs),
 * which also saves and restores the signal mask - two system calls a switch, a few per
 * request. Each switch is told to the sanitizers and to valgrind, which otherwise take a jump
 * between stacks for stack corruption. Stacks are mmap'ed with a guard page below and kept
 * for reuse: unmapping one per request would cost a TLB shoot-down on every core. */
#define _GNU_SOURCE
#include "phc_agent_fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define FIBER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define FIBER_TSAN 1
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define FIBER_VALGRIND 1
#endif
#endif

/* libcurl, OpenSSL and the PKCS#11 module run on it, as they ran on a connection thread of
 * the same size; the sanitizers' frames are larger. */
#if defined(FIBER_ASAN) || defined(FIBER_TSAN)
#define STACK_SIZE ((size_t)1024 * 1024)
#else
#define STACK_SIZE ((size_t)256 * 1024)
#endif
#define CACHE_MAX 64

#if defined(__x86_64__)
/* phc_fiber_switch(&save, to): pushes the callee-saved registers, MXCSR and the x87 control
 * word (the System V ABI has the callee keep them), stores the stack pointer in *save and
 * resumes the stack pointer to, which such a switch (or fiber_prepare) left. */
void phc_fiber_switch(void **save, void *to);
__asm__(".text\n"
        ".globl phc_fiber_switch\n"
        ".hidden phc_fiber_switch\n"
        ".type phc_fiber_switch,@function\n"
        "phc_fiber_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size phc_fiber_switch, .-phc_fiber_switch\n");
#define FIBER_ASM 1
#endif

struct phc_fiber {
#ifdef FIBER_ASM
    void *sp; /* saved stack pointer while not running */
#else
    ucontext_t ctx;
#endif
    void (*fn)(void *);
    void *arg;
    char *map; /* guard page, then the stack */
    size_t map_len;
    int done;
    unsigned vg_id;
    void *asan_fake;
    void *tsan;
    phc_fiber *next_free;
};

#ifdef FIBER_ASM
static __thread void *t_home; /* the thread's own stack pointer while a fiber runs */
#else
static __thread ucontext_t t_home; /* the thread's own context while a fiber runs */
#endif
static __thread phc_fiber *t_current;
static __thread phc_fiber *t_cache;
static __thread unsigned t_ncache;
#ifdef FIBER_ASAN
static __thread const void *t_home_bottom;
static __thread size_t t_home_size;
#endif
#ifdef FIBER_TSAN
static __thread void *t_home_tsan;
#endif

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* Called before each switch; into the fiber (to = f) or home (to = NULL). A fiber that has
 * ended passes a NULL fake-stack slot: ASan frees its fake frames. */
static void before_switch(phc_fiber *to, void **fake)
{
#ifdef FIBER_ASAN
    if (to)
        __sanitizer_start_switch_fiber(fake, to->map + page_size(), to->map_len - page_size());
    else
        __sanitizer_start_switch_fiber(fake, t_home_bottom, t_home_size);
#else
    (void)fake;
#endif
#ifdef FIBER_TSAN
    __tsan_switch_to_fiber(to ? to->tsan : t_home_tsan, 0);
#endif
    (void)to;
}

static void after_switch_home(void *fake)
{
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    (void)fake;
#endif
}

static void after_switch_in(phc_fiber *f)
{
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake, &t_home_bottom, &t_home_size);
#else
    (void)f;
#endif
}

static void trampoline(void)
{
    phc_fiber *f = t_current;
    f->asan_fake = NULL;
    after_switch_in(f);
    f->fn(f->arg);
    f->done = 1;
    before_switch(NULL, NULL);
#ifdef FIBER_ASM
    void *dead;
    phc_fiber_switch(&dead, t_home);
#else
    setcontext(&t_home);
#endif
    abort(); /* a fiber that ended is never resumed */
}

static phc_fiber *fiber_alloc(void)
{
    phc_fiber *f = t_cache;
    if (f) {
        t_cache = f->next_free;
        t_ncache--;
        return f;
    }
    if (!(f = calloc(1, sizeof(*f))))
        return NULL;
    f->map_len = STACK_SIZE + page_size();
    f->map = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (f->map == MAP_FAILED) {
        free(f);
        return NULL;
    }
    /* A stack overflow hits the guard page (SIGSEGV), not the next allocation. */
    if (mprotect(f->map, page_size(), PROT_NONE) != 0) {
        munmap(f->map, f->map_len);
        free(f);
        return NULL;
    }
#ifdef FIBER_VALGRIND
    f->vg_id = VALGRIND_STACK_REGISTER(f->map + page_size(), f->map + f->map_len);
#endif
    return f;
}

static void fiber_unmap(phc_fiber *f)
{
#ifdef FIBER_VALGRIND
    VALGRIND_STACK_DEREGISTER(f->vg_id);
#endif
    munmap(f->map, f->map_len);
    free(f);
}

#ifdef FIBER_ASM
/* A new stack as phc_fiber_switch would leave it: the saved registers (zero), MXCSR and the
 * x87 control word as this thread has them, and trampoline as the return address - entered
 * with the stack 8 bytes off 16-byte alignment, as after a call. */
static int fiber_prepare(phc_fiber *f)
{
    uintptr_t top = ((uintptr_t)(f->map + f->map_len)) & ~(uintptr_t)15;
    /* After trampoline's address is popped the stack pointer is top - 24: 8 off 16. */
    uint64_t *sp = (uint64_t *)(top - 24);
    *--sp = (uint64_t)(uintptr_t)trampoline;
    for (int i = 0; i < 6; i++)
        *--sp = 0; /* rbp rbx r12 r13 r14 r15 */
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    *--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    f->sp = sp;
    return 0;
}
#else
/* getcontext returns twice in principle; kept apart so that no caller's local is at risk
 * (this one's context is never resumed: makecontext replaces where it goes). */
static __attribute__((noinline)) int ctx_get(ucontext_t *ctx)
{
    return getcontext(ctx);
}

static int fiber_prepare(phc_fiber *f)
{
    if (ctx_get(&f->ctx) != 0)
        return -1;
    f->ctx.uc_stack.ss_sp = f->map + page_size();
    f->ctx.uc_stack.ss_size = f->map_len - page_size();
    f->ctx.uc_link = NULL;
    makecontext(&f->ctx, trampoline, 0);
    return 0;
}
#endif

phc_fiber *phc_fiber_new(void (*fn)(void *arg), void *arg)
{
    phc_fiber *f = fiber_alloc();
    if (!f)
        return NULL;
#ifdef FIBER_ASAN
    /* A reused stack may keep the poisoned red zones of the frame that never returned. */
    ASAN_UNPOISON_MEMORY_REGION(f->map + page_size(), f->map_len - page_size());
#endif
    if (fiber_prepare(f) != 0) {
        fiber_unmap(f);
        return NULL;
    }
    f->fn = fn;
    f->arg = arg;
    f->done = 0;
    f->next_free = NULL;
#ifdef FIBER_TSAN
    f->tsan = __tsan_create_fiber(0);
#endif
    return f;
}

int phc_fiber_resume(phc_fiber *f)
{
#ifdef FIBER_TSAN
    if (!t_home_tsan)
        t_home_tsan = __tsan_get_current_fiber();
#endif
    void *fake = NULL;
    t_current = f;
    before_switch(f, &fake);
#ifdef FIBER_ASM
    phc_fiber_switch(&t_home, f->sp);
#else
    swapcontext(&t_home, &f->ctx);
#endif
    after_switch_home(fake);
    t_current = NULL;
    return f->done;
}

void phc_fiber_yield(void)
{
    phc_fiber *f = t_current;
    if (!f)
        return;
    before_switch(NULL, &f->asan_fake);
#ifdef FIBER_ASM
    phc_fiber_switch(&f->sp, t_home);
#else
    swapcontext(&f->ctx, &t_home);
#endif
    after_switch_in(f);
}

phc_fiber *phc_fiber_self(void)
{
    return t_current;
}

void phc_fiber_free(phc_fiber *f)
{
    if (!f)
        return;
#ifdef FIBER_TSAN
    __tsan_destroy_fiber(f->tsan);
    f->tsan = NULL;
#endif
    if (t_ncache < CACHE_MAX) {
        f->next_free = t_cache;
        t_cache = f;
        t_ncache++;
        return;
    }
    fiber_unmap(f);
}

void phc_fiber_release_cache(void)
{
    while (t_cache) {
        phc_fiber *f = t_cache;
        t_cache = f->next_free;
        fiber_unmap(f);
    }
    t_ncache = 0;
}
