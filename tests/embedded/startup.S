/* startup.S: reset for a bare-metal Cortex-M4F program (see mps2_an386.ld): the vector table,
 * then enable the FPU (CPACR CP10/CP11 full access) before any float instruction can run,
 * copy .data from flash, zero .bss, call main and hand its status to emb_exit (mps2.c).
 * In assembly so that no compiled code (which may use the FPU or call memcpy) runs first. */
    .syntax unified
    .cpu cortex-m4
    .fpu fpv4-sp-d16
    .thumb

    .section .vectors, "a"
    .word __stack_top
    .word reset_handler
    .rept 14                    /* NMI, HardFault ... SysTick */
    .word fault_handler
    .endr

    .text
    .thumb_func
    .global reset_handler
reset_handler:
    ldr r0, =0xE000ED88         /* CPACR */
    ldr r1, [r0]
    orr r1, r1, #(0xF << 20)
    str r1, [r0]
    dsb
    isb
    ldr r0, =__data_start
    ldr r1, =__data_end
    ldr r2, =__data_load
1:  cmp r0, r1
    bhs 2f
    ldr r3, [r2], #4
    str r3, [r0], #4
    b 1b
2:  ldr r0, =__bss_start
    ldr r1, =__bss_end
    movs r2, #0
3:  cmp r0, r1
    bhs 4f
    str r2, [r0], #4
    b 3b
4:  bl main
    bl emb_exit

    .thumb_func
fault_handler:
    b emb_fault
