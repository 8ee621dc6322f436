package cli

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/internal/virtual"
	"github.com/tuyaflash/tuyaflash/transport"
)

func init() { register(simCmd()) }

type simFlags struct {
	chip, flashFile, link, save, flashID, mac string
	sr, adapter, net, stubModel, powerLossOp  string
	forget                                    string
	list                                      bool
	zeroKey, lockSR, timing, noTiming, manual bool
	unpaced, flashOff, unmarked               bool
	flashSize                                 int
	corruptAt                                 int64
	autoReset, linkWindow, idleExit           time.Duration
	latency, releaseAfter, delay              time.Duration
	drop, corrupt, dup, rxDrop, rxCorrupt     float64
	rxDup, delayRate                          float64
	powerLossRate, resetRate                  float64
	powerLossAt, resetAt                      int
	disconnectAfter, unplugAfter              int64
	faultAfter, seed                          int64
}

func simCmd() *command {
	var f simFlags
	c := &command{name: "sim", summary: "serve a virtual chip on a pseudo-terminal for tuyaflash or any other tool",
		noJSON:     "sim serves a virtual chip until it is stopped and has no result to print",
		verbose:    []string{"the simulator's and the simulated firmware's log"},
		interrupts: true,
		long: `Prints the pseudo-terminal's path (and links it at --link) and the addresses of
the simulated firmware's network side, and serves until interrupted (Ctrl-C or
SIGTERM stop it normally: exit code 0, and --save keeps the flash).

The link is paced like a real one: bytes take their time on the wire at the rate
each side has set, through a USB adapter model (--adapter; --unpaced for memory
speed). The simulated user power-cycles the chip shortly after link checks or
SYNCs arrive (--auto-reset); an ESP8266 user also releases GPIO0 and power-cycles
once a write is done and the line is quiet (--release-after). With --manual-reset
the user waits for you: Enter power-cycles into download mode, "boot" powers it up
into its firmware, "off" cuts the power (Beken).

After a write the firmware in flash runs: the demo images of --firmware demo come
online on the loopback address --net gives (their access point, then, once given
the virtual network tuyaflash-virtual / virtual-bench, their station).

The virtual devices of --port sim:… keep their state in the data folder:
--list shows them, --forget CHIP[#NAME] (or all) deletes one so that its next use
starts from a fresh image. Linux only for the pseudo-terminal.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&f.chip, "chip", "bk7231n", "chip to simulate: "+strings.Join(simNames(), ", ")+" (also by module: t1 is a BK7238, t4 a BK7252N)")
		fs.StringVar(&f.flashFile, "flash", "", "load the flash from `file` (e.g. a real dump); default a synthetic image")
		fs.StringVar(&f.link, "link", "", "also make a symlink to the pty at `path` (replaced if it is a symlink)")
		fs.StringVar(&f.save, "save", "", "write the flash to `file` when the simulator stops (never overwrites)")
		fs.StringVar(&f.flashID, "flash-id", "", "JEDEC id as 6 hex digits MFR TYPE CAP (default: BK7231 EB6015 TH25Q16HB, ESP8266 a GD25Q of the flash size)")
		fs.StringVar(&f.mac, "mac", "", "MAC for the synthetic image's RF sector (Beken) or the eFuses (ESP8266)")
		fs.IntVar(&f.flashSize, "flash-size", 0, "flash size in `bytes` of the synthetic image (default: the chip's, 2 MiB on BK7231, 1 MiB on ESP8266)")
		fs.StringVar(&f.adapter, "adapter", virtual.DefaultAdapter, "USB adapter `model` between the tool and the chip: "+strings.Join(transport.AdapterNames(), ", "))
		fs.DurationVar(&f.latency, "latency", 0, "the adapter's latency timer (`duration`; default the model's: 16ms FTDI, 1ms the others)")
		fs.BoolVar(&f.unpaced, "unpaced", false, "deliver bytes at once instead of at the wire's pace (tests)")
		fs.BoolVar(&f.unmarked, "unmarked", false, "pass for a real chip: do not answer tuyaflash's virtual-device query, so the inventory and the exports treat the device as real (tests of exports)")
		fs.StringVar(&f.net, "net", "", "loopback `address` (host[:port]) where the firmware's access point, then its station appear (default 127.0.0.1, ports picked by the system)")
		fs.BoolVar(&f.timing, "timing", false, "Beken: realistic erase/program/CRC durations")
		fs.BoolVar(&f.noTiming, "no-timing", false, "ESP8266: instant flash operations instead of realistic ones")
		fs.StringVar(&f.stubModel, "stub-model", "tuyaflash", "ESP8266: `model` of the uploaded flasher stub: tuyaflash (replies after the work) or esptool (replies before it)")
		fs.DurationVar(&f.releaseAfter, "release-after", time.Second, "ESP8266: after a write, release GPIO0 and power-cycle once the line is quiet this `long` (0: never)")
		fs.StringVar(&f.sr, "status-reg", "", "BK7231N: initial flash status register, hex (default 4004: protected)")
		fs.BoolVar(&f.zeroKey, "zero-key", false, "BK7231N: eFuse encryption key all zero, which makes it a BK7231M (the other Beken profiles have the zero key already)")
		fs.BoolVar(&f.lockSR, "lock-on-noop-wrsr", false, "BK7231N: a status-register write that changes nothing locks it (P25Q16HBK behaviour)")
		fs.DurationVar(&f.linkWindow, "link-window", 0, "Beken: how long the chip listens after reset (default: the simulator's)")
		fs.DurationVar(&f.idleExit, "idle-exit", 0, "BK7231T and other bootloader chips: leave download mode after this `long` without a command (default "+bksim.DefaultIdleExit.String()+", unverified; negative: never)")
		fs.Int64Var(&f.corruptAt, "corrupt-flash-at", 0, "ESP8266: a stuck bit at this flash `address` (MD5 verification must catch it)")
		fs.BoolVar(&f.manual, "manual-reset", false, "power-cycle only when asked on stdin (Enter: download mode, boot: the firmware, off: power off)")
		fs.DurationVar(&f.autoReset, "auto-reset", 300*time.Millisecond, "simulated power-cycle this long after link checks start")
		fs.Float64Var(&f.drop, "drop-rate", 0, "probability that a byte the chip sends is lost")
		fs.Float64Var(&f.corrupt, "corrupt-rate", 0, "probability that a byte the chip sends is changed")
		fs.Float64Var(&f.dup, "dup-rate", 0, "probability that a byte the chip sends arrives twice")
		fs.Float64Var(&f.rxDrop, "rx-drop-rate", 0, "probability that a byte the host sends is lost")
		fs.Float64Var(&f.rxCorrupt, "rx-corrupt-rate", 0, "probability that a byte the host sends reaches the chip changed")
		fs.Float64Var(&f.rxDup, "rx-dup-rate", 0, "probability that a byte the host sends reaches the chip twice")
		fs.DurationVar(&f.delay, "delay", 0, "hold a reply back this `long` (with --delay-rate)")
		fs.Float64Var(&f.delayRate, "delay-rate", 0, "probability that a reply is held back by --delay")
		fs.Int64Var(&f.disconnectAfter, "disconnect-after", 0, "close the link after the chip received this many `bytes`")
		fs.Int64Var(&f.unplugAfter, "unplug-after", 0, "pull the USB adapter (the pty fails with EIO, --link disappears) after the chip received this many `bytes`")
		fs.IntVar(&f.powerLossAt, "power-loss-at", 0, "cut the power in the middle of the `N`th erase or program (Beken: command; ESP8266: sector erase or page program), leaving it partly done as NOR flash does")
		fs.StringVar(&f.powerLossOp, "power-loss-op", "any", "ESP8266: what --power-loss-at counts: any, erase or program")
		fs.Float64Var(&f.powerLossRate, "power-loss-rate", 0, "Beken: probability of a power cut in each erase or program command")
		fs.IntVar(&f.resetAt, "reset-at", 0, "reset the chip in the middle of its `N`th command in download mode")
		fs.Float64Var(&f.resetRate, "reset-rate", 0, "Beken: probability of a reset in each command")
		fs.BoolVar(&f.flashOff, "flash-inaccessible", false, "Beken: the SPI flash does not answer (reads zeros, writes do nothing)")
		fs.Int64Var(&f.faultAfter, "fault-after", 0, "start the rate faults after this many received `bytes`")
		fs.Int64Var(&f.seed, "seed", 1, "fault injection seed")
		fs.StringVar(&f.forget, "forget", "", "delete the virtual device `CHIP[#NAME]` of --port sim:CHIP[#NAME] (or all): its next use starts anew")
		fs.BoolVar(&f.list, "list", false, "list the virtual devices of --port sim:… kept in the data folder")
	}
	c.check = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("sim takes no arguments")
		}
		return f.check(e)
	}
	c.run = func(e *env, args []string) error {
		switch {
		case f.list:
			return listVirtual(e)
		case f.forget != "":
			return forgetVirtual(e, f.forget)
		}
		return runSim(e, f)
	}
	return c
}

