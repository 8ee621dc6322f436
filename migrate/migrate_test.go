package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
	"github.com/tuyaflash/tuyaflash/postflash"
	"github.com/tuyaflash/tuyaflash/provision"
)

// checkMigrated asserts what a user checks after a good run: one verified
// backup of the stock flash in the store, the new firmware in flash and on
// the network with its pins, the inventory and its journal saying so, and
// the tinytuya entry moved.
func checkMigrated(t *testing.T, s *setup, port string, c *fakeChip, stock []byte, p *PortResult) {
	t.Helper()
	if p.Result != ResultMigrated {
		t.Fatalf("%s: result %q (%s, hint %s); steps %s", port, p.Result, p.Error, p.Hint, statuses(p))
	}
	backups := s.storedBackups()
	var mine []string
	for _, b := range backups {
		if data, _ := os.ReadFile(b); bytes.Equal(data, stock) {
			mine = append(mine, b)
		}
	}
	if len(mine) != 1 {
		t.Errorf("%d stored backups of the stock flash, want exactly 1 (store: %v)", len(mine), backups)
	}
	if p.Backup == "" || !slices.Contains(mine, p.Backup) {
		t.Errorf("the result names backup %q, not the stored stock dump %v", p.Backup, mine)
	}
	c.mu.Lock()
	fw, online, pins := c.firmware(), c.online(), c.pins
	c.mu.Unlock()
	if fw != c.kind || !online {
		t.Errorf("the chip runs %s (online %v), want %s online", fw, online, c.kind)
	}
	if c.kind == postflash.OpenBeken && !s.ownPins {
		// rl1_pin:6 → Rel (1) on channel 1, bt1_pin:8 → Btn (3) on 1.
		if pins[6] != [2]int{1, 1} || pins[8] != [2]int{3, 1} {
			t.Errorf("pins on the device: %v", pins)
		}
	}
	inv := s.inventory()
	var d *inventory.Device
	for _, dev := range inv.Devices() {
		if dev.MAC == c.info.MAC.String() {
			d = &dev
		}
	}
	if d == nil {
		t.Fatalf("no inventory record for %s", c.info.MAC)
	}
	if len(d.Backups) != 1 || d.Backups[0].Path != p.Backup {
		t.Errorf("inventory backups %+v", d.Backups)
	}
	if len(d.Writes) != 1 || !d.Writes[0].Verified || d.Firmware != string(c.kind) && d.Firmware != "demo" {
		t.Errorf("inventory writes %+v, firmware %q", d.Writes, d.Firmware)
	}
	if d.LastVerify == nil || !d.LastVerify.OK || d.IP == "" {
		t.Errorf("inventory verification %+v, IP %q", d.LastVerify, d.IP)
	}
	m := d.Migration
	if m == nil || m.Outcome != inventory.OutcomeMigrated || m.Completed.IsZero() || m.Port == "" {
		t.Fatalf("journal %+v", m)
	}
	for _, st := range Steps {
		if got := m.StepStatus(string(st)); got != inventory.StepDone && got != inventory.StepNote {
			t.Errorf("journal: step %s is %q", st, got)
		}
	}
	if m.Backup == nil || m.Backup.Path != p.Backup || m.WiFi == nil || m.WiFi.SSID == "" || m.Host == "" || m.Verify == nil {
		t.Errorf("journal facts: backup %+v wifi %+v host %q verify %+v", m.Backup, m.WiFi, m.Host, m.Verify)
	}
	raw, _ := os.ReadFile(s.o.InventoryPath)
	if bytes.Contains(raw, []byte(homePass)) || bytes.Contains(raw, []byte(VirtualPassword)) {
		t.Error("the inventory holds a Wi-Fi password")
	}
}

