package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/pintemplate"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

func init() { register(tuyaConfigCmd()) }

func tuyaConfigCmd() *command {
	var showSecrets bool
	var template, output, name string
	c := &command{name: "tuya-config", args: "BACKUP", summary: "read the Tuya config (device id, local key, pin map) from a stock backup and make pin templates",
		long: `BACKUP is a full BK7231 dump or a storage-only extract. Secrets (local key,
secKey, Wi-Fi password) are shown only with --show-secrets. --template writes an
OpenBeken (obk), ESPHome (esphome) or Tasmota (tasmota) configuration made from
the vendor's pin map to -o FILE or stdout.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.BoolVar(&showSecrets, "show-secrets", false, "show the local key, secKey and Wi-Fi password")
		fs.StringVar(&template, "template", "", "write a pin template: `kind` obk, esphome or tasmota")
		fs.StringVarP(&output, "output", "o", "", "write the template or JSON to `file` (never overwritten) instead of stdout")
		fs.StringVar(&name, "name", "tuya-device", "device `name` used in the ESPHome and Tasmota templates")
	}
	c.run = func(e *env, args []string) error {
		if len(args) != 1 {
			return usagef("tuya-config needs exactly one backup file")
		}
		data, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		cfg, perr := tuyaconfig.Parse(data)
		var damage *tuyaconfig.DamageError
		if perr != nil && (cfg == nil || !errors.As(perr, &damage)) {
			return perr
		}
		out, err := e.renderTuyaConfig(cfg, template, name, showSecrets)
		if err != nil {
			return err
		}
		if output != "" {
			if err := backup.WriteFileNew(output, []byte(out)); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "wrote %s\n", output)
		} else {
			io.WriteString(e.stdout, out)
		}
		if perr != nil {
			// A partial result was printed; the damage is the error.
			return perr
		}
		return nil
	}
	return c
}

// renderTuyaConfig produces the summary, the JSON or a template.
func (e *env) renderTuyaConfig(cfg *tuyaconfig.Config, template, name string, showSecrets bool) (string, error) {
	switch strings.ToLower(template) {
	case "":
		if e.g.json {
			b, err := cfg.JSON(showSecrets)
			return string(b) + "\n", err
		}
		return cfg.Summary(showSecrets) + "\n", nil
	case "obk", "openbeken":
		if cfg.UserParams == nil {
			return "", noPinMap()
		}
		obk, warns := pintemplate.OpenBeken(cfg.UserParams)
		e.templateWarnings(warns)
		if e.g.json {
			b, err := obk.JSON(name)
			return string(b) + "\n", err
		}
		return obk.Text(), nil
	case "esphome":
		if cfg.UserParams == nil {
			return "", noPinMap()
		}
		y, warns := pintemplate.ESPHome(cfg.UserParams, name)
		e.templateWarnings(warns)
		return y, nil
	case "tasmota":
		if cfg.UserParams == nil {
			return "", noPinMap()
		}
		t, warns := pintemplate.Tasmota(cfg.UserParams, name)
		e.templateWarnings(warns)
		if t == "" {
			return "", fmt.Errorf("no Tasmota template for this device: Tasmota runs on ESP8266, this pin map is for a %s module (use --template obk or esphome): %w", cfg.Chip, flasher.ErrUnsupported)
		}
		return t + "\n", nil
	}
	return "", usagef("--template %q: want obk, esphome or tasmota", template)
}

func noPinMap() error {
	return &flasher.HintError{Err: fmt.Errorf("this backup has no user_param_key (pin map): %w", flasher.ErrUnsupported), Hint: "unpaired devices sometimes lack it; find the module's pinout in the OpenBeken device list or open the device"}
}

func (e *env) templateWarnings(ws []pintemplate.Warning) {
	if e.g.verbose == 0 && len(ws) > 0 {
		fmt.Fprintf(e.stderr, "note: %d Tuya settings have no equivalent and are listed as comments (-v to list them here)\n", len(ws))
		return
	}
	for _, w := range ws {
		fmt.Fprintf(e.stderr, "warning: %s: %s\n", w.Key, w.Message)
	}
}

// afterBackup prints the Tuya config summary of a fresh BK7231 backup
// (secrets hidden) and returns it; a dump without Tuya storage only gets a
// note.
func (e *env) afterBackup(family flasher.Family, path string) *tuyaconfig.Config {
	if !family.Beken() || e.g.json {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	cfg, err := tuyaconfig.Parse(data)
	if cfg == nil {
		fmt.Fprintf(e.stdout, "No Tuya configuration found in the dump (%v).\n", err)
		return nil
	}
	fmt.Fprintf(e.stdout, "\n%s\n", cfg.Summary(false))
	if err != nil {
		fmt.Fprintf(e.stdout, "warning: %v\n", err)
	}
	fmt.Fprintf(e.stdout, "Templates: tuyaflash tuya-config %s --template obk|esphome\n", path)
	return cfg
}