// simApplies says which chips a sim flag is for: one of the simulators,
// or the Beken chips whose download mode lives in their flash bootloader.
type simApplies int

const (
	forBeken simApplies = iota
	forESP
	forBootloader
)

// simOnly lists the flags that only one simulator has, with what the
// other says instead.
var simOnly = map[string]struct {
	applies simApplies
	why     string
}{
	"status-reg":         {forBeken, "the ESP8266's flash status is not modelled"},
	"zero-key":           {forBeken, "an ESP8266 has no eFuse encryption key"},
	"lock-on-noop-wrsr":  {forBeken, "the ESP8266's flash status is not modelled"},
	"link-window":        {forBeken, "an ESP8266 enters its loader by the GPIO0 strap, not in a window after reset"},
	"timing":             {forBeken, "the ESP8266 simulator has realistic timing on by default (--no-timing turns it off)"},
	"power-loss-rate":    {forBeken, "the ESP8266 simulator cuts the power at one operation: --power-loss-at"},
	"reset-rate":         {forBeken, "the ESP8266 simulator resets at one command: --reset-at"},
	"flash-inaccessible": {forBeken, "not modelled on the ESP8266"},
	"idle-exit":          {forBootloader, "only the chips that answer from their flash bootloader (BK7231T, BK7231U, BK7252) leave download mode by themselves; a BootROM waits"},
	"no-timing":          {forESP, "the Beken simulators are instant unless --timing"},
	"stub-model":         {forESP, "Beken chips run no uploaded stub"},
	"release-after":      {forESP, "a Beken chip boots its firmware on the Reboot command tuyaflash sends"},
	"corrupt-flash-at":   {forESP, "not modelled on Beken chips"},
	"power-loss-op":      {forESP, "the Beken simulator counts erase and program commands alike"},
}

