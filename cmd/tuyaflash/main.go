// Command tuyaflash backs up, flashes and restores Tuya modules (BK7231T,
// BK7231N, ESP8266) over a USB-serial adapter. Run "tuyaflash help".
package main

import (
	"os"

	"github.com/tuyaflash/tuyaflash/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
