/*
 * host-stub: the stub's protocol core running on Linux, with a fake ROM
 * layer: flash is a file (mapped into memory, NOR semantics: writing can
 * only clear bits, erasing sets 0xFF), UART0 is a tty or stdin/stdout, MD5
 * is md5.c, delays are no-ops and a reboot ends the process.
 *
 *   host-stub --flash FILE [--size N] (--pty-link PATH | --port TTY | --stdio)
 *             [--baud N] [--mac AA:BB:CC:DD:EE:FF] [--flash-id ID]
 *             [--xtal HZ] [--flash-timing E,B,P] [--loader] [--rx-drop]
 *             [--quiet]
 *
 * --pty-link PATH  create a pseudo-terminal and make PATH a symlink to its
 *                  slave, for a client that opens a serial port by name.
 *                  Like a wire, bytes exchanged while the client's tty speed
 *                  differs from the stub's UART rate arrive garbled.
 * --port TTY       use an existing tty (e.g. the slave of a pty whose master
 *                  the test holds); the stub's UART rate is that tty's
 *                  speed, set with TCSETS2, so CHANGE_BAUDRATE is visible
 *                  to the other side.
 * --stdio          stdin/stdout (baud rates are only recorded).
 *
 * --flash-timing E,B,P  make the fake flash as slow as a real one: a sector
 *                  erase takes E ms, a 64 KiB block erase B ms, programming
 *                  P us per started 256-byte page (e.g. 45,150,700, the
 *                  W25Q typical values); reads stay instant. Erases the
 *                  stub starts in the background run while it goes on.
 *
 * --loader         start as tuyaflash's loader (loader.c) instead of the
 *                  stub: RAM is a fake IRAM and DRAM that MEM_DATA fills and
 *                  READ_REG reads; MEM_END with flag 0 "jumps" to the entry
 *                  when it lies in the IRAM loaded, which here runs the stub
 *                  core (it greets with OHAI again).
 * --rx-drop        drop received bytes that find the receive ring full, as
 *                  the chip does (by default the reader waits for room: a
 *                  pty delivers faster than any UART).
 *
 * UART0 reception runs on its own thread, as the chip's UART interrupt
 * does: it reads the tty and puts the bytes into the stub's receive ring,
 * whatever the protocol core is doing.
 *
 * Exit status: 0 when the link closes, 2 on a usage or setup error, 3 when
 * the client asked for a reboot (FLASH_END with flag 0).
 */
#define _GNU_SOURCE
#include <asm/termbits.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../loader.h"
#include "../rxring.h"
#include "../stub.h"

#define EXIT_REBOOT 3

enum mode { M_NONE, M_PTY, M_PORT, M_STDIO };

static struct {
	enum mode mode;
	int rfd, wfd;
	int keep_slave; /* M_PTY: our own slave fd, so the master never HUPs */
	char link[4096];
	uint32_t baud, divider, uart_clock; /* baud: read by the reader thread */
	int quiet;
	int rx_drop; /* --rx-drop */
	int loader;  /* --loader */
	/* receive thread and its wake-up for plat_rx_wait */
	pthread_t reader;
	pthread_mutex_t mu;
	pthread_cond_t arrived;
	uint32_t arrivals;
	/* flash timing (--flash-timing), in microseconds */
	uint32_t t_sector, t_block, t_page;
	/* flash */
	uint8_t *flash;
	uint32_t phys_size, chip_size, flash_id;
	/* eFuse words for the MAC */
	uint32_t efuse[4];
} h;

static void vsay(const char *fmt, va_list ap)
{
	fputs("host-stub: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	if (h.quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	if (h.mode == M_PTY && h.link[0])
		unlink(h.link);
	exit(2);
}

/* ---- tty helpers ----------------------------------------------------------- */

static int tty_raw(int fd, uint32_t baud)
{
	struct termios2 t;
	if (ioctl(fd, TCGETS2, &t) != 0)
		return -1;
	t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR |
				 IGNCR | ICRNL | IXON | IXOFF);
	t.c_oflag &= ~(tcflag_t)OPOST;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CBAUD | CRTSCTS);
	t.c_cflag |= CS8 | CREAD | CLOCAL | BOTHER;
	t.c_ispeed = t.c_ospeed = baud;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	return ioctl(fd, TCSETS2, &t);
}

