/* platform.h: what a test program (tests/embedded/program.py writes its main.c) needs from the
 * machine it runs on: text output and an instruction counter. mps2.c implements it for the
 * bare-metal Cortex-M4 (qemu-system-arm -M mps2-an386), host.c for a hosted Linux (aarch64
 * under qemu-aarch64). */
#ifndef EMB_PLATFORM_H
#define EMB_PLATFORM_H

#include <stdint.h>

/* Writes a NUL-terminated string to the host's standard output. */
void emb_write(const char *text);

/* Starts the counter; emb_counter_read() then returns the ticks elapsed since (0 where the
 * platform has no counter). tests/embedded/toolchain.py converts ticks to instructions. */
void emb_counter_start(void);
uint32_t emb_counter_read(void);

#endif