// check refuses the knobs the chosen chip does not have, and those that do
// nothing in the combination given.
func (f *simFlags) check(e *env) error {
	if f.list || f.forget != "" {
		if f.list && f.forget != "" {
			return usagef("--list and --forget exclude each other")
		}
		var other []string
		e.fs.Visit(func(fl *pflag.Flag) {
			if fl.Name != "list" && fl.Name != "forget" && fl.Name != "verbose" {
				other = append(other, "--"+fl.Name)
			}
		})
		if len(other) > 0 {
			return usagef("%s: --list and --forget manage the stored virtual devices and serve nothing", strings.Join(other, ", "))
		}
		return nil
	}
	_, espErr := espsim.ParseChip(f.chip)
	bk, bkErr := bksim.ParseChip(f.chip)
	if espErr != nil && bkErr != nil {
		return usagef("--chip %q: want %s", f.chip, strings.Join(simNames(), ", "))
	}
	esp := espErr == nil
	names := make([]string, 0, len(simOnly))
	for n := range simOnly {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, flag := range names {
		o := simOnly[flag]
		if !e.changed(flag) {
			continue
		}
		switch {
		case o.applies == forESP && !esp:
			return usagef("--%s applies to the ESP8266 simulator, not to --chip %s: %s", flag, f.chip, o.why)
		case o.applies == forBeken && esp:
			return usagef("--%s applies to the Beken simulator, not to --chip %s: %s", flag, f.chip, o.why)
		case o.applies == forBootloader && (esp || !bk.BootloaderBased()):
			return usagef("--%s does nothing on --chip %s: %s", flag, f.chip, o.why)
		}
	}
	if f.flashFile != "" {
		for _, flag := range []string{"flash-size", "mac"} {
			if e.changed(flag) && (flag != "mac" || !esp) {
				return usagef("--%s shapes the synthetic flash image; with --flash the file is the flash", flag)
			}
		}
	}
	if f.manual && e.changed("auto-reset") {
		return usagef("--auto-reset and --manual-reset exclude each other")
	}
	if _, err := transport.ParseAdapter(f.adapter); err != nil {
		return usagef("--adapter: %v", err)
	}
	if f.latency < 0 {
		return usagef("--latency must not be negative")
	}
	if f.unpaced && e.changed("latency") {
		return usagef("--latency times the adapter's packets on a paced link; --unpaced delivers every byte at once")
	}
	if f.net != "" {
		if _, err := simNetAddr(f.net); err != nil {
			return usagef("--net %s: %v", f.net, err)
		}
	}
	if _, err := espsim.ParseStubModel(f.stubModel); err != nil {
		return usagef("--stub-model: %v", err)
	}
	if _, err := powerLossOp(f.powerLossOp); err != nil {
		return usagef("--power-loss-op: %v", err)
	}
	if e.changed("power-loss-op") && f.powerLossAt == 0 {
		return usagef("--power-loss-op says what --power-loss-at counts; --power-loss-at is not given")
	}
	rates := []struct {
		name string
		v    float64
	}{{"drop-rate", f.drop}, {"corrupt-rate", f.corrupt}, {"dup-rate", f.dup}, {"rx-drop-rate", f.rxDrop}, {"rx-corrupt-rate", f.rxCorrupt},
		{"rx-dup-rate", f.rxDup}, {"delay-rate", f.delayRate}, {"power-loss-rate", f.powerLossRate}, {"reset-rate", f.resetRate}}
	faults := false
	for _, r := range rates {
		if r.v < 0 || r.v > 1 {
			return usagef("--%s %v: want a probability from 0 to 1", r.name, r.v)
		}
		faults = faults || r.v > 0
	}
	if !faults && e.changed("fault-after") {
		return usagef("--fault-after delays the faults given as rates (--drop-rate, --delay-rate, --power-loss-rate …); none is given")
	}
	if !faults && e.changed("seed") {
		return usagef("--seed seeds the faults given as rates (--drop-rate, --delay-rate, --power-loss-rate …); none is given")
	}
	if (f.delay > 0) != (f.delayRate > 0) {
		return usagef("--delay and --delay-rate go together: how long a reply is held back, and how often")
	}
	for _, n := range []struct {
		name string
		v    int64
	}{{"disconnect-after", f.disconnectAfter}, {"unplug-after", f.unplugAfter}, {"power-loss-at", int64(f.powerLossAt)}, {"reset-at", int64(f.resetAt)}, {"flash-size", int64(f.flashSize)}} {
		if n.v < 0 {
			return usagef("--%s must not be negative", n.name)
		}
	}
	return nil
}

func powerLossOp(s string) (espsim.FlashOp, error) {
	switch s {
	case "any":
		return espsim.AnyFlashOp, nil
	case "erase":
		return espsim.EraseOp, nil
	case "program":
		return espsim.ProgramOp, nil
	}
	return 0, fmt.Errorf("%q: want any, erase or program", s)
}

// simNetAddr is --net as host:port on loopback: a host alone gets a port
// picked by the system (one port for the access point and the station).
func simNetAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, "0"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", errors.New("want a loopback address such as 127.0.0.2 or 127.0.0.2:8080 (the virtual network lives on this computer)")
	}
	if port != "0" {
		return net.JoinHostPort(host, port), nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// simConfig builds the simulated module's configuration from the flags.
func (f *simFlags) simConfig(e *env) (virtual.SimConfig, error) {
	cfg := virtual.SimConfig{Chip: f.chip, FlashSize: f.flashSize, FastApp: f.unpaced}
	if f.flashFile != "" {
		var err error
		if cfg.Flash, err = os.ReadFile(f.flashFile); err != nil {
			return cfg, err
		}
	}
	if f.mac != "" {
		m, err := flasher.ParseMAC(f.mac)
		if err != nil {
			return cfg, usagef("--mac: %v", err)
		}
		cfg.MAC = m
	}
	var id []byte
	if f.flashID != "" {
		b, err := hex.DecodeString(f.flashID)
		if err != nil || len(b) != 3 {
			return cfg, usagef("--flash-id %q: want 6 hex digits such as EB6015", f.flashID)
		}
		id = b
	}
	var sr *uint16
	if f.sr != "" {
		var v uint16
		if _, err := fmt.Sscanf(f.sr, "%x", &v); err != nil {
			return cfg, usagef("--status-reg %q: want hex such as 0", f.sr)
		}
		sr = &v
	}
	if f.net != "" {
		addr, err := simNetAddr(f.net)
		if err != nil {
			return cfg, err
		}
		host, _, _ := net.SplitHostPort(addr)
		cfg.Net = virtual.Addrs{AP: addr, Station: addr, API: net.JoinHostPort(host, "0"), Tuya: net.JoinHostPort(host, "0")}
	}
	if !f.manual {
		cfg.AutoReset = f.autoReset
	}
	if e.g.verbose > 0 {
		cfg.Log = e.stderr
	}
	stub, _ := espsim.ParseStubModel(f.stubModel)
	op, _ := powerLossOp(f.powerLossOp)
	cfg.Timing = f.timing
	cfg.ESP = func(c *espsim.Config) {
		c.Timing = !f.noTiming
		c.Unmarked = f.unmarked
		c.Stub = stub
		c.Seed = f.seed
		if !f.manual || e.changed("release-after") {
			c.ReleaseAfterWrite = f.releaseAfter
		}
		if id != nil {
			c.FlashID = uint32(id[0]) | uint32(id[1])<<8 | uint32(id[2])<<16
		}
		c.Faults = espsim.Faults{DropRate: f.drop, CorruptRate: f.corrupt, DupRate: f.dup, RxDropRate: f.rxDrop, RxCorruptRate: f.rxCorrupt, RxDupRate: f.rxDup,
			Delay: f.delay, DelayRate: f.delayRate, DisconnectAfter: f.disconnectAfter, UnplugAfter: f.unplugAfter, FaultAfter: f.faultAfter,
			CorruptFlashWriteAt: f.corruptAt, PowerLossAt: f.powerLossAt, PowerLossOp: op, ResetAtCommand: f.resetAt}
	}
	cfg.Beken = func(c *bksim.Config) {
		c.LinkWindow, c.IdleExit, c.ZeroEfuseKey, c.LockOnNoopSRWrite, c.StatusReg, c.Seed = f.linkWindow, f.idleExit, f.zeroKey, f.lockSR, sr, f.seed
		c.Unmarked = f.unmarked
		if id != nil {
			copy(c.FlashID[:], id)
		}
		c.Faults = bksim.Faults{DropRate: f.drop, CorruptRate: f.corrupt, DupRate: f.dup, RxDropRate: f.rxDrop, RxCorruptRate: f.rxCorrupt, RxDupRate: f.rxDup,
			Delay: f.delay, DelayRate: f.delayRate, DisconnectAfter: f.disconnectAfter, UnplugAfter: f.unplugAfter, FaultAfter: f.faultAfter,
			PowerLossAt: f.powerLossAt, PowerLossRate: f.powerLossRate, ResetAt: f.resetAt, ResetRate: f.resetRate, FlashInaccessible: f.flashOff}
	}
	return cfg, nil
}

func runSim(e *env, f simFlags) error {
	if f.save != "" {
		if _, err := os.Lstat(f.save); err == nil {
			return fmt.Errorf("--save %s exists; choose a new file: %w", f.save, flasher.ErrRefused)
		}
	}
	cfg, err := f.simConfig(e)
	if err != nil {
		return err
	}
	sim, err := virtual.NewSim(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	adapter, _ := transport.ParseAdapter(f.adapter)
	pty, err := transport.OpenPTYLink(transport.LinkOptions{Baud: 115200, Paced: !f.unpaced, Adapter: adapter, Latency: f.latency})
	if err != nil {
		return err
	}
	defer pty.Close()
	if f.link != "" {
		if err := pty.Link(f.link); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("--link %s exists and is not a symlink: %w", f.link, flasher.ErrRefused)
			}
			return err
		}
	}
	pace := "paced"
	if f.unpaced {
		pace = "unpaced"
	}
	fmt.Fprintf(e.stdout, "%s simulator on %s (%s, %s adapter)\n", sim, pty.SlavePath(), pace, adapter.Name)
	if f.link != "" {
		fmt.Fprintf(e.stdout, "linked at %s\n", f.link)
	}
	if a := sim.Addrs(); a.Station != "" {
		fmt.Fprintf(e.stdout, "network side (once its firmware runs): access point at %s, station at %s (native API %s, Tuya port %s)\n", a.AP, a.Station, a.API, a.Tuya)
	}
	fmt.Fprintf(e.stdout, "try: tuyaflash detect --port %s   (Ctrl-C stops the simulator)\n", pty.SlavePath())
	if f, ok := e.stdout.(*os.File); ok {
		f.Sync()
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	if f.manual {
		go manualUser(e, sim)
	}
	err = sim.Serve(ctx, pty)
	if f.save != "" {
		if werr := backup.WriteFileNew(f.save, sim.Flash()); werr != nil {
			return werr
		}
		fmt.Fprintf(e.stdout, "flash saved to %s\n", f.save)
	}
	if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return fmt.Errorf("simulator stopped: %w", err)
	}
	return nil
}