static int tty_set_speed(int fd, uint32_t baud)
{
	struct termios2 t;
	if (ioctl(fd, TCGETS2, &t) != 0)
		return -1;
	t.c_cflag &= ~(tcflag_t)CBAUD;
	t.c_cflag |= BOTHER;
	t.c_ispeed = t.c_ospeed = baud;
	return ioctl(fd, TCSETS2, &t);
}

/* The client's speed (M_PTY: the slave's termios, read through the master). */
static uint32_t peer_speed(void)
{
	struct termios2 t;
	if (ioctl(h.rfd, TCGETS2, &t) != 0)
		return 0;
	return t.c_ospeed;
}

/* Bytes sent at one rate and sampled at another: make them useless. */
static void garble(uint8_t *p, size_t n, uint32_t a, uint32_t b)
{
	uint8_t k = (uint8_t)(0x3Cu ^ (a / 2400u) ^ (b / 2400u) * 7u);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((p[i] ^ k) - (uint8_t)(3u * i));
}

/* ---- UART ------------------------------------------------------------------ */

static uint32_t cur_baud(void)
{
	return __atomic_load_n(&h.baud, __ATOMIC_RELAXED);
}

/* Put received bytes into the ring. A pty delivers whatever the client
 * wrote at once, far faster than a UART (the chip's protocol core decodes
 * faster than any baud rate fills its ring, which the window it announces
 * relies on), so by default the reader waits for room instead of dropping
 * bytes: a client that overruns the window is not caught here but in the
 * simulator, whose link runs at the baud rate. --rx-drop drops them as
 * the chip does, for the tests of what the stub does then. */
static void deliver(const uint8_t *p, uint32_t n)
{
	while (n > 0) {
		uint32_t k = n;
		if (!h.rx_drop) {
			k = rx_room();
			if (k == 0) {
				struct timespec ts = {0, 200 * 1000};
				nanosleep(&ts, 0);
				continue;
			}
			if (k > n)
				k = n;
		}
		rx_push(p, k);
		p += k;
		n -= k;
	}
}

/* The chip's UART interrupt: whatever arrives goes into the ring. */
static void *reader(void *arg)
{
	(void)arg;
	uint8_t buf[512];
	for (;;) {
		struct pollfd p = {.fd = h.rfd, .events = POLLIN};
		int r = poll(&p, 1, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		ssize_t n = read(h.rfd, buf, sizeof buf);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* EOF, or EIO when the other side closed */
		uint32_t peer = 0, baud = cur_baud();
		if (h.mode == M_PTY && (peer = peer_speed()) != 0 && peer != baud)
			garble(buf, (size_t)n, peer, baud);
		deliver(buf, (uint32_t)n);
		pthread_mutex_lock(&h.mu);
		h.arrivals++;
		pthread_cond_signal(&h.arrived);
		pthread_mutex_unlock(&h.mu);
	}
	rx_close();
	pthread_mutex_lock(&h.mu);
	h.arrivals++;
	pthread_cond_signal(&h.arrived);
	pthread_mutex_unlock(&h.mu);
	return 0;
}

void plat_rx_wait(int soon)
{
	pthread_mutex_lock(&h.mu);
	uint32_t seen = h.arrivals;
	const uint8_t *p;
	/* Bytes may have arrived between the core's look and this lock. */
	if (rx_peek(&p) == 0 && !rx_closed()) {
		if (soon) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&h.arrived, &h.mu, &ts);
		} else {
			while (h.arrivals == seen)
				pthread_cond_wait(&h.arrived, &h.mu);
		}
	}
	pthread_mutex_unlock(&h.mu);
}

void plat_uart_write(const uint8_t *buf, uint32_t n)
{
	uint8_t tmp[256];
	uint32_t peer = 0;
	int bad = h.mode == M_PTY && (peer = peer_speed()) != 0 && peer != cur_baud();
	while (n > 0) {
		uint32_t k = n < sizeof tmp ? n : (uint32_t)sizeof tmp;
		memcpy(tmp, buf, k);
		if (bad)
			garble(tmp, k, cur_baud(), peer);
		uint32_t off = 0;
		while (off < k) {
			ssize_t w = write(h.wfd, tmp + off, k - off);
			if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
				struct pollfd p = {.fd = h.wfd, .events = POLLOUT};
				poll(&p, 1, 100);
				continue;
			}
			if (w <= 0)
				return; /* the link is gone; the next read says so */
			off += (uint32_t)w;
		}
		buf += k;
		n -= k;
	}
}