func TestWholeStory(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fam       flasher.Family
		virtual   bool
		wantPins  Status
		provision string
	}{
		{"BK7231N OpenBeken over its access point", flasher.BK7231N, false, StatusDone, "provision-ap"},
		{"BK7231T OpenBeken over its access point", flasher.BK7231T, false, StatusDone, "provision-ap"},
		{"ESP8266 Tasmota over the serial console", flasher.ESP8266, false, StatusNote, "provision-serial"},
		{"virtual BK7231N on the virtual network", flasher.BK7231N, true, StatusDone, "provision-ap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSetup(t)
				port := "p1"
				if tc.virtual {
					port = "sim:bk7231n"
				}
				c := s.bench.add(port, newChip(t, tc.fam, "D8:1F:12:00:00:01", 1))
				if tc.virtual {
					c.virt = &Virtual{Station: "127.0.0.2:8080"}
					s.o.WiFi = provision.WiFi{}
				}
				stock := bytes.Clone(c.flash)
				rep := s.run(port)
				p := rep.Ports[0]
				checkMigrated(t, s, port, c, stock, p)
				if rep.Failed != 0 {
					t.Errorf("failed = %d", rep.Failed)
				}
				if st := p.Step(StepPins); st == nil || st.Status != tc.wantPins {
					t.Errorf("pins step %+v", st)
				}
				if !slices.Contains(s.bench.changes, tc.provision) {
					t.Errorf("provisioned by %v, want %s", s.bench.changes, tc.provision)
				}
				if tc.fam.Beken() {
					if len(p.Templates) == 0 {
						t.Error("no pin templates saved")
					}
					for _, f := range p.Templates {
						if filepath.Dir(f) != filepath.Dir(p.Backup) {
							t.Errorf("template %s not beside the backup", f)
						}
					}
					if got := s.archived(); !slices.Equal(got, []string{"bf0123456789abcdef01"}) {
						t.Errorf("tinytuya archive holds %v", got)
					}
				} else if st := p.Step(StepConfig); st.Status != StatusNote {
					t.Errorf("config step on ESP8266: %+v (want a note)", st)
				}
				if p.HomeAssistant == nil {
					t.Error("no Home Assistant hint")
				}
				if tc.virtual && p.Host != "127.0.0.2:8080" {
					t.Errorf("virtual device found at %q", p.Host)
				}
				if tc.fam == flasher.ESP8266 && !slices.ContainsFunc(s.events(), func(e Event) bool {
					return e.Kind == KindAction && e.Step == StepReboot && strings.Contains(e.Message, "GPIO0")
				}) {
					t.Error("the ESP8266 power-cycle instruction was not an action event of the reboot step")
				}
			})
		})
	}
}

// TestRerunAfterSuccessRedoesNothing: running the same command again on a
// migrated device re-checks every step and changes nothing.
func TestRerunAfterSuccessRedoesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		c := s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		stock := bytes.Clone(c.flash)
		checkMigrated(t, s, "p1", c, stock, s.run("p1").Ports[0])
		read := c.bytesRead
		s.bench.changes = nil
		p := s.run("p1").Ports[0]
		checkMigrated(t, s, "p1", c, stock, p)
		for _, st := range []Step{StepBackup, StepWrite, StepProvision, StepPins} {
			if got := p.Step(st).Status; got != StatusReused {
				t.Errorf("second run: %s %s (%s), want reused", st, got, p.Step(st).Message)
			}
		}
		if c.bytesRead != read {
			t.Errorf("the second run read %d bytes of flash (a second backup)", c.bytesRead-read)
		}
		if len(s.bench.changes) != 0 {
			t.Errorf("the second run changed the device over the network: %v", s.bench.changes)
		}
	})
}

