package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/tuyaflash/tuyaflash/export"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/inventory"
)

// DevicesView is the inventory as the API shows it: the document of
// `tuyaflash inventory --json` (docs/json.md), with every secret left out
// (the Tuya local key, the Wi-Fi name a migration gave the device).
type DevicesView struct {
	Path           string            `json:"path"`
	Devices        []json.RawMessage `json:"devices"`
	VirtualDevices []json.RawMessage `json:"virtual_devices"`
	// Error is why the inventory could not be read.
	Error string `json:"error,omitempty"`
}

// redact marshals d without its secrets: tuya.local_key absent,
// migration.wifi.ssid null.
func redact(d inventory.Device) (json.RawMessage, error) {
	if d.Tuya != nil {
		t := *d.Tuya
		t.LocalKey = ""
		d.Tuya = &t
	}
	b, err := json.Marshal(d)
	if err != nil || d.Migration == nil || d.Migration.WiFi == nil {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if mig, ok := m["migration"].(map[string]any); ok {
		if wifi, ok := mig["wifi"].(map[string]any); ok {
			wifi["ssid"] = nil
		}
	}
	return json.Marshal(m)
}

// loadDevices reads the inventory.
func (s *Server) loadDevices() *DevicesView {
	v := &DevicesView{Path: s.cfg.InventoryPath, Devices: []json.RawMessage{}, VirtualDevices: []json.RawMessage{}}
	inv, err := inventory.Open(s.cfg.InventoryPath)
	if err != nil {
		v.Error = err.Error()
		if h := flasher.Hint(err); h != "" {
			v.Error += " (" + h + ")"
		}
		return v
	}
	for _, d := range inv.Devices() {
		b, err := redact(d)
		if err != nil {
			v.Error = err.Error()
			continue
		}
		if d.Virtual {
			v.VirtualDevices = append(v.VirtualDevices, b)
		} else {
			v.Devices = append(v.Devices, b)
		}
	}
	return v
}

// deviceWatch looks at the inventory file and sends the devices to the
// page whenever it changed (a job here, or a command in a terminal).
type deviceWatch struct {
	s *Server
	// checking makes the checks one at a time, so that an inventory read
	// earlier never replaces (or goes out after) one read later.
	checking sync.Mutex
	mu       sync.Mutex
	stamp    string
	last     *DevicesView
	pokeC    chan struct{}
	once     sync.Once
}

func (d *deviceWatch) pokes() chan struct{} {
	d.once.Do(func() { d.pokeC = make(chan struct{}, 1) })
	return d.pokeC
}

// poke makes the watch look now.
func (d *deviceWatch) poke() {
	select {
	case d.pokes() <- struct{}{}:
	default:
	}
}

func (d *deviceWatch) fileStamp() string {
	st, err := os.Stat(d.s.cfg.InventoryPath)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d/%d", st.ModTime().UnixNano(), st.Size())
}

// current is the devices as last read.
func (d *deviceWatch) current() *DevicesView {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.stamp, d.last = d.fileStamp(), d.s.loadDevices()
	}
	return d.last
}

// check reads the inventory again when its file changed and sends it.
func (d *deviceWatch) check() {
	d.checking.Lock()
	defer d.checking.Unlock()
	stamp := d.fileStamp()
	d.mu.Lock()
	if stamp == d.stamp && d.last != nil {
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	v := d.s.loadDevices()
	d.mu.Lock()
	d.stamp, d.last = stamp, v
	d.mu.Unlock()
	d.s.hub.publish("devices", v)
}

func (d *deviceWatch) run(ctx context.Context) { d.s.poll(ctx, d.check, d.pokes()) }

// handleDevices is GET /api/devices.
func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request) {
	v := s.loadDevices()
	status := http.StatusOK
	if v.Error != "" && len(v.Devices)+len(v.VirtualDevices) == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, v)
}

// findDevice finds the record key names (a key, or what `tuyaflash
// inventory DEVICE` takes).
func (s *Server) findDevice(w http.ResponseWriter, key string) (inventory.Device, bool) {
	if key == "" {
		writeError(w, http.StatusBadRequest, codeUsage, "key is required: a device's inventory key", "")
		return inventory.Device{}, false
	}
	inv, err := inventory.Open(s.cfg.InventoryPath)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "failure", err.Error(), flasher.Hint(err))
		return inventory.Device{}, false
	}
	found := inv.Find(key)
	for _, d := range found {
		if d.Key == key {
			return d, true
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	if len(found) > 1 {
		writeError(w, http.StatusBadRequest, codeUsage, fmt.Sprintf("%q matches %d devices", key, len(found)), "name the device by its key")
		return inventory.Device{}, false
	}
	writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("%q: %v", key, inventory.ErrUnknownDevice), "")
	return inventory.Device{}, false
}

// RevealView is the answer of POST /api/devices/reveal: the secrets of one
// device (null where there are none).
type RevealView struct {
	Key      string  `json:"key"`
	LocalKey *string `json:"local_key"`
	// WiFiSSID is the network a migration gave the device.
	WiFiSSID *string `json:"wifi_ssid"`
}

// handleReveal is POST /api/devices/reveal {"key": …}: the one request
// that answers with secrets.
func (s *Server) handleReveal(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Key string `json:"key"`
	}
	if err := decodeBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, codeUsage, err.Error(), "")
		return
	}
	d, ok := s.findDevice(w, body.Key)
	if !ok {
		return
	}
	v := RevealView{Key: d.Key}
	if d.Tuya != nil && d.Tuya.LocalKey != "" {
		k := d.Tuya.LocalKey
		v.LocalKey = &k
	}
	if d.Migration != nil && d.Migration.WiFi != nil && d.Migration.WiFi.SSID != "" {
		ssid := d.Migration.WiFi.SSID
		v.WiFiSSID = &ssid
	}
	s.cfg.Logf("secrets of %s shown on the page", d.Key)
	writeJSON(w, http.StatusOK, v)
}

// handleTemplates is GET /api/devices/templates?key=…: the pin templates
// of a device (as `tuyaflash export templates` makes them).
func (s *Server) handleTemplates(w http.ResponseWriter, r *http.Request) {
	d, ok := s.findDevice(w, r.URL.Query().Get("key"))
	if !ok {
		return
	}
	ts, err := export.Templates(d, nil)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, export.ErrNoPinMap) {
			status = http.StatusNotFound
		}
		writeError(w, status, codeNotFound, err.Error(), flasher.Hint(err))
		return
	}
	if ts == nil {
		ts = []export.Template{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": d.Key, "templates": ts})
}

// handleTemplate is GET /api/devices/template?key=…&kind=…: one template
// as a file to save.
func (s *Server) handleTemplate(w http.ResponseWriter, r *http.Request) {
	d, ok := s.findDevice(w, r.URL.Query().Get("key"))
	if !ok {
		return
	}
	kind := r.URL.Query().Get("kind")
	if kind == "" {
		writeError(w, http.StatusBadRequest, codeUsage, "kind is required: obk, obk-json, esphome or tasmota", "")
		return
	}
	ts, err := export.Templates(d, []string{kind})
	if err != nil || len(ts) == 0 {
		msg := "no template"
		if err != nil {
			msg = err.Error()
		}
		writeError(w, http.StatusNotFound, codeNotFound, msg, flasher.Hint(err))
		return
	}
	t := ts[0]
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": t.FileName}))
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(t.Content))
}

// decodeBody reads a JSON request body (at most 64 KiB, no unknown
// fields).
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("content type %q: send application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %v", err)
	}
	return nil
}