void plat_uart_drain(void)
{
	if (h.mode == M_PORT)
		ioctl(h.wfd, TCSBRK, 1); /* tcdrain */
}

uint32_t plat_uart_divider(void)
{
	return h.divider;
}

void plat_uart_set(uint32_t div, uint32_t nominal)
{
	h.divider = div;
	if (h.mode == M_PORT) {
		/* A pty has no transmitter to drain: give the other side time to
		 * read the reply at the old speed before the tty changes. */
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, 0);
		if (tty_set_speed(h.wfd, nominal) != 0)
			logf_("cannot set %s to %u baud: %s", h.link, nominal,
			      strerror(errno));
	}
	__atomic_store_n(&h.baud, nominal, __ATOMIC_RELAXED);
	logf_("UART now %u baud (divider %u)", nominal, div);
}

void plat_delay_us(uint32_t us)
{
	(void)us;
}

void plat_reboot(void)
{
	logf_("reboot requested (FLASH_END flag 0)");
	if (h.mode == M_PTY)
		unlink(h.link);
	if (h.flash)
		msync(h.flash, h.phys_size, MS_SYNC);
	exit(EXIT_REBOOT);
}

/* ---- registers -------------------------------------------------------------- */

#define SPI_CMD 0x60000200u
#define SPI_USR2 0x60000224u
#define SPI_W0 0x60000240u
#define SPI_CMD_USR (1u << 18)
#define SPI_CMD_RDID (1u << 28)

static struct {
	uint32_t addr, value;
} regs[128];
static int nregs;

static uint32_t *reg_slot(uint32_t addr, int create)
{
	for (int i = 0; i < nregs; i++)
		if (regs[i].addr == addr)
			return &regs[i].value;
	if (!create || nregs == (int)(sizeof regs / sizeof regs[0]))
		return 0;
	regs[nregs].addr = addr;
	regs[nregs].value = 0;
	return &regs[nregs++].value;
}

uint32_t plat_reg_read(uint32_t addr)
{
	switch (addr) {
	case 0x40001000u: /* chip magic (esptool CHIP_DETECT_MAGIC_REG_ADDR) */
		return 0xFFF0C101u;
	case 0x3FF00050u:
	case 0x3FF00054u:
	case 0x3FF00058u:
	case 0x3FF0005Cu:
		return h.efuse[(addr - 0x3FF00050u) / 4];
	case 0x60000014u: /* UART0 CLKDIV */
		return h.divider;
	}
	uint32_t *v = reg_slot(addr, 0);
	return v ? *v : 0;
}

void plat_reg_write(uint32_t addr, uint32_t value)
{
	if (addr == SPI_CMD) {
		/* The two ways clients read the JEDEC ID: the RDID command bit,
		 * or a user command with opcode 0x9F. Both complete at once. */
		uint32_t usr2 = plat_reg_read(SPI_USR2);
		if ((value & SPI_CMD_RDID) ||
		    ((value & SPI_CMD_USR) && (usr2 & 0xFFFFu) == 0x9Fu)) {
			uint32_t *w0 = reg_slot(SPI_W0, 1);
			if (w0)
				*w0 = h.flash_id;
		}
		value = 0;
	}
	uint32_t *v = reg_slot(addr, 1);
	if (v)
		*v = value;
}

/* ---- flash ---------------------------------------------------------------------- */

/* The mask ROM's contract; a violation is a bug in the core, so say so. */
static int contract(const char *fn, uint32_t addr, const void *buf, uint32_t len)
{
	if ((addr | len | (uint32_t)(uintptr_t)buf) & 3u) {
		logf_("BUG: %s(0x%x, %p, %u) breaks the ROM's alignment rules", fn,
		      addr, buf, len);
		return -1;
	}
	uint32_t limit = h.phys_size < h.chip_size ? h.phys_size : h.chip_size;
	if (addr > limit || len > limit - addr)
		return -1;
	return 0;
}