// TestResumeAfterKill stops the run at each step — before it starts, once
// its effect is in place but before the journal says so, and in the middle
// of the transfers — as kill -9 would, then runs the same command again:
// the end state is the same as an uninterrupted run, with one backup.
func TestResumeAfterKill(t *testing.T) {
	type point struct {
		name string
		kill func(Event) bool
	}
	var points []point
	for _, st := range Steps {
		points = append(points,
			point{"start of " + string(st), func(e Event) bool { return e.Step == st && e.Kind == KindStepStart }},
			point{"end of " + string(st), func(e Event) bool { return e.Step == st && e.Kind == KindStepEnd }})
	}
	for _, op := range []struct {
		step Step
		frac int64
	}{{StepBackup, 3}, {StepBackup, 2}, {StepWrite, 2}} {
		points = append(points, point{"middle of " + string(op.step), func(e Event) bool {
			return e.Step == op.step && e.Kind == KindProgress && e.Done > 0 && e.Done >= e.Total/op.frac
		}})
	}
	for _, fam := range []flasher.Family{flasher.BK7231N, flasher.ESP8266} {
		for _, pt := range points {
			t.Run(string(fam)+"/"+pt.name, func(t *testing.T) {
				t.Parallel() // mostly waiting for fsync
				synctest.Test(t, func(t *testing.T) {
					s := newSetup(t)
					c := s.bench.add("p1", newChip(t, fam, "D8:1F:12:00:00:01", 1))
					stock := bytes.Clone(c.flash)
					s.kill = pt.kill
					first := s.run("p1").Ports[0]
					if !s.killed["p1"] {
						t.Fatalf("the kill point was never reached: %s", statuses(first))
					}
					if first.Result == ResultMigrated {
						t.Fatal("a killed run reported success")
					}
					s.kill = nil
					p := s.run("p1").Ports[0]
					checkMigrated(t, s, "p1", c, stock, p)
					if c.bytesRead > int64(2*c.info.FlashSize) {
						t.Errorf("read %d KiB of a %d KiB flash over both runs", c.bytesRead/1024, c.info.FlashSize/1024)
					}
				})
			})
		}
	}
}

// TestBackupSavedButNotJournaled: a kill between the backup's save and
// the journal's update leaves a dump the journal does not know; the next
// run finds it in the store and the chip confirms it: no second backup.
func TestBackupSavedButNotJournaled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		c := s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		stock := bytes.Clone(c.flash)
		s.o.Until = StepBackup
		if p := s.run("p1").Ports[0]; p.Result != ResultStopped {
			t.Fatalf("--until backup: %s %s", p.Result, p.Error)
		}
		os.Remove(s.o.InventoryPath) // the journal never heard of it
		read := c.bytesRead
		s.o.Until = ""
		p := s.run("p1").Ports[0]
		checkMigrated(t, s, "p1", c, stock, p)
		if st := p.Step(StepBackup); st.Status != StatusReused {
			t.Errorf("backup step %+v", st)
		}
		if c.bytesRead != read {
			t.Errorf("read the flash again (%d bytes)", c.bytesRead-read)
		}
	})
}

// TestFlashChangedSinceBackup: a journaled backup that the chip no longer
// matches (the stock firmware ran and changed its config) is not reused.
func TestFlashChangedSinceBackup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		c := s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		s.o.Until = StepBackup
		s.run("p1")
		c.flash[0x1E1000] ^= 0xFF
		changed := bytes.Clone(c.flash)
		s.o.Until = ""
		p := s.run("p1").Ports[0]
		if p.Result != ResultMigrated || p.Step(StepBackup).Status != StatusDone || p.BackupReused {
			t.Fatalf("%s: backup %+v", p.Result, p.Step(StepBackup))
		}
		if got, _ := os.ReadFile(p.Backup); !bytes.Equal(got, changed) {
			t.Error("the new backup is not the flash as it is now")
		}
		if n := len(s.storedBackups()); n != 2 {
			t.Errorf("%d backups in the store, want 2 (the old one is never removed)", n)
		}
	})
}

// TestMACMismatchIsFlagged: the device that answers is not the one that
// was flashed — the user's --host names another device on the network, or
// the access point that answers is another module's.
func TestMACMismatchIsFlagged(t *testing.T) {
	t.Run("another device at --host", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newSetup(t)
			s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
			other := s.bench.add("elsewhere", newChip(t, flasher.BK7231N, "D8:1F:12:99:99:99", 9))
			copy(other.flash[other.image[0].Addr:], other.image[0].Data)
			other.running, other.ssid, other.pass, other.ip = true, homeSSID, homePass, "10.0.0.99"
			s.o.Host = "10.0.0.99"
			checkFlagged(t, s, s.run("p1"), true)
		})
	})
	t.Run("another module's access point", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newSetup(t)
			c := s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
			c.netMAC = "D8:1F:12:99:99:99"
			checkFlagged(t, s, s.run("p1"), false)
		})
	})
}

