package provision

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

// fakeConsole imitates Tasmota's serial console on the device side of a
// pseudo-terminal: it answers commands the way support_tasmota.ino logs
// them ("CMD: …", then the RESULT), restarts after the Wi-Fi commands
// (the ROM's 74880-baud banner arrives as garbage at 115200) and prints a
// boot log whose end depends on the scenario.
type fakeConsole struct {
	dev      *transport.PTY
	scenario string // "ok", "wrong-password", "ap-fallback", "silent", "bootloader"

	mu       sync.Mutex
	commands []string
	ssid     string
}

func (f *fakeConsole) say(lines ...string) {
	for _, l := range lines {
		transport.WriteAll(f.dev, []byte(l+"\r\n"))
	}
}

func (f *fakeConsole) run(stop <-chan struct{}) {
	f.dev.SetReadTimeout(20 * time.Millisecond)
	buf := make([]byte, 256)
	var line []byte
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := f.dev.Read(buf)
		if err != nil {
			return
		}
		for _, b := range buf[:n] {
			switch b {
			case '\n':
				f.handle(string(line))
				line = nil
			case '\r':
			default:
				line = append(line, b)
			}
		}
	}
}

func (f *fakeConsole) handle(cmd string) {
	f.mu.Lock()
	f.commands = append(f.commands, cmd)
	f.mu.Unlock()
	switch f.scenario {
	case "silent":
		return
	case "bootloader":
		transport.WriteAll(f.dev, []byte{0xF0, 0x0F, 0x83, 0xC3, 0x00, 0xFE, '\n', 0x81, 0x8C, '\n'})
		return
	}
	f.say("00:01:12.310 CMD: " + cmd)
	restart := false
	parts := []string{cmd}
	if rest, ok := strings.CutPrefix(cmd, "Backlog "); ok {
		parts = strings.Split(rest, ";")
	}
	for _, part := range parts {
		name, value, _ := strings.Cut(strings.TrimSpace(part), " ")
		switch strings.ToLower(name) {
		case "status":
			// a line of the running boot first: the access point of a
			// blank device, which must not be taken for the result
			f.say("00:01:12.300 HTP: Web server active on tasmota-C658CC-6348 with IP address 192.168.4.1",
				`00:01:12.315 MQT: stat/tasmota_C658CC/STATUS5 = {"StatusNET":{"Hostname":"tasmota-C658CC-6348","IPAddress":"192.168.4.1","Gateway":"0.0.0.0","Subnetmask":"0.0.0.0","DNSServer1":"0.0.0.0","DNSServer2":"0.0.0.0","Mac":"A4:CF:12:C6:58:CC","Webserver":2,"HTTP_API":1,"WifiConfig":2,"WifiPower":17.0}}`)
		case "ssid1":
			f.ssid = value
			f.say(fmt.Sprintf(`00:01:12.520 MQT: stat/tasmota_C658CC/RESULT = {"SSId1":"%s"}`, value))
			restart = true
		case "password1":
			f.say(`00:01:12.730 MQT: stat/tasmota_C658CC/RESULT = {"Password1":"****"}`)
			restart = true
		}
	}
	if !restart || strings.HasPrefix(cmd, "Password1") {
		return
	}
	if f.scenario == "stale-password" {
		// The password saved before (cut short by a kill) fails once
		// more while the new one is being set.
		f.say("00:01:13.100 WIF: Connect failed with AP incorrect password")
	}
	f.say("00:01:13.520 APP: Restarting")
	transport.WriteAll(f.dev, []byte("\x00\xe0\x1c\x9e\x80\x8c\xfc\x92l\x9c\x0c\xe2|\x02\x8c\x8c\r\n"))
	f.say("00:00:00.001 HDW: ESP8266EX",
		"00:00:00.016 CFG: Loaded from flash at F9, Count 13",
		"00:00:00.019 QPC: Count 1",
		"00:00:00.028 Project tasmota - Tasmota Version 14.4.1(release-tasmota)-2_7_8(2025-01-08T10:00:00)",
		"00:00:00.524 WIF: Connecting to AP1 "+f.ssid+" Channel 6 BSSId 34:31:C4:22:92:74 in mode 11n as tasmota-C658CC-6348...")
	switch f.scenario {
	case "ok", "stale-password":
		f.say("00:00:02.636 WIF: Connected",
			"00:00:02.889 HTP: Web server active on tasmota-C658CC-6348 with IP address 192.168.1.112")
	case "ok-port": // a virtual device: its web server is not on port 80
		f.say("00:00:02.636 WIF: Connected",
			"00:00:02.889 HTP: Web server active on tasmota-C658CC-6348 with IP address 127.84.3.4:40001")
	case "wrong-password":
		f.say("00:00:04.001 WIF: Connect failed with AP incorrect password")
	case "ap-fallback":
		f.say("00:00:09.000 WIF: Connect failed as AP cannot be reached",
			"00:00:20.000 WIF: WifiManager active for 3 minutes",
			"00:00:20.500 HTP: Web server active on tasmota-C658CC-6348 with IP address 192.168.4.1")
	}
}

