package cli

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	bksim "github.com/tuyaflash/tuyaflash/devicesim/bk7231"
	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

func init() { register(simCmd()) }

type simFlags struct {
	chip, flashFile, link, save, flashID, mac string
	sr                                        string
	zeroKey, lockSR, timing, manual           bool
	flashSize                                 int
	corruptAt                                 int64
	autoReset, linkWindow                     time.Duration
	drop, corrupt, rxDrop                     float64
	disconnectAfter, faultAfter, seed         int64
}

func simCmd() *command {
	var f simFlags
	c := &command{name: "sim", summary: "serve a virtual chip on a pseudo-terminal for tuyaflash or any other tool",
		noJSON:     "sim serves a virtual chip until it is stopped and has no result to print",
		verbose:    []string{"the simulator's log of what it receives and answers"},
		interrupts: true,
		long: `Prints the pseudo-terminal's path (and links it at --link) and serves until
interrupted (Ctrl-C or SIGTERM stop it normally: exit code 0, and --save keeps
the flash). The simulated user power-cycles the chip shortly after link checks
arrive (--auto-reset); with --manual-reset press Enter to power-cycle it.
Linux only.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&f.chip, "chip", "bk7231n", "chip to simulate: "+strings.Join(simNames(), ", ")+" (also by module: t1 is a BK7238, t4 a BK7252N)")
		fs.StringVar(&f.flashFile, "flash", "", "load the flash from `file` (e.g. a real dump); default a synthetic image")
		fs.StringVar(&f.link, "link", "", "also make a symlink to the pty at `path` (replaced if it is a symlink)")
		fs.StringVar(&f.save, "save", "", "write the flash to `file` when the simulator stops (never overwrites)")
		fs.StringVar(&f.flashID, "flash-id", "", "JEDEC id as 6 hex digits MFR TYPE CAP (default: BK7231 EB6015 TH25Q16HB, ESP8266 a GD25Q of the flash size)")
		fs.StringVar(&f.mac, "mac", "", "MAC for the synthetic image's RF sector")
		fs.StringVar(&f.sr, "status-reg", "", "BK7231N: initial flash status register, hex (default 4004: protected)")
		fs.BoolVar(&f.zeroKey, "zero-key", false, "BK7231N: eFuse encryption key all zero, which makes it a BK7231M (the other Beken profiles have the zero key already)")
		fs.BoolVar(&f.lockSR, "lock-on-noop-wrsr", false, "BK7231N: a status-register write that changes nothing locks it (P25Q16HBK behaviour)")
		fs.IntVar(&f.flashSize, "flash-size", 0, "ESP8266: flash size in `bytes` of the synthetic image (default 1 MiB)")
		fs.Int64Var(&f.corruptAt, "corrupt-flash-at", 0, "ESP8266: a stuck bit at this flash `address` (MD5 verification must catch it)")
		fs.BoolVar(&f.timing, "timing", false, "realistic erase/program/CRC durations")
		fs.BoolVar(&f.manual, "manual-reset", false, "power-cycle only when Enter is pressed")
		fs.DurationVar(&f.autoReset, "auto-reset", 300*time.Millisecond, "simulated power-cycle this long after link checks start")
		fs.DurationVar(&f.linkWindow, "link-window", 0, "how long the chip listens after reset (default: the simulator's)")
		fs.Float64Var(&f.drop, "drop-rate", 0, "probability that a byte the chip sends is lost")
		fs.Float64Var(&f.corrupt, "corrupt-rate", 0, "probability that a byte the chip sends is changed")
		fs.Float64Var(&f.rxDrop, "rx-drop-rate", 0, "probability that a byte the host sends is lost")
		fs.Int64Var(&f.disconnectAfter, "disconnect-after", 0, "close the link after the chip received this many `bytes`")
		fs.Int64Var(&f.faultAfter, "fault-after", 0, "start faults after this many received `bytes`")
		fs.Int64Var(&f.seed, "seed", 1, "fault injection seed")
	}
	c.check = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("sim takes no arguments")
		}
		return f.check(e)
	}
	c.run = func(e *env, args []string) error { return runSim(e, f) }
	return c
}

// check refuses the knobs the chosen chip does not have, and those that do
// nothing in the combination given.
func (f *simFlags) check(e *env) error {
	_, espErr := espsim.ParseChip(f.chip)
	_, bkErr := bksim.ParseChip(f.chip)
	if espErr != nil && bkErr != nil {
		return usagef("--chip %q: want %s", f.chip, strings.Join(simNames(), ", "))
	}
	esp := espErr == nil
	only := map[string]bool{ // flag → for ESP8266 (true) or BK7231 (false)
		"flash-size": true, "corrupt-flash-at": true,
		"status-reg": false, "zero-key": false, "lock-on-noop-wrsr": false, "link-window": false,
	}
	for flag, forESP := range only {
		if e.changed(flag) && forESP != esp {
			which := "BK7231"
			if forESP {
				which = "ESP8266"
			}
			return usagef("--%s applies to the %s simulator, not to --chip %s", flag, which, f.chip)
		}
	}
	if f.flashFile != "" {
		for _, flag := range []string{"flash-size", "mac"} {
			if e.changed(flag) {
				return usagef("--%s shapes the synthetic flash image; with --flash the file is the flash", flag)
			}
		}
	}
	if f.manual && e.changed("auto-reset") {
		return usagef("--auto-reset and --manual-reset exclude each other")
	}
	faults := f.drop > 0 || f.corrupt > 0 || f.rxDrop > 0
	if !faults && e.changed("fault-after") {
		return usagef("--fault-after delays the faults of --drop-rate, --corrupt-rate or --rx-drop-rate; none is given")
	}
	if !faults && e.changed("seed") {
		return usagef("--seed seeds --drop-rate, --corrupt-rate and --rx-drop-rate; none is given")
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"drop-rate", f.drop}, {"corrupt-rate", f.corrupt}, {"rx-drop-rate", f.rxDrop}} {
		if r.v < 0 || r.v > 1 {
			return usagef("--%s %v: want a probability from 0 to 1", r.name, r.v)
		}
	}
	return nil
}

// simDevice is what runSim needs of either simulator.
type simDevice struct {
	serve func(ctx context.Context, l transport.Port) error
	flash func() []byte
}

func runSim(e *env, f simFlags) error {
	var flash []byte
	if f.flashFile != "" {
		var err error
		if flash, err = os.ReadFile(f.flashFile); err != nil {
			return err
		}
	}
	var mac flasher.MAC
	if f.mac != "" {
		m, err := flasher.ParseMAC(f.mac)
		if err != nil {
			return usagef("--mac: %v", err)
		}
		mac = m
	}
	var id []byte
	if f.flashID != "" {
		b, err := hex.DecodeString(f.flashID)
		if err != nil || len(b) != 3 {
			return usagef("--flash-id %q: want 6 hex digits such as EB6015", f.flashID)
		}
		id = b
	}
	if f.save != "" {
		if _, err := os.Lstat(f.save); err == nil {
			return fmt.Errorf("--save %s exists; choose a new file: %w", f.save, flasher.ErrRefused)
		}
	}
	var dev simDevice
	var powerCycle func()
	var name string
	if chip, err := espsim.ParseChip(f.chip); err == nil {
		cfg := espsim.Config{Chip: chip, Flash: flash, MAC: mac, Timing: f.timing, Seed: f.seed,
			Faults: espsim.Faults{DropRate: f.drop, CorruptRate: f.corrupt, RxDropRate: f.rxDrop, DisconnectAfter: f.disconnectAfter, FaultAfter: f.faultAfter, CorruptFlashWriteAt: f.corruptAt}}
		if !f.manual {
			cfg.AutoReset = f.autoReset
		}
		if id != nil {
			cfg.FlashID = uint32(id[0]) | uint32(id[1])<<8 | uint32(id[2])<<16
		}
		if cfg.Flash == nil && f.flashSize != 0 {
			cfg.Flash = espsim.DefaultFlash(chip, f.flashSize)
		}
		if e.g.verbose > 0 {
			cfg.Log = e.stderr
		}
		d, err := espsim.New(cfg)
		if err != nil {
			return usagef("%v", err)
		}
		dev = simDevice{func(ctx context.Context, l transport.Port) error { return d.Serve(ctx, l) }, d.Flash}
		name, powerCycle = strings.ToUpper(chip.String()), func() { d.PowerCycle(true) }
	} else {
		d, err := newBekenSim(e, f, flash, mac, id)
		if err != nil {
			return err
		}
		dev = simDevice{func(ctx context.Context, l transport.Port) error { return d.Serve(ctx, l) }, d.Flash}
		name, powerCycle = d.Chip().String(), d.PowerCycle
	}
	return serveSim(e, f, dev, name, powerCycle)
}

func newBekenSim(e *env, f simFlags, flash []byte, mac flasher.MAC, id []byte) (*bksim.Device, error) {
	chip, err := bksim.ParseChip(f.chip)
	if err != nil {
		return nil, usagef("--chip %q: want %s", f.chip, strings.Join(simNames(), ", "))
	}
	cfg := bksim.Config{Chip: chip, Flash: flash, MAC: mac, LinkWindow: f.linkWindow, Timing: f.timing, ZeroEfuseKey: f.zeroKey, LockOnNoopSRWrite: f.lockSR,
		Faults: bksim.Faults{DropRate: f.drop, CorruptRate: f.corrupt, RxDropRate: f.rxDrop, DisconnectAfter: f.disconnectAfter, FaultAfter: f.faultAfter},
		Seed:   f.seed}
	if !f.manual {
		cfg.AutoReset = f.autoReset
	}
	if id != nil {
		copy(cfg.FlashID[:], id)
	}
	if f.sr != "" {
		var v uint16
		if _, err := fmt.Sscanf(f.sr, "%x", &v); err != nil {
			return nil, usagef("--status-reg %q: want hex such as 0", f.sr)
		}
		cfg.StatusReg = &v
	}
	if e.g.verbose > 0 {
		cfg.Log = e.stderr
	}
	d, err := bksim.New(cfg)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return d, nil
}

// serveSim serves dev on a new pseudo-terminal until interrupted.
func serveSim(e *env, f simFlags, dev simDevice, name string, powerCycle func()) error {
	pty, err := transport.OpenPTY(115200)
	if err != nil {
		return err
	}
	defer pty.Close()
	if f.link != "" {
		if st, err := os.Lstat(f.link); err == nil {
			if st.Mode()&os.ModeSymlink == 0 {
				return fmt.Errorf("--link %s exists and is not a symlink: %w", f.link, flasher.ErrRefused)
			}
			os.Remove(f.link)
		}
		if err := os.Symlink(pty.SlavePath(), f.link); err != nil {
			return err
		}
		defer os.Remove(f.link)
	}
	fmt.Fprintf(e.stdout, "%s simulator on %s\n", name, pty.SlavePath())
	if f.link != "" {
		fmt.Fprintf(e.stdout, "linked at %s\n", f.link)
	}
	fmt.Fprintf(e.stdout, "try: tuyaflash detect --port %s   (Ctrl-C stops the simulator)\n", pty.SlavePath())
	if f, ok := e.stdout.(*os.File); ok {
		f.Sync()
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	if f.manual {
		go func() {
			sc := bufio.NewScanner(e.stdin)
			for sc.Scan() {
				powerCycle()
				fmt.Fprintln(e.stdout, "power-cycled")
			}
		}()
	}
	err = dev.serve(ctx, pty)
	if f.save != "" {
		if werr := backup.WriteFileNew(f.save, dev.flash()); werr != nil {
			return werr
		}
		fmt.Fprintf(e.stdout, "flash saved to %s\n", f.save)
	}
	if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return fmt.Errorf("simulator stopped: %w", err)
	}
	return nil
}