func checkFlagged(t *testing.T, s *setup, rep *Report, verified bool) {
	t.Helper()
	{
		p := rep.Ports[0]
		if p.Result != ResultFlagged || rep.Failed != 1 {
			t.Fatalf("result %s, failed %d: %s", p.Result, rep.Failed, p.Error)
		}
		if !strings.Contains(p.Error, "D8:1F:12:99:99:99") || p.Hint == "" {
			t.Errorf("error %q hint %q", p.Error, p.Hint)
		}
		d := s.inventory().Find("D8:1F:12:00:00:01")[0]
		if d.Migration.Outcome != inventory.OutcomeFlagged || !d.Migration.Completed.IsZero() {
			t.Errorf("journal outcome %q", d.Migration.Outcome)
		}
		if verified && (d.LastVerify == nil || d.LastVerify.OK) || d.IP != "" {
			t.Errorf("verification recorded as %+v, IP %q", d.LastVerify, d.IP)
		}
		if st := p.Step(StepRecord); st != nil {
			t.Errorf("record step ran: %+v", st)
		}
		if len(s.archived()) != 0 {
			t.Error("the tinytuya entry of a flagged device was moved")
		}
	}
}

func TestNeverComesOnline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		s.o.WiFi.Password = "wrong"
		start := time.Now()
		rep := s.run("p1")
		p := rep.Ports[0]
		if p.Result != ResultFailed || rep.Failed != 1 {
			t.Fatalf("result %s", p.Result)
		}
		if st := p.Steps[len(p.Steps)-1]; st.Step != StepFind || st.Status != StatusFailed {
			t.Errorf("failed at %+v", st)
		}
		for _, want := range []string{"password", "--from provision", "OpenBK7231N_"} {
			if !strings.Contains(p.Hint, want) {
				t.Errorf("hint lacks %q: %s", want, p.Hint)
			}
		}
		if !strings.Contains(p.Error, "did not come online") {
			t.Errorf("error %q", p.Error)
		}
		if waited := time.Since(start); waited < s.o.OnlineWait || waited > s.o.OnlineWait+time.Minute {
			t.Errorf("gave up after %s (OnlineWait %s)", waited, s.o.OnlineWait)
		}
		var attempts int
		for _, e := range s.events() {
			if e.Step == StepFind && e.Kind == KindNote {
				attempts++
			}
		}
		if attempts < 3 {
			t.Errorf("%d progress notes while waiting", attempts)
		}
		// The right password, from provision on: the run completes.
		s.o.WiFi.Password, s.o.From = homePass, StepProvision
		if p := s.run("p1").Ports[0]; p.Result != ResultMigrated {
			t.Errorf("--from provision with the right password: %s %s %s", p.Result, p.Error, statuses(p))
		}
	})
}

// TestFourPortsInParallel: four devices with different speeds take about
// as long as the slowest one alone, not the sum.
func TestFourPortsInParallel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chunks := []time.Duration{4 * time.Millisecond, 6 * time.Millisecond, 9 * time.Millisecond, 13 * time.Millisecond}
		single := make([]time.Duration, len(chunks))
		for i, ch := range chunks {
			s := newSetup(t)
			c := s.bench.add("sim:bk7231n", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:0"+string(rune('1'+i)), uint32(i+1)))
			c.virt = &Virtual{Station: "127.0.0.9:80", AP: "127.0.0.9:81"}
			c.chunk = ch
			s.bench.connectDelay = 2 * time.Second
			s.o.WiFi = provision.WiFi{}
			start := time.Now()
			if p := s.run("sim:bk7231n").Ports[0]; p.Result != ResultMigrated {
				t.Fatalf("alone: %s %s", p.Result, p.Error)
			}
			single[i] = time.Since(start)
		}
		s := newSetup(t)
		s.bench.connectDelay = 2 * time.Second
		var ports []string
		var chips []*fakeChip
		var stocks [][]byte
		for i, ch := range chunks {
			port := "sim:bk7231n:" + string(rune('1'+i))
			c := s.bench.add(port, newChip(t, flasher.BK7231N, "D8:1F:12:00:00:0"+string(rune('1'+i)), uint32(i+1)))
			c.virt = &Virtual{Station: "127.0.0." + string(rune('1'+i)) + ":80", AP: "127.0.0." + string(rune('1'+i)) + ":81"}
			c.chunk = ch
			ports, chips, stocks = append(ports, port), append(chips, c), append(stocks, bytes.Clone(c.flash))
		}
		s.o.WiFi = provision.WiFi{}
		start := time.Now()
		rep := s.run(ports...)
		wall := time.Since(start)
		for i, p := range rep.Ports {
			checkMigrated(t, s, ports[i], chips[i], stocks[i], p)
		}
		slowest, sum := slices.Max(single), time.Duration(0)
		for _, d := range single {
			sum += d
		}
		t.Logf("alone: %v; four at once: %v (sum %v)", single, wall, sum)
		if wall < slowest || wall > slowest+slowest/10 {
			t.Errorf("four ports took %v; the slowest alone takes %v (sum %v)", wall, slowest, sum)
		}
		if !strings.Contains(rep.Table(), "sim:bk7231n:4") || strings.Count(rep.Table(), ResultMigrated) != 4 {
			t.Errorf("summary table:\n%s", rep.Table())
		}
	})
}

