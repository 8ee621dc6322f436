// Package espsim simulates an ESP8266/ESP8285 module on a serial line: the
// ROM serial bootloader, the flasher stub that a client uploads into RAM,
// the SPI flash behind them, the firmware that runs when GPIO0 is released
// (an App) and the bench user who holds GPIO0 and power-cycles. It is the
// ground truth the ESP8266 client is tested against, so it is written from
// the byte-level reference (/work/shared/reference/esp8266-protocol.md,
// §-numbers below) and the public sources it names, with its own SLIP
// codec and packet parsing; it imports nothing of the client or the stub.
//
// What is modelled, and how faithfully:
//
//   - ROM loader: opcodes 0x02–0x0A only; two status bytes [status, error];
//     any other opcode, and a 20-byte FLASH_BEGIN, get status 1 / error
//     0x05. SYNC answers eight frames with value 0x20120707. FLASH_BEGIN
//     attaches the flash and erases up front with the erase-size bug of
//     §8.1 (head sectors extra when the range crosses a 64 KiB boundary,
//     double otherwise). FLASH_DATA programs like NOR flash (bits can only
//     be cleared), checks the XOR checksum (error 0x07) and the sequence
//     number (a block may be repeated, not skipped: error 0x01), then reads
//     the block back (error 0x08 when it differs, e.g. programmed over
//     sectors the ROM did not erase). FLASH_END(0) is a software reset,
//     which lands in the ROM loader again (§2.2: the first soft reset after
//     a serial download lands in download mode); FLASH_END(1) runs the
//     firmware. MEM_BEGIN/MEM_DATA are acknowledged whatever the address
//     (the ROM's checks on them are not documented); MEM_END(0, entry)
//     sends its reply (esptool: "usually sends a correct response", §8.3;
//     Faults.MemEndNoReply drops it) and jumps to entry.
//   - What the jump runs (checkUpload): the upload runs as a flasher stub
//     and sends "OHAI" only when every MEM_BEGIN range lies inside the RAM
//     the loader can use (IRAM 0x40100000–0x40110000, DRAM
//     0x3FFE8000–0x3FFFC000; sources at iramWindow), all announced bytes
//     arrived, and the entry point lies in IRAM inside the uploaded bytes.
//     Otherwise the code would crash on the chip: the device goes silent —
//     no reply, no invented error — until a reset or power cycle. Which
//     stub the bytes are cannot be told; Config.Stub chooses the model.
//   - Flasher stub, three models (stubProfile). StubTuyaflash, the default,
//     is tuyaflash's own stub as stub/esp8266/README.md describes it: every
//     command's work is done before its reply; what arrives meanwhile
//     waits in a 20 KiB receive ring (rxbuf.go; beyond it, bytes are lost
//     and counted in Stats.RxLost), so the next packet may come before the
//     reply; STUB_INFO (0x7D) announces the window; data replies carry the
//     packet's sequence number; data is programmed a sector's part at a
//     time after the erase that covers it, the last bytes of a word held
//     for the next packet; while it waits for a packet it starts the next
//     erase (the flash is then busy for the erase time, the effect applied
//     at once) and reads programmed data back, 1 KiB per step at the MD5
//     rate, into an MD5 that SPI_FLASH_MD5 of exactly that region finishes;
//     a repeated sequence number is acknowledged without writing, another
//     unexpected one is 0xC0; the first error of a write session is
//     repeated until its END; FLASH_END(0) reboots (a software reset:
//     download mode again); MEM_*, RUN_USER_CODE and GET_SECURITY_INFO are
//     0xC3; the size it assumes is 16 MiB until SPI_SET_PARAMS;
//     READ_FLASH's max_in_flight counts bytes. StubTuyaflash1 is its first
//     version: the same rules without STUB_INFO, background work or
//     sequence numbers in replies, data staged and programmed 4 KiB at a
//     time, and only the UART's 128-byte FIFO to hold what arrives while
//     it works. An upload whose entry lies at 0x4010EA00–0x4010F1C0 runs as
//     tuyaflash's loader (loader.go) with either tuyaflash model: READ_REG,
//     CHANGE_BAUDRATE and MEM_* until MEM_END starts the stub.
//     StubEsptool is esp-flasher-stub v1.1.0
//     (esptool's default since v5.3.0, §12.3): FLASH_DATA, FLASH_DEFL_DATA,
//     READ_FLASH, CHANGE_BAUDRATE and MEM_END are acknowledged before
//     their work and a failure of that work is the answer to the next
//     command, which is then skipped; FLASH_END/FLASH_DEFL_END require the
//     announced size to have been written (0xC0) and do not reboot;
//     RUN_USER_CODE sends no reply; READ_FLASH keeps one packet in flight
//     and ends early with the MD5 frame when a frame other than an ACK
//     arrives; the size comes from the JEDEC id. Both: status bytes
//     [code, 0], SYNC value 0, 64 KiB block erases where aligned.
//   - The virtual identification command (contract C2): opcode 0x7E with
//     payload "tuyaflash-virtual?" answers status 0 and a JSON object
//     {"virtual":true,"sim":"espsim","chip":…,"net":…} in the ROM and in
//     either stub; "net" is Config.NetAddr or the App's NetAddr().
//   - Registers: chip magic 0x40001000, eFuse words 0x3FF00050…5C (MAC,
//     ESP8285 bits, §7.2/§7.3), UART0 clock divider 0x60000014 (§7.4,
//     read-only here), and the SPI0 controller at 0x60000200: CMD bit 18
//     runs the user command in USER2 (RDID 0x9F, RDSR 0x05/0x35, SFDP 0x5A
//     at address 0) and returns the MISO bytes in W0…; the one-shot CMD bits
//     28 (RDID) and 27 (RDSR) work too; other one-shot bits complete without
//     effect (no ROM-only flash read). Before the flash is attached (ROM
//     mode, no FLASH_BEGIN yet) SPI commands read zeros (inference: esptool
//     always attaches first, §9.1 step 1).
//   - Flash: a byte slice; programs wrap at the physical size as SPI NOR
//     address decoding does, the ROM's up-front erase stops at the end;
//     optional datasheet-typical timings (flash.go). NOR model of an
//     interrupted operation (power loss, reset): an erase drives every
//     cell of its sector, block or chip towards 1, a page program drives
//     the cells it clears towards 0; interrupted when a fraction f of its
//     busy time has passed, each of those bits has flipped with
//     probability f (seeded), the others keep their old value — a sector
//     that reads as neither the old data nor blank, or a page half
//     programmed. Operations before it in the same command are complete,
//     those after it never started.
//   - Boot and the bench: PowerCycle(true) (GPIO0 held) prints the ROM
//     boot log at 74880 baud (115200 with a 40 MHz crystal) and the loader
//     listens at 115200, the rate esptool syncs at; the ROM's auto-baud is
//     not modelled. PowerCycle(false) and Config.ReleaseAfterWrite (the
//     user after a write) boot from flash: the ROM checks the image at 0x0
//     (romBootCheck) and the App runs at Config.AppBaud, its console on
//     the UART (Serial, polled with nil every 20 ms for output of its
//     own); its Flash keeps the bytes around a write and restarts the chip
//     (Rebooter, a software reset). Config.AutoReset is the user who
//     power-cycles with GPIO0 held when SYNCs arrive at a running (or
//     crashed) chip; SetGPIO0 moves the jumper without a reset, Reset
//     pulses EN. Software resets follow the mode latched at the last
//     power-on or EN reset.
//   - Faults (Faults): byte drops, corruption and duplicates in both
//     directions, delayed replies, a disconnect, an unplugged adapter
//     (the line's Unplug), a power loss during the n-th erase or program,
//     and a reset during the n-th command; all seeded and reproducible.
package espsim
