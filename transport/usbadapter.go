package transport

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Adapter models the USB-UART bridge between the host and the chip, for the
// in-memory links made by Pipe and the pseudo-terminals made by OpenPTYLink
// (LinkOptions.Adapter; the timing needs LinkOptions.Paced):
// the rates the bridge can generate and what its host driver reports back,
// how received bytes reach the host (USB bulk packets, handed over when full
// or when the bridge's latency timer expires), and how host writes enter the
// bus (USB frames).
//
// The zero Adapter (or ParseAdapter("none")) is the plain link tuyaflash has
// always used: any rate, bytes handed over in 64-byte batches as soon as
// they have crossed the wire, no latency. The named models are returned by
// ParseAdapter; every figure carries its source, and figures that no source
// gives are marked as estimates.
type Adapter struct {
	// Name is the model's name as ParseAdapter accepts it ("ch340", …).
	Name string
	// Chip names the bridge for messages ("WCH CH340").
	Chip string
	// Driver is the Linux driver that serves the bridge (drivers/usb/serial),
	// as /sys/class/tty/ttyUSB0/device/driver names it.
	Driver string
	// MaxBaud is the highest rate the bridge runs reliably (its data sheet);
	// above it one byte in 97 arrives corrupted, as with LinkOptions.MaxBaud.
	// 0: no limit beyond the rate table.
	MaxBaud int
	// Packet is the bulk IN endpoint's packet size in bytes. USB 2.0 §5.8.3
	// caps full-speed bulk packets at 64 bytes.
	Packet int
	// Status is how many bytes of every IN packet are modem status rather
	// than data (FTDI: 2, AN232B-04 §3.1).
	Status int
	// Latency is how long the bridge holds a partial IN packet: its latency
	// timer, restarted whenever a packet goes to the host, status-only
	// packets included (FTDI AN232B-04 §3.1). 0: a partial packet is handed
	// over as soon as the sender's write has crossed the wire.
	Latency time.Duration
	// LowLatency is the timer in effect once the host asks for
	// ASYNC_LOW_LATENCY (TIOCSSERIAL); 0 when the driver has no such lever.
	LowLatency time.Duration
	// Frame is the USB frame period: host writes reach the bridge at the
	// start of the next frame (full speed: 1 ms, USB 2.0 §8.4.3.1). 0: at once.
	Frame time.Duration

	// rate maps a requested rate to the one the bridge's UART runs at and
	// the one its Linux driver reports in termios; nil: both are the request.
	rate func(req int) (wire, reported int)
}

// Rate returns what the bridge makes of a requested baud rate: wire is the
// rate its UART actually runs at, reported the rate its Linux driver writes
// back into termios (which transport.Open reads back as BaudRate). Requests
// of 0 or less are returned unchanged.
func (a Adapter) Rate(req int) (wire, reported int) {
	if a.rate == nil || req <= 0 {
		return req, req
	}
	return a.rate(req)
}

// IsModel reports whether a is a bridge model rather than the plain link.
func (a Adapter) IsModel() bool { return a.Packet > 0 && a.Name != "none" }

// fullSpeedFrame is the USB full-speed frame period (USB 2.0 §8.4.3.1: a SOF
// every 1.00 ms). All modelled bridges are full-speed devices.
const fullSpeedFrame = time.Millisecond