func startConsole(t *testing.T, scenario string) *fakeConsole {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("pseudo-terminal simulation needs Linux")
	}
	dev, err := transport.OpenPTY(ConsoleBaud)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	f := &fakeConsole{dev: dev, scenario: scenario}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { f.run(stop); close(done) }()
	t.Cleanup(func() { close(stop); <-done; dev.Close() })
	return f
}

func TestSerialTasmota(t *testing.T) {
	tests := []struct {
		name     string
		scenario string
		wifi     WiFi
		wantCmds []string
		wantErr  string
		wantHint string
	}{
		{"joins", "ok", WiFi{"Home Net", "correct horse battery"},
			[]string{"Status 5", "Backlog SSID1 Home Net; Password1 correct horse battery"}, "", ""},
		// Found by the fault campaign: a migration killed while it typed
		// the credentials left a cut password in Tasmota's settings; the
		// re-run's own credentials were then reported refused by the
		// failure of the old ones before the restart.
		{"an old password's failure before the restart", "stale-password", WiFi{"Home Net", "correct horse battery"},
			[]string{"Status 5", "Backlog SSID1 Home Net; Password1 correct horse battery"}, "", ""},
		{"semicolon in the password", "ok", WiFi{"HomeNet", "pa;ss;word"},
			[]string{"Status 5", "Password1 pa;ss;word", "SSID1 HomeNet"}, "", ""},
		{"open network", "ok", WiFi{"Cafe", ""},
			[]string{"Status 5", "SSID1 Cafe"}, "", ""},
		{"web server with a port", "ok-port", WiFi{"tuyaflash-virtual", "virtual-bench"},
			[]string{"Status 5", "Backlog SSID1 tuyaflash-virtual; Password1 virtual-bench"}, "", ""},
		{"wrong password", "wrong-password", WiFi{"HomeNet", "wrong-one"},
			[]string{"Status 5", "Backlog SSID1 HomeNet; Password1 wrong-one"},
			`Wi-Fi: the device could not join "HomeNet": the network refused the password (WIF: Connect failed with AP incorrect password)`,
			"upper and lower case"},
		{"falls back to its access point", "ap-fallback", WiFi{"HomeNet5G", "secret-pass"},
			[]string{"Status 5", "Backlog SSID1 HomeNet5G; Password1 secret-pass"},
			`Wi-Fi: the device could not join "HomeNet5G" and opened its own access point for 3 minutes`,
			"http://192.168.4.1"},
		{"still in the bootloader", "silent", WiFi{"HomeNet", "secret-pass"},
			[]string{"Status 5"},
			"serial console: nothing came back within 300ms: no Tasmota console at 115200 baud",
			"GPIO0 released"},
		{"garbage only", "bootloader", WiFi{"HomeNet", "secret-pass"},
			[]string{"Status 5"},
			"serial console: only garbled bytes came back (8): the device is in its bootloader or talks at another baud rate",
			"power-cycle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startConsole(t, tc.scenario)
			var live []string
			wait := 3 * time.Second // only the failing cases wait it out
			if tc.scenario == "silent" || tc.scenario == "bootloader" {
				wait = 300 * time.Millisecond
			}
			res, err := SerialPath(context.Background(), f.dev.SlavePath(), tc.wifi,
				SerialOptions{Timeout: 3 * time.Second, ConsoleWait: wait, Line: func(l string) { live = append(live, l) }})
			f.mu.Lock()
			got := append([]string(nil), f.commands...)
			f.mu.Unlock()
			if strings.Join(got, "|") != strings.Join(tc.wantCmds, "|") {
				t.Errorf("console received %q, want %q", got, tc.wantCmds)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error\n got %v\nwant %s", err, tc.wantErr)
				}
				var pe *Error
				if !errors.As(err, &pe) || !strings.Contains(flasher.Hint(err), tc.wantHint) {
					t.Errorf("hint %q lacks %q", flasher.Hint(err), tc.wantHint)
				}
			} else {
				if err != nil {
					t.Fatalf("Serial: %v (hint: %s)\ntranscript:\n%s", err, flasher.Hint(err), strings.Join(res.Transcript, "\n"))
				}
				wantIP := "192.168.1.112"
				if tc.scenario == "ok-port" {
					wantIP = "127.84.3.4:40001"
				}
				if res.IP != wantIP || res.Hostname != "tasmota-C658CC-6348" || res.MAC != "A4:CF:12:C6:58:CC" {
					t.Errorf("result %+v", res)
				}
			}
			if res == nil {
				return
			}
			if strings.Join(live, "\n") != strings.Join(res.Transcript, "\n") {
				t.Errorf("Line heard %d lines, transcript holds %d", len(live), len(res.Transcript))
			}
			for _, l := range res.Transcript {
				if tc.wifi.Password != "" && strings.Contains(l, tc.wifi.Password) {
					t.Errorf("transcript shows the password: %q", l)
				}
			}
			if tc.scenario == "ok" && tc.wifi.Password != "" && !strings.Contains(strings.Join(res.Transcript, "\n"), "Password1 ****") {
				t.Errorf("transcript lacks the masked command: %q", res.Transcript)
			}
		})
	}
}

