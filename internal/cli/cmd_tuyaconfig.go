package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/pintemplate"
	"github.com/tuyaflash/tuyaflash/tuyaconfig"
)

func init() { register(tuyaConfigCmd()) }

// tuyaConfigDoc is tuya-config's document: the config (secrets null unless
// --show-secrets), or with -o the file it went to.
type tuyaConfigDoc struct {
	header
	File   string         `json:"file"`
	Config map[string]any `json:"config,omitempty"`
	Output string         `json:"output,omitempty"`
}

// templateKinds are tuya-config --template's kinds.
var templateKinds = []string{"obk", "obk-json", "esphome", "tasmota"}

func tuyaConfigCmd() *command {
	var showSecrets bool
	var template, output, name string
	c := &command{name: "tuya-config", args: "BACKUP", summary: "read the Tuya config (device id, local key, pin map) from a stock backup and make pin templates",
		verbose: []string{"each Tuya setting a template cannot express"},
		long: `BACKUP is a full Beken dump or a storage-only extract, or an ESP8266 dump (its
Tuya PSM store, plain or encrypted, is searched for). Secrets (local key,
secKey, auth key, the home Wi-Fi name and password) are shown only with
--show-secrets. --template makes an OpenBeken (obk, or obk-json for its JSON
form), ESPHome (esphome) or Tasmota (tasmota) configuration from the vendor's
pin map. -o FILE writes what would be printed (the report, the --json
document or the template) to FILE, mode 0600, never overwriting it.`}
	c.flags = func(fs *pflag.FlagSet) {
		fs.BoolVar(&showSecrets, "show-secrets", false, "show the local key, secKey, auth key and the Wi-Fi name and password")
		fs.StringVar(&template, "template", "", "make a pin template: `kind` obk, obk-json, esphome or tasmota")
		fs.StringVarP(&output, "output", "o", "", "write the report, the JSON document or the template to `file` (mode 0600, never overwritten) instead of stdout")
		fs.StringVar(&name, "name", "tuya-device", "device `name` in the obk-json, ESPHome and Tasmota templates")
	}
	c.check = func(e *env, args []string) error {
		if len(args) != 1 {
			return usagef("tuya-config needs exactly one backup file")
		}
		if template == "" {
			if e.changed("name") {
				return usagef("--name goes with --template obk-json, esphome or tasmota")
			}
			return nil
		}
		k := strings.ToLower(template)
		switch {
		case !contains(templateKinds, k) && k != "openbeken":
			return usagef("--template %q: want %s", template, strings.Join(templateKinds, ", "))
		case e.g.json:
			return usagef("--json prints the Tuya config; a template is in the firmware's own format (--template obk-json is OpenBeken's JSON)")
		case showSecrets:
			return usagef("--show-secrets does nothing with --template (templates hold no secrets)")
		case (k == "obk" || k == "openbeken") && e.changed("name"):
			return usagef("--name does nothing with --template obk (OpenBeken's pin commands carry no name; obk-json does)")
		}
		return nil
	}
	c.run = func(e *env, args []string) error {
		doc := &tuyaConfigDoc{File: args[0]}
		e.emit(doc)
		if output != "" {
			if _, err := os.Lstat(output); err == nil {
				return &flasher.HintError{Err: fmt.Errorf("-o %s: %w", output, backup.ErrExists), Hint: "tuyaflash never overwrites a file: choose another -o"}
			}
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
		var out string
		if template != "" {
			if out, err = e.renderTemplate(cfg, template, name); err != nil {
				return err
			}
		} else {
			if doc.Config, err = tuyaConfigJSON(cfg, showSecrets); err != nil {
				return err
			}
			if e.g.json {
				// The document as stdout would carry it, for -o.
				doc.OK, doc.Command = perr == nil, "tuya-config"
				if perr != nil {
					doc.Error = errorDoc(perr)
				}
				var b strings.Builder
				enc := json.NewEncoder(&b)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				if err := enc.Encode(doc); err != nil {
					return err
				}
				out = b.String()
			} else {
				out = summary(cfg, showSecrets) + "\n"
			}
		}
		if output != "" {
			if err := backup.WriteFileNew(output, []byte(out)); err != nil {
				return err
			}
			doc.Config, doc.Output = nil, output
			fmt.Fprintf(e.stdout, "wrote %s\n", output)
		} else {
			fmt.Fprint(e.stdout, out)
		}
		// A partial result was printed; the damage is the error.
		return perr
	}
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// summary is the readable report; the home Wi-Fi name counts as a secret.
func summary(cfg *tuyaconfig.Config, showSecrets bool) string {
	c := *cfg
	if !showSecrets && c.WiFiSSID != "" {
		c.WiFiSSID = tuyaconfig.Hidden
	}
	return c.Summary(showSecrets)
}

// configSecrets are the Tuya config's own JSON fields that are secrets;
// those of the stored values (gw_ai, gw_wsm …) are tuyaconfig's
// (IsSecretKey). Hidden, they are null.
var configSecrets = map[string]bool{
	"local_key": true, "sec_key": true, "auth_key": true, "psk_key": true, "wifi_password": true, "wifi_ssid": true,
}

func secretField(k string) bool { return configSecrets[k] || tuyaconfig.IsSecretKey(k) }

// tuyaConfigJSON is the config as tuya-config --json shows it: offsets as
// "0x…", secrets null unless showSecrets.
func tuyaConfigJSON(cfg *tuyaconfig.Config, showSecrets bool) (map[string]any, error) {
	raw, err := cfg.JSON(true)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	hexOffset := func(v any) any {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return backup.HexAddr(uint32(i))
			}
		}
		return v
	}
	m["key_block_offset"] = hexOffset(m["key_block_offset"])
	if blocks, ok := m["blocks"].([]any); ok {
		for _, b := range blocks {
			if bm, ok := b.(map[string]any); ok {
				bm["offset"] = hexOffset(bm["offset"])
			}
		}
	}
	if psm, ok := m["psm"].(map[string]any); ok {
		psm["offset"] = hexOffset(psm["offset"])
	}
	if !showSecrets {
		for k := range m {
			if secretField(k) {
				m[k] = nil
			}
		}
		for _, k := range []string{"keys", "protected_keys"} {
			hideSecrets(m[k])
		}
	}
	return m, nil
}