// TestRepeatedVirtualPort: a sim: port named twice is two virtual devices,
// the second one opened as the next instance (sim:bk7231n#2), never the
// same device twice.
func TestRepeatedVirtualPort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		var chips []*fakeChip
		for i, port := range []string{"sim:bk7231n", "sim:bk7231n#2", "sim:bk7231n#a", "sim:bk7231n#a-2"} {
			c := s.bench.add(port, newChip(t, flasher.BK7231N, "D8:1F:12:00:00:0"+string(rune('1'+i)), uint32(i+1)))
			c.virt = &Virtual{Station: fmt.Sprintf("127.0.0.%d:80", i+1), AP: fmt.Sprintf("127.0.0.%d:81", i+1)}
			chips = append(chips, c)
		}
		s.o.WiFi = provision.WiFi{}
		rep := s.run("sim:bk7231n", "sim:bk7231n", "sim:bk7231n#a", "sim:bk7231n#a")
		for i, want := range []string{"sim:bk7231n", "sim:bk7231n#2", "sim:bk7231n#a", "sim:bk7231n#a-2"} {
			if p := rep.Ports[i]; p.Port != want || p.Result != ResultMigrated {
				t.Errorf("port %d: %s %s %s, want %s migrated", i, p.Port, p.Result, p.Error, want)
			}
			if chips[i].connects != 1 {
				t.Errorf("%s connected %d times", want, chips[i].connects)
			}
		}
	})
}

// TestDemoImageOnlyOnVirtualDevices: the demo image is refused on a real
// chip before anything is written, and taken by a virtual one.
func TestDemoImageOnlyOnVirtualDevices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		s.o.Firmwares = demoFirmwares{}
		real := s.bench.add("/dev/ttyUSB0", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		stock := bytes.Clone(real.flash)
		s.o.Firmware = DemoFirmware
		rep := s.run("/dev/ttyUSB0")
		if p := rep.Ports[0]; p.Result != ResultFailed || !errors.Is(p.Err, flasher.ErrRefused) || !strings.Contains(p.Error, "demo image") {
			t.Errorf("real chip: %s %v", p.Result, p.Err)
		}
		if !bytes.Equal(real.flash, stock) {
			t.Error("the real chip was written")
		}
	})
}

func TestSameDeviceOnTwoPorts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		c := s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		s.bench.chips["p2"] = c // two adapters wired to one module
		stock := bytes.Clone(c.flash)
		rep := s.run("p1", "p2")
		var done, dup *PortResult
		for _, p := range rep.Ports {
			switch p.Result {
			case ResultMigrated:
				done = p
			case ResultDuplicate:
				dup = p
			}
		}
		if done == nil || dup == nil {
			t.Fatalf("results %s / %s", rep.Ports[0].Result, rep.Ports[1].Result)
		}
		checkMigrated(t, s, done.Port, c, stock, done)
		if !strings.Contains(dup.Error, "same device as on "+done.Port) {
			t.Errorf("duplicate says %q", dup.Error)
		}
		if rep.Failed != 0 {
			t.Errorf("failed = %d: the same device on a second adapter is not a failure", rep.Failed)
		}
		if c.bytesRead != int64(c.info.FlashSize) {
			t.Errorf("read %d KiB: backed up more than once", c.bytesRead/1024)
		}
	})
}