/* --flash-timing: sleep us microseconds (the flash is busy). */
static void busy(uint32_t us)
{
	if (us == 0)
		return;
	struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t busy_until_us;

int plat_flash_busy(void)
{
	return now_us() < busy_until_us;
}

/* Every flash operation waits for an erase started in the background. */
static void flash_wait(void)
{
	int64_t left = busy_until_us - now_us();
	if (left > 0)
		busy((uint32_t)left);
}

int plat_flash_read(uint32_t addr, void *dst, uint32_t len)
{
	flash_wait();
	if (contract("SPIRead", addr, dst, len))
		return 1;
	memcpy(dst, h.flash + addr, len);
	return 0;
}

int plat_flash_write(uint32_t addr, const void *src, uint32_t len)
{
	flash_wait();
	if (contract("SPIWrite", addr, src, len))
		return 1;
	const uint8_t *s = src;
	for (uint32_t i = 0; i < len; i++)
		h.flash[addr + i] &= s[i]; /* NOR flash: bits only go 1 -> 0 */
	uint32_t pages = (addr + len + 255u) / 256u - addr / 256u;
	busy(pages * h.t_page);
	return 0;
}

static int erase(uint32_t addr, uint32_t len)
{
	uint32_t limit = h.phys_size < h.chip_size ? h.phys_size : h.chip_size;
	if (addr > limit || len > limit - addr)
		return 1;
	memset(h.flash + addr, 0xFF, len);
	return 0;
}

int plat_flash_erase_sector(uint32_t sector)
{
	flash_wait();
	int r = erase(sector * FLASH_SECTOR, FLASH_SECTOR);
	busy(h.t_sector);
	return r;
}

int plat_flash_erase_block(uint32_t block)
{
	flash_wait();
	int r = erase(block * FLASH_BLOCK, FLASH_BLOCK);
	busy(h.t_block);
	return r;
}

int plat_flash_erase_start(uint32_t addr, int block)
{
	flash_wait();
	/* The cells read as erased at once: nothing looks before the end. */
	int r = erase(addr, block ? FLASH_BLOCK : FLASH_SECTOR);
	busy_until_us = now_us() + (block ? h.t_block : h.t_sector);
	return r;
}

int plat_flash_erase_chip(void)
{
	flash_wait();
	memset(h.flash, 0xFF, h.phys_size);
	return 0;
}

int plat_flash_unlock(void)
{
	flash_wait();
	return 0;
}

void plat_flash_attach(void)
{
}

int plat_flash_set_params(uint32_t id, uint32_t size, uint32_t block,
			  uint32_t sector, uint32_t page, uint32_t status_mask)
{
	(void)id, (void)block, (void)sector, (void)page, (void)status_mask;
	h.chip_size = size;
	return 0;
}

/* ---- the loader's RAM (--loader) ----------------------------------------------- */

#define FAKE_IRAM 0x40100000u
#define FAKE_DRAM 0x3FFE8000u
static uint32_t iram[0x10000 / 4], dram[0x18000 / 4];
static uint8_t iram_loaded[0x10000 / 4];
static uint32_t jumped_to;

static uint32_t *fake_ram(uint32_t addr, uint8_t **loaded)
{
	*loaded = 0;
	if (addr - FAKE_IRAM < sizeof iram) {
		*loaded = &iram_loaded[(addr - FAKE_IRAM) / 4];
		return &iram[(addr - FAKE_IRAM) / 4];
	}
	if (addr - FAKE_DRAM < sizeof dram)
		return &dram[(addr - FAKE_DRAM) / 4];
	return 0;
}

int plat_ld_getc(void)
{
	for (;;) {
		const uint8_t *p;
		if (rx_peek(&p) > 0) {
			int c = *p;
			rx_consume(1);
			return c;
		}
		if (rx_closed())
			return -1;
		plat_rx_wait(0);
	}
}

uint32_t plat_ld_load(uint32_t addr)
{
	uint8_t *loaded;
	uint32_t *w = fake_ram(addr, &loaded);
	return w ? *w : plat_reg_read(addr);
}

void plat_ld_store(uint32_t addr, uint32_t word)
{
	uint8_t *loaded;
	uint32_t *w = (addr & 3u) ? 0 : fake_ram(addr, &loaded);
	if (!w) {
		logf_("BUG: the loader stores to 0x%08x", addr);
		return;
	}
	*w = word;
	if (loaded)
		*loaded = 1;
}

void plat_ld_jump(uint32_t entry)
{
	jumped_to = entry;
}

/* Run the loader; 1 when it jumped into code it loaded (the stub follows),
 * 0 when the link ended first. A jump anywhere else would crash the chip:
 * say so and end. */
static int run_loader(void)
{
	logf_("loader running");
	loader_run();
	if (jumped_to == 0)
		return 0;
	uint8_t *loaded;
	if (!fake_ram(jumped_to, &loaded) || !loaded || !*loaded) {
		logf_("MEM_END jumps to 0x%08x, outside the code loaded: the chip would crash", jumped_to);
		exit(4);
	}
	logf_("loader: jump to 0x%08x, the stub runs", jumped_to);
	return 1;
}

/* ---- setup ------------------------------------------------------------------ */

static void usage(void)
{
	fputs("usage: host-stub --flash FILE [--size N] (--pty-link PATH | --port TTY |"
	      " --stdio)\n"
	      "                 [--baud N] [--mac AA:BB:CC:DD:EE:FF] [--flash-id ID]"
	      " [--xtal HZ]\n"
	      "                 [--flash-timing SECTOR_MS,BLOCK_MS,PAGE_US] [--loader]"
	      " [--rx-drop] [--quiet]\n"
	      "  N and ID take decimal, 0x hex, or K/M suffixes (--size 1M).\n",
	      stderr);
	exit(2);
}

static uint32_t number(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	if (errno || end == s || *end || v > 0xFFFFFFFFull)
		die("bad %s: %s", what, s);
	return (uint32_t)v;
}

static void set_mac(const char *s)
{
	unsigned m[6];
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3],
		   &m[4], &m[5]) != 6)
		die("bad --mac: %s", s);
	/* esptool's ESP8266 MAC layout: NIC bytes in eFuse words 1 and 0,
	 * the OUI in word 3. */
	h.efuse[0] = (uint32_t)m[5] << 24;
	h.efuse[1] = (uint32_t)m[3] << 8 | m[4];
	h.efuse[2] = 0;
	h.efuse[3] = (uint32_t)m[0] << 16 | (uint32_t)m[1] << 8 | m[2];
}