// adapterModels are the bridges ParseAdapter knows.
var adapterModels = map[string]Adapter{
	// WCH CH340 (ch341 driver). Rates: the divisor arithmetic of
	// ch341_get_divisor (drivers/usb/serial/ch341.c): 48 MHz / (prescaler ×
	// divisor), 46 … 3,000,000 baud; the driver leaves the requested rate in
	// termios. CH340 data sheet: 50 bps to 2 Mbps, so MaxBaud 2,000,000.
	// Packets: 32 bytes ("CH341A buffers data until a full endpoint-size
	// packet (32 bytes) has been received unless bit 7 is set", ch341.c
	// ch341_set_baudrate_lcr; the driver sets the bit on chips after version
	// 0x27). Latency 1 ms: an estimate of one USB frame for a partial packet;
	// no WCH document gives a figure.
	"ch340": {Name: "ch340", Chip: "WCH CH340", Driver: "ch341", MaxBaud: 2000000, Packet: 32,
		Latency: time.Millisecond, Frame: fullSpeedFrame, rate: ch341Rate},
	// Silicon Labs CP2102 (cp210x driver). Rates: AN205 Table 1 as coded in
	// cp210x_get_an205_rate (drivers/usb/serial/cp210x.c): a request is
	// clamped to 300 … 1,000,000 (cp210x_init_max_speed, CP2102) and mapped
	// to the table's rate, which the driver writes back into termios; the
	// chip maps 1,000,000 to 921600 (AN205 Table 1, 670255 … 1053257).
	// Packets: 64 bytes (the full-speed maximum; estimate, not checked
	// against a descriptor dump). Latency 1 ms: estimate, Silicon Labs
	// documents no latency timer.
	"cp2102": {Name: "cp2102", Chip: "Silicon Labs CP2102", Driver: "cp210x", Packet: 64,
		Latency: time.Millisecond, Frame: fullSpeedFrame, rate: cp2102Rate},
	// Silicon Labs CP2102N (cp210x driver): any rate 300 … 3,000,000; the
	// actual rate is 48 MHz / (2 × prescale × round(48 MHz / (2 × prescale ×
	// request))), prescale 4 at or below 365 baud, and the driver reports it
	// back (cp210x_get_actual_rate, use_actual_rate for the CP2102N in
	// cp210x_init_max_speed). Packets and latency as the CP2102 (estimates).
	"cp2102n": {Name: "cp2102n", Chip: "Silicon Labs CP2102N", Driver: "cp210x", Packet: 64,
		Latency: time.Millisecond, Frame: fullSpeedFrame, rate: cp2102nRate},
	// FTDI FT232R (ftdi_sio driver). Rates: 3 MHz / n with n in eighths
	// (ftdi_232bm_baud_base_to_divisor, drivers/usb/serial/ftdi_sio.c), up to
	// 3,000,000; above that the driver falls back to 9600. The driver reports
	// the requested rate. Packets: 64 bytes of which 2 are status, 62 data;
	// latency timer 16 ms by default, settable 1–255 ms (FTDI AN232B-04
	// §3.1, §3.2); ASYNC_LOW_LATENCY makes ftdi_sio program 1 ms
	// (write_latency_timer).
	"ftdi": {Name: "ftdi", Chip: "FTDI FT232R", Driver: "ftdi_sio", MaxBaud: 3000000, Packet: 64, Status: 2,
		Latency: 16 * time.Millisecond, LowLatency: time.Millisecond, Frame: fullSpeedFrame, rate: ft232rRate},
	// Prolific PL2303HX (pl2303 driver). Rates: the table of
	// pl2303_get_supported_baud_rate set directly, other rates through the
	// 12 MHz × 32 / (mantissa × 4^exponent) divisor of
	// pl2303_encode_baud_rate_divisor; at most 6,000,000 (pl2303_type_data,
	// TYPE_HX); the driver reports the resulting rate. Packets 64 bytes,
	// latency 1 ms: estimates.
	"pl2303": {Name: "pl2303", Chip: "Prolific PL2303HX", Driver: "pl2303", Packet: 64,
		Latency: time.Millisecond, Frame: fullSpeedFrame, rate: pl2303Rate},
	// The plain link: no bridge model.
	"none": {Name: "none"},
}

// adapterAliases are other names users type for the same models.
var adapterAliases = map[string]string{
	"ch341": "ch340", "ch34x": "ch340", "cp210x": "cp2102", "ft232r": "ftdi", "ft232": "ftdi", "": "none",
}

// ParseAdapter returns the bridge model called name: ch340, cp2102, cp2102n,
// ftdi, pl2303, or none (the plain link). Case does not matter.
func ParseAdapter(name string) (Adapter, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if a, ok := adapterAliases[n]; ok {
		n = a
	}
	if a, ok := adapterModels[n]; ok {
		return a, nil
	}
	return Adapter{}, fmt.Errorf("unknown adapter %q (known: %s)", name, strings.Join(AdapterNames(), ", "))
}