// manualUser is the bench user of --manual-reset, one command a line.
func manualUser(e *env, sim *virtual.Sim) {
	sc := bufio.NewScanner(e.stdin)
	for sc.Scan() {
		switch strings.ToLower(strings.TrimSpace(sc.Text())) {
		case "", "c", "cycle":
			sim.PowerCycle()
			fmt.Fprintln(e.stdout, "power-cycled (download mode)")
		case "b", "boot":
			sim.BootApp()
			fmt.Fprintln(e.stdout, "powered up into its firmware")
		case "o", "off":
			if sim.PowerOff() {
				fmt.Fprintln(e.stdout, "power off (Enter or boot powers it again)")
			} else {
				fmt.Fprintln(e.stdout, "this simulator cannot be switched off; Enter power-cycles it")
			}
		default:
			fmt.Fprintln(e.stdout, "Enter: power-cycle into download mode; boot: power-cycle into the firmware; off: cut the power")
		}
	}
}

// listVirtual lists the stored virtual devices.
func listVirtual(e *env) error {
	list, err := virtual.List("")
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "no virtual devices yet (the first use of --port sim:CHIP makes one)")
		return nil
	}
	for _, d := range list {
		fmt.Fprintf(e.stdout, "%-24s MAC %s  station %s  from %s  (%s)\n", d.Spec, d.MAC, d.Station, d.Origin, d.Dir)
	}
	return nil
}

// forgetVirtual deletes a stored virtual device, or all of them.
func forgetVirtual(e *env, what string) error {
	var specs []virtual.Spec
	if what == "all" {
		list, err := virtual.List("")
		if err != nil {
			return err
		}
		for _, d := range list {
			s, err := virtual.ParseSpec(d.Spec)
			if err == nil {
				specs = append(specs, s)
			}
		}
	} else {
		s, err := virtual.ParseSpec(virtual.Prefix + strings.TrimPrefix(what, virtual.Prefix))
		if err != nil {
			return usagef("--forget %v", err)
		}
		if s.File != "" {
			return usagef("--forget %s: name the device as CHIP[#NAME], without a flash file", what)
		}
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		fmt.Fprintln(e.stdout, "no virtual devices to forget")
	}
	for _, s := range specs {
		deleted, err := virtual.Forget(s, "")
		if err != nil {
			return err
		}
		if deleted {
			fmt.Fprintf(e.stdout, "forgot %s: its next use starts from a fresh image\n", s)
		} else {
			fmt.Fprintf(e.stdout, "%s was not stored (nothing to forget)\n", s)
		}
	}
	return nil
}