static void set_timing(const char *s)
{
	unsigned e, b, p;
	char end;
	if (sscanf(s, "%u,%u,%u%c", &e, &b, &p, &end) != 3 || e > 10000 ||
	    b > 10000 || p > 100000)
		die("bad --flash-timing: %s (want SECTOR_MS,BLOCK_MS,PAGE_US)", s);
	h.t_sector = e * 1000u;
	h.t_block = b * 1000u;
	h.t_page = p;
}

static void check_size(uint32_t size)
{
	if (size == 0 || size > FLASH_MAX_SIZE || (size & (FLASH_SECTOR - 1u)))
		die("flash size %u: want a multiple of 4 KiB up to 16 MiB (--size)",
		    size);
}

static void open_flash(const char *path, uint32_t size)
{
	if (size != 0)
		check_size(size); /* before creating anything */
	/* A new file needs --size. */
	int fd = open(path, O_RDWR | (size != 0 ? O_CREAT : 0), 0644);
	if (fd < 0)
		die("open %s: %s%s", path, strerror(errno),
		    errno == ENOENT ? " (give --size to create it)" : "");
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("stat %s: %s", path, strerror(errno));
	uint32_t have = (uint32_t)st.st_size;
	if (size == 0)
		size = have;
	check_size(size);
	if (have < size && ftruncate(fd, size) != 0)
		die("grow %s: %s", path, strerror(errno));
	void *m = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("map %s: %s", path, strerror(errno));
	close(fd);
	h.flash = m;
	if (have < size) /* new space is erased flash */
		memset(h.flash + have, 0xFF, size - have);
	h.phys_size = size;
	h.chip_size = FLASH_MAX_SIZE;
	if (h.flash_id == 0) {
		/* Winbond-style JEDEC ID: manufacturer 0xEF, type 0x40,
		 * capacity byte log2(size). */
		uint32_t cap = 0;
		while ((1u << cap) < size)
			cap++;
		h.flash_id = 0xEFu | 0x40u << 8 | cap << 16;
	}
}