// AdapterNames lists the names ParseAdapter accepts (without aliases).
func AdapterNames() []string {
	out := make([]string, 0, len(adapterModels))
	for n := range adapterModels {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ch341Rate follows ch341_get_divisor (drivers/usb/serial/ch341.c, without
// the limited-prescaler quirk of some clones): rate = 48 MHz /
// (2^(12 − 3·ps − fact) × div), the divisor rounded to the nearer rate.
func ch341Rate(req int) (int, int) {
	const clk = 48000000
	clkDiv := func(ps, fact int64) int64 { return 1 << (12 - 3*ps - fact) }
	minBps := (clk + clkDiv(0, 0)*256 - 1) / (clkDiv(0, 0) * 256) // 46
	maxBps := clk / (clkDiv(3, 0) * 2)                            // 3,000,000
	speed := min(max(int64(req), minBps), maxBps)
	fact := int64(1)
	ps := int64(3)
	for ; ps > 0; ps-- {
		if speed > clk/(clkDiv(ps, 1)*512) {
			break
		}
	}
	cd := clkDiv(ps, fact)
	div := clk / (cd * speed)
	if div < 9 || div > 255 {
		div /= 2
		cd *= 2
	}
	if 16*clk/(cd*div)-16*speed >= 16*speed-16*clk/(cd*(div+1)) {
		div++
	}
	return int(clk / (cd * div)), req
}

// an205 is AN205 Table 1 (CP2101/2/3 default baud rate configuration) as
// cp210x_an205_table1 codes it: a request up to high runs at rate.
var an205 = []struct{ rate, high int }{
	{300, 300}, {600, 600}, {1200, 1200}, {1800, 1800}, {2400, 2400}, {4000, 4000},
	{4800, 4803}, {7200, 7207}, {9600, 9612}, {14400, 14428}, {16000, 16062},
	{19200, 19250}, {28800, 28912}, {38400, 38601}, {51200, 51558}, {56000, 56280},
	{57600, 58053}, {64000, 64111}, {76800, 77608}, {115200, 117028}, {128000, 129347},
	{153600, 156868}, {230400, 237832}, {250000, 254234}, {256000, 273066},
	{460800, 491520}, {500000, 567138}, {576000, 670254}, {921600, 1053257},
}

func an205Rate(baud int) int {
	for _, e := range an205 {
		if baud <= e.high {
			return e.rate
		}
	}
	return an205[len(an205)-1].rate // undefined above 1053257 (AN205); the driver never asks
}

// cp2102Rate follows cp210x_change_speed for a CP2102: clamp to 300 …
// 1,000,000, AN205 table below 1,000,000; the chip runs the table rate.
func cp2102Rate(req int) (int, int) {
	baud := min(max(req, 300), 1000000)
	if baud < 1000000 {
		baud = an205Rate(baud)
	}
	return an205Rate(baud), baud
}

// cp2102nRate follows cp210x_get_actual_rate for a CP2102N (max 3,000,000).
func cp2102nRate(req int) (int, int) {
	baud := int64(min(max(req, 300), 3000000))
	prescale := int64(1)
	if baud <= 365 {
		prescale = 4
	}
	den := 2 * prescale * baud
	div := (48000000 + den/2) / den
	actual := int(48000000 / (2 * prescale * div))
	return actual, actual
}

// ft232rRate follows get_ftdi_divisor for an FT232R: 3 MHz divided by a
// divisor in eighths, round(24 MHz / baud) eighths
// (ftdi_232bm_baud_base_to_divisor), at most 3,000,000 (else 9600). Divisors
// between 1 and 2 other than 1.5 cannot be generated (FTDI AN232B-05); the
// model runs the nearest one that can (an estimate: the chip's behaviour for
// those encodings is not documented).
func ft232rRate(req int) (int, int) {
	if req > 3000000 {
		return 9600, 9600
	}
	d3 := (24000000 + int64(req)/2) / int64(req)
	d3 = min(d3, 1<<17-1)
	if d3 > 8 && d3 < 16 && d3 != 12 {
		switch {
		case d3 <= 10:
			d3 = 8
		case d3 <= 14:
			d3 = 12
		default:
			d3 = 16
		}
	}
	return int((24000000 + d3/2) / d3), req
}

// pl2303Rates are the rates a PL2303 sets directly
// (pl2303_get_supported_baud_rate).
var pl2303Rates = []int{75, 150, 300, 600, 1200, 1800, 2400, 3600, 4800, 7200, 9600,
	14400, 19200, 28800, 38400, 57600, 115200, 230400, 460800,
	614400, 921600, 1228800, 2457600, 3000000, 6000000}

// pl2303Rate follows pl2303_encode_baud_rate for a PL2303HX (max 6,000,000).
func pl2303Rate(req int) (int, int) {
	baud := min(req, 6000000)
	// nearest supported rate, ties to the higher one, as the driver does
	i := sort.SearchInts(pl2303Rates, baud+1)
	sup := pl2303Rates[min(i, len(pl2303Rates)-1)]
	if i == len(pl2303Rates) {
		sup = pl2303Rates[i-1]
	} else if i > 0 && pl2303Rates[i]-baud > baud-pl2303Rates[i-1] {
		sup = pl2303Rates[i-1]
	}
	if sup == baud {
		return baud, baud
	}
	const baseline = 12000000 * 32
	mantissa := baseline / baud
	if mantissa == 0 {
		mantissa = 1
	}
	exp := 0
	for mantissa >= 512 {
		if exp < 7 {
			mantissa >>= 2
			exp++
		} else {
			mantissa = 511
			break
		}
	}
	actual := (baseline / mantissa) >> (2 * exp)
	return actual, actual
}