// hideSecrets sets every secret field inside v to null.
func hideSecrets(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if secretField(strings.ToLower(k)) && x != nil {
				t[k] = nil
				continue
			}
			hideSecrets(x)
		}
	case []any:
		for _, x := range t {
			hideSecrets(x)
		}
	}
}

// renderTemplate makes a pin template.
func (e *env) renderTemplate(cfg *tuyaconfig.Config, template, name string) (string, error) {
	if cfg.UserParams == nil {
		return "", noPinMap()
	}
	switch strings.ToLower(template) {
	case "obk", "openbeken":
		obk, warns := pintemplate.OpenBeken(cfg.UserParams)
		e.templateWarnings(warns)
		return obk.Text(), nil
	case "obk-json":
		obk, warns := pintemplate.OpenBeken(cfg.UserParams)
		e.templateWarnings(warns)
		b, err := obk.JSON(name)
		return string(b) + "\n", err
	case "esphome":
		y, warns := pintemplate.ESPHome(cfg.UserParams, name)
		e.templateWarnings(warns)
		return y, nil
	case "tasmota":
		t, warns := pintemplate.Tasmota(cfg.UserParams, name)
		e.templateWarnings(warns)
		if t == "" {
			return "", fmt.Errorf("no Tasmota template for this device: Tasmota runs on ESP8266, this pin map is for a %s module (use --template obk or esphome): %w", cfg.Chip, flasher.ErrUnsupported)
		}
		return t + "\n", nil
	}
	return "", usagef("--template %q: want %s", template, strings.Join(templateKinds, ", "))
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

// afterBackup prints the Tuya config summary of a fresh backup
// (secrets hidden) and returns it; a dump without Tuya storage only gets a
// note.
func (e *env) afterBackup(family flasher.Family, path string) *tuyaconfig.Config {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	cfg, err := tuyaconfig.Parse(data)
	if cfg == nil {
		fmt.Fprintf(e.stdout, "No Tuya configuration found in the dump (%v).\n", err)
		return nil
	}
	fmt.Fprintf(e.stdout, "\n%s\n", summary(cfg, false))
	if err != nil {
		fmt.Fprintf(e.stdout, "warning: %v\n", err)
	}
	kinds := "obk|esphome"
	if family.Espressif() {
		kinds = "tasmota"
	}
	fmt.Fprintf(e.stdout, "Templates: tuyaflash tuya-config %s --template %s\n", path, kinds)
	return cfg
}