static void open_pty(const char *link)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0)
		die("pseudo-terminal: %s", strerror(errno));
	const char *slave = ptsname(m);
	if (!slave)
		die("ptsname: %s", strerror(errno));
	int s = open(slave, O_RDWR | O_NOCTTY);
	if (s < 0)
		die("open %s: %s", slave, strerror(errno));
	if (tty_raw(s, h.baud) != 0)
		die("configure %s: %s", slave, strerror(errno));
	struct stat st;
	if (lstat(link, &st) == 0) {
		if (!S_ISLNK(st.st_mode))
			die("%s exists and is not a symlink; not replacing it", link);
		unlink(link);
	}
	snprintf(h.link, sizeof h.link, "%s", link);
	if (symlink(slave, link) != 0)
		die("symlink %s -> %s: %s", link, slave, strerror(errno));
	h.rfd = h.wfd = m;
	h.keep_slave = s;
	logf_("serving %s (-> %s) at %u baud", link, slave, h.baud);
}

static void open_port(const char *path)
{
	int fd = open(path, O_RDWR | O_NOCTTY);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	if (tty_raw(fd, h.baud) != 0)
		die("configure %s: %s", path, strerror(errno));
	snprintf(h.link, sizeof h.link, "%s", path);
	h.rfd = h.wfd = fd;
	logf_("serving %s at %u baud", path, h.baud);
}

static void on_signal(int sig)
{
	if (h.mode == M_PTY && h.link[0])
		unlink(h.link);
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(int argc, char **argv)
{
	const char *flash = 0, *where = 0;
	uint32_t size = 0, xtal = 26000000;
	h.baud = ROM_BAUD;
	set_mac("18:fe:34:00:00:01");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : 0;
		if (!strcmp(a, "--stdio")) {
			h.mode = M_STDIO;
			continue;
		}
		if (!strcmp(a, "--quiet")) {
			h.quiet = 1;
			continue;
		}
		if (!strcmp(a, "--rx-drop")) {
			h.rx_drop = 1;
			continue;
		}
		if (!strcmp(a, "--loader")) {
			h.loader = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--flash"))
			flash = v;
		else if (!strcmp(a, "--size"))
			size = number(v, "--size");
		else if (!strcmp(a, "--pty-link"))
			h.mode = M_PTY, where = v;
		else if (!strcmp(a, "--port"))
			h.mode = M_PORT, where = v;
		else if (!strcmp(a, "--baud"))
			h.baud = number(v, "--baud");
		else if (!strcmp(a, "--mac"))
			set_mac(v);
		else if (!strcmp(a, "--flash-id"))
			h.flash_id = number(v, "--flash-id");
		else if (!strcmp(a, "--xtal"))
			xtal = number(v, "--xtal");
		else if (!strcmp(a, "--flash-timing"))
			set_timing(v);
		else
			usage();
	}
	if (!flash || h.mode == M_NONE || h.baud == 0 || xtal == 0)
		usage();
	open_flash(flash, size);
	/* The ROM runs UART0 from twice the crystal (esptool derives the
	 * crystal as baud * divider / 2); the divider is what auto-baud
	 * would have measured at the starting rate. */
	h.uart_clock = 2u * xtal;
	h.divider = (h.uart_clock + h.baud / 2u) / h.baud;

	signal(SIGPIPE, SIG_IGN);
	if (h.mode == M_PTY)
		open_pty(where);
	else if (h.mode == M_PORT)
		open_port(where);
	else {
		h.rfd = 0;
		h.wfd = 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	pthread_mutex_init(&h.mu, 0);
	pthread_cond_init(&h.arrived, 0);
	if (pthread_create(&h.reader, 0, reader, 0) != 0)
		die("cannot start the receive thread");
	pthread_detach(h.reader); /* it ends with the link, or with exit */
	logf_("flash %s: %u bytes, JEDEC ID 0x%06x", flash, h.phys_size, h.flash_id);

	if (!h.loader || run_loader())
		stub_run();

	logf_("link closed");
	if (h.mode == M_PTY)
		unlink(h.link);
	msync(h.flash, h.phys_size, MS_SYNC);
	return 0;
}