// TestPlaceholderMACsWait: two boards whose MAC is the same placeholder
// cannot be told apart by identity: the second waits for the first, then
// its own flash decides (its own backup).
func TestPlaceholderMACsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		a := s.bench.add("sim:bk7231n:a", newChip(t, flasher.BK7231N, "C8:47:8C:00:00:00", 1))
		b := s.bench.add("sim:bk7231n:b", newChip(t, flasher.BK7231N, "C8:47:8C:00:00:00", 2))
		a.virt = &Virtual{Station: "127.0.0.1:80", AP: "127.0.0.1:81"}
		b.virt = &Virtual{Station: "127.0.0.2:80", AP: "127.0.0.2:81"}
		s.o.WiFi = provision.WiFi{}
		rep := s.run("sim:bk7231n:a", "sim:bk7231n:b")
		for _, p := range rep.Ports {
			if p.Result != ResultMigrated {
				t.Errorf("%s: %s %s (%s)", p.Port, p.Result, p.Error, statuses(p))
			}
		}
		if n := len(s.storedBackups()); n != 2 {
			t.Errorf("%d backups, want one per board", n)
		}
		if rep.Ports[0].Key == rep.Ports[1].Key {
			t.Errorf("both boards recorded as %s", rep.Ports[0].Key)
		}
		waited := slices.ContainsFunc(s.events(), func(e Event) bool { return strings.Contains(e.Message, "waiting until it is done") })
		if !waited {
			t.Error("the second board did not wait for the first")
		}
	})
}

func TestSameAdapterTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		s.bench.add("/dev/ttyUSB0", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		s.o.ResolvePort = func(p string) (string, error) { return "/dev/ttyUSB0", nil }
		s.o.Until = StepBackup
		rep := s.run("/dev/ttyUSB0", "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0")
		if rep.Ports[0].Result != ResultStopped || rep.Ports[1].Result != ResultDuplicate {
			t.Fatalf("results %s, %s", rep.Ports[0].Result, rep.Ports[1].Result)
		}
		if !strings.Contains(rep.Ports[1].Error, "same adapter as /dev/ttyUSB0") {
			t.Errorf("duplicate: %s", rep.Ports[1].Error)
		}
		if n := s.bench.chips["/dev/ttyUSB0"].connects; n != 1 {
			t.Errorf("the adapter was opened %d times", n)
		}
	})
}

func TestFromUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		c := s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		stock := bytes.Clone(c.flash)

		// Only the backup.
		s.o.Until = StepBackup
		p := s.run("p1").Ports[0]
		if p.Result != ResultStopped || statuses(p) != "detect=done backup=done config=skipped firmware=skipped write=skipped reboot=skipped provision=skipped find=skipped verify=skipped pins=skipped record=skipped" {
			t.Fatalf("--until backup: %s: %s", p.Result, statuses(p))
		}
		if c.firmware() != postflash.StockTuya {
			t.Fatal("--until backup wrote the chip")
		}

		// Write without a backup on record is refused without --yes.
		s2 := newSetup(t)
		s2.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:02", 2))
		s2.o.From, s2.o.Until = StepFirmware, StepWrite
		p = s2.run("p1").Ports[0]
		if p.Result != ResultFailed || !errors.Is(p.Err, flasher.ErrRefused) || !strings.Contains(p.Hint, "--yes") {
			t.Errorf("write without a backup: %s %v (%s)", p.Result, p.Err, p.Hint)
		}
		s2.o.Yes = true
		if p = s2.run("p1").Ports[0]; p.Result != ResultStopped {
			t.Errorf("--yes: %s %s", p.Result, p.Error)
		}

		// From the config to the reboot: the backup on record is used.
		s.o.From, s.o.Until = StepConfig, StepReboot
		p = s.run("p1").Ports[0]
		if p.Result != ResultStopped || p.Backup == "" || p.Step(StepWrite).Status != StatusDone || p.Step(StepBackup).Status != StatusSkipped {
			t.Fatalf("--from config --until reboot: %s %s: %s", p.Result, p.Error, statuses(p))
		}
		// The rest, without download mode: continues the journal of the
		// port.
		connects := c.connects
		s.o.From, s.o.Until = StepProvision, ""
		p = s.run("p1").Ports[0]
		checkMigrated(t, s, "p1", c, stock, p)
		if c.connects != connects {
			t.Error("--from provision put the chip in download mode")
		}
		// --from provision on a port without such a journal.
		if p = s.run("p9").Ports[0]; p.Result != ResultFailed || !strings.Contains(p.Error, "no migration on p9") {
			t.Errorf("--from provision on an unknown port: %s %s", p.Result, p.Error)
		}
	})
}