// TestSerialSetsConsoleBaud: a port left at the flashing rate is switched
// to the console's 115200 baud (the pty garbles mismatched rates).
func TestSerialSetsConsoleBaud(t *testing.T) {
	f := startConsole(t, "ok")
	p, err := transport.Open(f.dev.SlavePath(), 921600)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res, err := Serial(context.Background(), p, WiFi{"HomeNet", "secret-pass"}, SerialOptions{Timeout: 3 * time.Second, ConsoleWait: 3 * time.Second})
	if err != nil || res.IP != "192.168.1.112" {
		t.Fatalf("%+v, %v", res, err)
	}
	if p.BaudRate() != ConsoleBaud {
		t.Errorf("port left at %d baud", p.BaudRate())
	}
}

func TestConsoleCommandsRefuses(t *testing.T) {
	tests := []struct {
		wifi WiFi
		want string
	}{
		{WiFi{"", "x"}, "no network name"},
		{WiFi{"Caf\u00e9", "secret-pass"}, `the network name holds 'é', which Tasmota's serial console drops`},
		{WiFi{"Home", "pass\u00a7word"}, "the password holds a character which Tasmota's serial console drops"},
		{WiFi{" Home", "secret-pass"}, "starts or ends with a space"},
		{WiFi{"Home", "1"}, `the password is one of Tasmota's shortcut values`},
		{WiFi{strings.Repeat("x", 33), "secret-pass"}, "33 bytes long; Wi-Fi allows 32"},
		{WiFi{"Home", strings.Repeat("x", 65)}, "65 bytes long; Wi-Fi allows 64"},
	}
	for _, tc := range tests {
		_, err := consoleCommands(tc.wifi)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.wifi.SSID, err, tc.want)
		}
		// The password, or a character of it, is never quoted.
		if err != nil && strings.Contains(tc.wifi.Password, "\u00a7") && strings.Contains(err.Error(), "\u00a7") {
			t.Errorf("the error quotes the password's characters: %v", err)
		}
	}
}
