package cli

import (
	"fmt"
	"os"

	"golang.org/x/term"
)

// wifiPasswordEnv holds the Wi-Fi password when --wifi-password is not
// given.
const wifiPasswordEnv = "TUYAFLASH_WIFI_PASSWORD"

// passwordFlag is a secret flag that knows whether it was given (an empty
// value means an open network) and never shows its value in help.
type passwordFlag struct {
	value string
	set   bool
}

func (p *passwordFlag) String() string { return "" }
func (p *passwordFlag) Set(s string) error {
	p.value, p.set = s, true
	return nil
}
func (p *passwordFlag) Type() string { return "string" }

// readPassword reads a line from the terminal without echo (tests replace
// it).
var readPassword = func(f *os.File) ([]byte, error) { return term.ReadPassword(int(f.Fd())) }

// wifiPassword takes the Wi-Fi password from --wifi-password, else from
// $TUYAFLASH_WIFI_PASSWORD, else asks for it without echo when stdin is a
// terminal.
func (e *env) wifiPassword(pw passwordFlag, ssid string) (string, error) {
	if pw.set {
		return pw.value, nil
	}
	if v, ok := os.LookupEnv(wifiPasswordEnv); ok {
		return v, nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !e.terminal(f) {
		return "", usagef("no Wi-Fi password: set $%s, give --wifi-password (empty for an open network), or run tuyaflash in a terminal to be asked", wifiPasswordEnv)
	}
	fmt.Fprintf(e.stderr, "Wi-Fi password for %s (not shown): ", ssid)
	b, err := readPassword(f)
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("read the Wi-Fi password: %w", err)
	}
	return string(b), nil
}