// snapshot maps every file under dir to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	return out
}

func TestDryRunChangesNothing(t *testing.T) {
	for _, prior := range []Step{"", StepBackup, StepRecord} {
		t.Run("after "+string(prior), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSetup(t)
				c := s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
				if prior != "" {
					s.o.Until = prior
					s.run("p1")
					s.o.Until = ""
				}
				c.running = false
				before, flash := snapshot(t, s.dir), bytes.Clone(c.flash)
				s.bench.changes = nil
				read := c.bytesRead
				s.o.DryRun = true
				rep := s.run("p1")
				p := rep.Ports[0]
				if p.Result != ResultPlanned || !rep.DryRun {
					t.Fatalf("%s %s: %s", p.Result, p.Error, statuses(p))
				}
				for _, st := range p.Steps[1:] {
					if st.Status != StatusPlanned && st.Status != StatusNote && st.Status != StatusReused {
						t.Errorf("step %s: %s", st.Step, st.Status)
					}
				}
				if st := p.Step(StepWrite); !strings.Contains(st.Message, "0x011000") {
					t.Errorf("the plan does not say where it writes: %q", st.Message)
				}
				if prior == StepRecord {
					// The plan re-checks what earlier runs did.
					for _, st := range []Step{StepBackup, StepWrite, StepProvision} {
						if got := p.Step(st).Status; got != StatusReused {
							t.Errorf("dry run after a migration: %s %s (%s)", st, got, p.Step(st).Message)
						}
					}
				}
				after := snapshot(t, s.dir)
				for f, v := range after {
					if before[f] != v {
						t.Errorf("dry run changed %s", f)
					}
				}
				for f := range before {
					if _, ok := after[f]; !ok {
						t.Errorf("dry run removed %s", f)
					}
				}
				if !bytes.Equal(c.flash, flash) || c.bytesRead != read || len(s.bench.changes) != 0 {
					t.Errorf("dry run touched the device: flash same %v, read %d, network %v", bytes.Equal(c.flash, flash), c.bytesRead-read, s.bench.changes)
				}
			})
		})
	}
}

func TestChecksBeforeTheFirstPrompt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(s *setup)
		ports  []string
		want   string
		usage  bool
	}{
		{"firmware not in the cache", func(s *setup) { s.fws.notCached = true }, []string{"p1"}, "firmware fetch openbeken --chip bk7231n", false},
		{"no SSID for a real device", func(s *setup) { s.o.WiFi = provision.WiFi{} }, []string{os.DevNull}, "--ssid is required", true},
		{"bad tinytuya file", func(s *setup) { os.WriteFile(s.o.TinyTuya[0], []byte(`{"a":1}`), 0o600) }, []string{"p1"}, "not a tinytuya device file", false},
		{"missing tinytuya file", func(s *setup) { s.o.TinyTuya = []string{filepath.Join(s.dir, "nope.json")} }, []string{"p1"}, "nope.json", false},
		{"backup folder not writable", func(s *setup) {
			os.WriteFile(filepath.Join(s.dir, "file"), nil, 0o600)
			s.o.BackupRoot = filepath.Join(s.dir, "file", "backups")
		}, []string{"p1"}, "backup folder", false},
		{"until before from", func(s *setup) { s.o.From, s.o.Until = StepWrite, StepBackup }, []string{"p1"}, "--until backup comes before --from write", true},
		{"missing port", func(s *setup) { s.o.ResolvePort = filepath.EvalSymlinks }, []string{"/dev/ttyNOPE9"}, "/dev/ttyNOPE9", false},
		{"no adapters for all", func(s *setup) {}, []string{AllPorts}, "no USB-serial adapter", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t)
			s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
			s.o.Chip = flasher.BK7231N
			tc.change(s)
			o := s.o
			o.Ports = tc.ports
			rep, err := Run(context.Background(), o)
			if err == nil {
				t.Fatalf("no error; report %+v", rep.Ports[0])
			}
			if msg := err.Error() + " " + flasher.Hint(err); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q lacks %q", msg, tc.want)
			}
			var ue *UsageError
			if errors.As(err, &ue) != tc.usage {
				t.Errorf("usage error %v, want %v", errors.As(err, &ue), tc.usage)
			}
			if c := s.bench.chips["p1"]; c.connects != 0 {
				t.Error("connected before the checks passed")
			}
		})
	}
}

