/* mps2.c: platform.h on the bare-metal MPS2 AN386 board (Cortex-M4F) as qemu-system-arm
 * emulates it, without libc: ARM semihosting for output and exit (the host qemu prints and
 * exits with the status), and the CMSDK APB timer 0 as an instruction counter.
 *
 * The timer counts down at the board's 25 MHz SYSCLK on qemu's virtual clock. Under
 * `-icount shift=S` that clock advances exactly 2^S ns per executed instruction, so the ticks
 * between emb_counter_start() and emb_counter_read() are a deterministic instruction count
 * (tests/embedded/toolchain.py picks S and converts). Its 32 bits last 2^32 ticks. */
#include "platform.h"

#define SYS_WRITE0 0x04u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void emb_write(const char *text)
{
    semihost(SYS_WRITE0, text);
}

/* Called by startup.S with main's return value; qemu exits with it as its status. */
void emb_exit(int status)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

/* Every exception other than reset: a fault in the program under test. */
void emb_fault(void)
{
    emb_write("fault\n");
    emb_exit(70);
}

void emb_counter_start(void)
{
    TIMER0_CTRL = 0u;
    TIMER0_RELOAD = 0xFFFFFFFFu;
    TIMER0_VALUE = 0xFFFFFFFFu;
    TIMER0_CTRL = 1u; /* enable, no interrupt */
}

uint32_t emb_counter_read(void)
{
    return 0xFFFFFFFFu - TIMER0_VALUE;
}
