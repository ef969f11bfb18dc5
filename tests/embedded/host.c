/* host.c: platform.h for a hosted Linux program (the aarch64 build run under qemu-aarch64):
 * output through stdio; no instruction counter (qemu-aarch64 offers no virtual clock). */
#include <stdio.h>

#include "platform.h"

void emb_write(const char *text)
{
    fputs(text, stdout);
}

void emb_counter_start(void)
{
}

uint32_t emb_counter_read(void)
{
    return 0;
}