func TestEventsAndReportMarshal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		rep := s.run("p1")
		evs := s.events()
		var starts, ends, progress, actions int
		for _, e := range evs {
			if e.Port != "p1" || e.Time.IsZero() {
				t.Fatalf("event without port or time: %+v", e)
			}
			switch e.Kind {
			case KindStepStart:
				starts++
			case KindStepEnd:
				ends++
			case KindProgress:
				progress++
				if e.Total <= 0 || e.Done > e.Total || e.Op == "" {
					t.Errorf("progress event %+v", e)
				}
			case KindAction:
				actions++
			}
		}
		if starts != len(Steps) || ends != len(Steps) {
			t.Errorf("%d starts, %d ends for %d steps", starts, ends, len(Steps))
		}
		if progress < 10 || progress > 4*(progressSteps+2) {
			t.Errorf("%d progress events (throttled to about %d per transfer)", progress, progressSteps)
		}
		if actions == 0 {
			t.Error("no action event (power-cycle prompt)")
		}
		last := evs[len(evs)-1]
		if last.Kind != KindPortEnd || last.Result == nil || last.Result.Result != ResultMigrated {
			t.Errorf("last event %+v", last)
		}
		b, err := json.Marshal(evs[1])
		if err != nil {
			t.Fatal(err)
		}
		var flat map[string]any
		json.Unmarshal(b, &flat)
		for _, k := range []string{"time", "port", "kind"} {
			if _, ok := flat[k]; !ok {
				t.Errorf("event JSON %s lacks %q", b, k)
			}
		}
		b, err = json.Marshal(rep)
		if err != nil || !bytes.Contains(b, []byte(`"result":"migrated"`)) || bytes.Contains(b, []byte(homePass)) {
			t.Errorf("report JSON: %v %s", err, b)
		}
	})
}

// TestInterrupted: Ctrl-C in the middle of the backup ends the run as
// interrupted (not as a link fault), and the next run resumes the backup.
func TestInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSetup(t)
		c := s.bench.add("p1", newChip(t, flasher.BK7231N, "D8:1F:12:00:00:01", 1))
		c.chunk = time.Millisecond
		stock := bytes.Clone(c.flash)
		ctx, cancel := context.WithCancel(context.Background())
		s.kill = func(e Event) bool {
			if e.Kind == KindProgress && e.Step == StepBackup && e.Done >= e.Total/2 {
				cancel()
			}
			return false
		}
		o := s.o
		o.Ports = []string{"p1"}
		rep, err := Run(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		p := rep.Ports[0]
		if p.Result != ResultFailed || !errors.Is(p.Err, context.Canceled) || !strings.Contains(p.Hint, "run the same command again") {
			t.Fatalf("interrupted run: %s %v (hint %q)", p.Result, p.Err, p.Hint)
		}
		if strings.Contains(p.Hint, "wires") {
			t.Errorf("an interruption blamed on the wiring: %s", p.Hint)
		}
		s.kill = nil
		p = s.run("p1").Ports[0]
		checkMigrated(t, s, "p1", c, stock, p)
		if !strings.Contains(p.Step(StepBackup).Message, "resumed") {
			t.Errorf("the backup did not resume: %s", p.Step(StepBackup).Message)
		}
	})
}
