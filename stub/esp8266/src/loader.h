/*
 * tuyaflash's loader: a first stage small enough to go up at the ROM's
 * 115200 baud in a few tens of milliseconds, which raises the link to the
 * client's rate and then takes the stub itself at that rate (README,
 * "The loader"). It speaks the stub protocol's framing and a handful of
 * its commands: READ_REG, CHANGE_BAUDRATE, MEM_BEGIN, MEM_DATA, MEM_END.
 *
 * Its core (loader.c) is plain C like the stub's; ldtarget.c implements
 * the plat_ld_* functions on the ESP8266, host/host.c on Linux (where the
 * "jump" at MEM_END runs the stub's core in the same process).
 */
#ifndef TF_LOADER_H
#define TF_LOADER_H

#include <stdint.h>

/* Where the loader itself lies (IRAM, at the end of the window the stub
 * is uploaded into): what it loads must stay clear of it. */
#define LOADER_START 0x4010EA00u
#define LOADER_END 0x4010F1C0u

/* Send "OHAI", then serve until MEM_END with flag 0 jumps to the loaded
 * program. Returns on the host when the link is gone or after the jump. */
void loader_run(void);

/* The next received byte, waiting for it; -1 when the link is gone (host). */
int plat_ld_getc(void);
/* RAM words the loader reads (READ_REG) and writes (MEM_DATA). */
uint32_t plat_ld_load(uint32_t addr);
void plat_ld_store(uint32_t addr, uint32_t word);
/* Run the loaded program from entry (the chip: never returns). */
void plat_ld_jump(uint32_t entry);

#endif
