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
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

func init() { register(simCmd()) }

type simFlags struct {
	chip, flashFile, link, save, flashID, mac string
	sr                                        string
	zeroKey, lockSR, timing, manual           bool
	autoReset, linkWindow                     time.Duration
	drop, corrupt, rxDrop                     float64
	disconnectAfter, faultAfter, seed         int64
}

func simCmd() *command {
	var f simFlags
	c := &command{name: "sim", summary: "serve a virtual chip on a pseudo-terminal for tuyaflash or any other tool",
		long: `Prints the pseudo-terminal's path (and links it at --link) and serves until
interrupted. The simulated user power-cycles the chip shortly after link checks
arrive (--auto-reset); with --manual-reset press Enter to power-cycle it.
Linux only.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.StringVar(&f.chip, "chip", "bk7231n", "chip to simulate: bk7231n or bk7231t")
		fs.StringVar(&f.flashFile, "flash", "", "load the flash from `file` (e.g. a real dump); default a synthetic image")
		fs.StringVar(&f.link, "link", "", "also make a symlink to the pty at `path` (replaced if it is a symlink)")
		fs.StringVar(&f.save, "save", "", "write the flash to `file` when the simulator stops (never overwrites)")
		fs.StringVar(&f.flashID, "flash-id", "", "JEDEC id as 6 hex digits (default EB6015, TH25Q16HB)")
		fs.StringVar(&f.mac, "mac", "", "MAC for the synthetic image's RF sector")
		fs.StringVar(&f.sr, "status-reg", "", "initial flash status register, hex (default 4004: protected)")
		fs.BoolVar(&f.zeroKey, "zero-key", false, "eFuse encryption key all zero (BK7231M-like)")
		fs.BoolVar(&f.lockSR, "lock-on-noop-wrsr", false, "a status-register write that changes nothing locks it (P25Q16HBK behaviour)")
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
	c.run = func(e *env, args []string) error {
		if len(args) > 0 {
			return usagef("sim takes no arguments")
		}
		return runSim(e, f)
	}
	return c
}

func runSim(e *env, f simFlags) error {
	chip, err := bksim.ParseChip(f.chip)
	if err != nil {
		return usagef("--chip: %v", err)
	}
	cfg := bksim.Config{Chip: chip, LinkWindow: f.linkWindow, Timing: f.timing, ZeroEfuseKey: f.zeroKey, LockOnNoopSRWrite: f.lockSR,
		Faults: bksim.Faults{DropRate: f.drop, CorruptRate: f.corrupt, RxDropRate: f.rxDrop, DisconnectAfter: f.disconnectAfter, FaultAfter: f.faultAfter},
		Seed:   f.seed}
	if !f.manual {
		cfg.AutoReset = f.autoReset
	}
	if f.flashFile != "" {
		if cfg.Flash, err = os.ReadFile(f.flashFile); err != nil {
			return err
		}
	}
	if f.flashID != "" {
		b, err := hex.DecodeString(f.flashID)
		if err != nil || len(b) != 3 {
			return usagef("--flash-id %q: want 6 hex digits such as EB6015", f.flashID)
		}
		copy(cfg.FlashID[:], b)
	}
	if f.mac != "" {
		m, err := flasher.ParseMAC(f.mac)
		if err != nil {
			return usagef("--mac: %v", err)
		}
		cfg.MAC = m
	}
	if f.sr != "" {
		var v uint16
		if _, err := fmt.Sscanf(f.sr, "%x", &v); err != nil {
			return usagef("--status-reg %q: want hex such as 0", f.sr)
		}
		cfg.StatusReg = &v
	}
	if e.g.verbose > 0 {
		cfg.Log = e.stderr
	}
	if f.save != "" {
		if _, err := os.Lstat(f.save); err == nil {
			return fmt.Errorf("--save %s exists; choose a new file: %w", f.save, flasher.ErrRefused)
		}
	}
	dev, err := bksim.New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
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
	fmt.Fprintf(e.stdout, "%s simulator on %s\n", strings.ToUpper(chip.String()), pty.SlavePath())
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
				dev.PowerCycle()
				fmt.Fprintln(e.stdout, "power-cycled")
			}
		}()
	}
	err = dev.Serve(ctx, pty)
	if f.save != "" {
		if werr := backup.WriteFileNew(f.save, dev.Flash()); werr != nil {
			return werr
		}
		fmt.Fprintf(e.stdout, "flash saved to %s\n", f.save)
	}
	if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return fmt.Errorf("simulator stopped: %w", err)
	}
	return nil
}
