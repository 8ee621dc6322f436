package bksim

import (
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Tuya's KV storage as the simulator writes it (reference §12.1, from
// bk7231tools analysis/kvstorage.py and BK7231GUIFlashTool
// Utils/TuyaConfig.cs; padding bytes as in the real dumps: 0xFF). This is
// the simulator's own encoder, written from that description; tuyaconfig's
// parser reads it back only in tests.
const (
	kvPage      = 128
	kvPages     = sectorSize/kvPage - 1 // pages 1..31; page 0 is the block header
	kvMagicKey  = 0x13579753
	kvMagicData = 0x98761234
	kvMapSize   = 4 // bytes of page map: bit n set = page n is an index page
)

var (
	kvMasterKey = []byte("qwertyuiopasdfgh")
	kvKeyPart1  = []byte("8710")
	kvKeyPart2  = []byte("HHRRQbyemofrtytf")
)

// kvValue is one stored key.
type kvValue struct {
	name  string
	value []byte
}

// kvBlock is a data block before encryption.
type kvBlock struct {
	id         uint16
	generation uint32
	values     []kvValue
}

// ecbEncrypt runs AES-128-ECB over src (a multiple of 16 bytes).
func ecbEncrypt(key, src []byte) []byte {
	c, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // keys are 16 bytes
	}
	out := make([]byte, len(src))
	for i := 0; i < len(src); i += aes.BlockSize {
		c.Encrypt(out[i:i+aes.BlockSize], src[i:i+aes.BlockSize])
	}
	return out
}

func byteSum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s += uint32(c)
	}
	return s
}

func put16(v uint16) []byte { return []byte{byte(v), byte(v >> 8)} }

// kvDataKey derives the data-block key from the device key:
// key[i] = "8710"[i%4] + "HHRRQbyemofrtytf"[i] + device[i] (mod 256).
func kvDataKey(device [16]byte) []byte {
	k := make([]byte, 16)
	for i := range k {
		k[i] = kvKeyPart1[i%4] + kvKeyPart2[i] + device[i]
	}
	return k
}

// writeTuyaStorage fills dst (the key block followed by `sectors` data
// sectors) with the encrypted storage of dev: the live blocks first, empty
// blocks after them, and the last three sectors holding older swap copies
// of the live blocks, as in the real dumps.
func writeTuyaStorage(dst []byte, dev tuyaDev, sectors int) {
	key := make([]byte, sectorSize)
	for i := range key {
		key[i] = 0xFF
	}
	copy(key, put32(kvMagicKey))
	copy(key[4:], put32(byteSum(dev.key[:])))
	copy(key[8:], dev.key[:])
	copy(dst, ecbEncrypt(kvMasterKey, key))

	live, old := dev.blocks()
	swaps := min(len(old), max(sectors-len(live)-1, 0))
	var blocks []kvBlock
	blocks = append(blocks, live...)
	for id := len(live); len(blocks) < sectors-swaps; id++ {
		blocks = append(blocks, kvBlock{id: uint16(id)})
	}
	blocks = append(blocks, old[:swaps]...)
	dk := kvDataKey(dev.key)
	for i, b := range blocks {
		off := (1 + i) * sectorSize
		copy(dst[off:off+sectorSize], ecbEncrypt(dk, b.encode()))
	}
}

// encode lays a data block out in plain text: header page (magic, checksum
// of bytes 8..4095, u16 id, u32 generation, u8 map size, map, 0xFF pad),
// then for every value an index page followed by its data pages; unused
// pages are 0xFF.
func (b kvBlock) encode() []byte {
	out := make([]byte, sectorSize)
	for i := range out {
		out[i] = 0xFF
	}
	pageMap := make([]byte, kvMapSize)
	page := 1
	for n, v := range b.values {
		data := (len(v.value) + kvPage - 1) / kvPage
		if page+data > kvPages {
			panic(fmt.Sprintf("bksim: Tuya storage block %d is full at %q", b.id, v.name))
		}
		idx := out[page*kvPage : (page+1)*kvPage]
		fields := [][]byte{
			put32(byteSum(v.value)), put32(uint32(len(v.value))),
			put16(b.id), {byte(page)}, put16(1), put32(b.generation<<8 | uint32(n+1)),
			{byte(len(v.name) + 1)}, []byte(v.name), {0},
			put16(b.id), {byte(page + 1)}, {byte(page + data)},
		}
		q := 0
		for _, f := range fields {
			q += copy(idx[q:], f)
		}
		pageMap[page/8] |= 1 << (page % 8)
		copy(out[(page+1)*kvPage:], v.value)
		page += 1 + data
	}
	copy(out[8:], put16(b.id))
	copy(out[10:], put32(b.generation))
	out[14] = kvMapSize
	copy(out[15:], pageMap)
	copy(out, put32(kvMagicData))
	copy(out[4:], put32(byteSum(out[8:])))
	return out
}

// tuyaDev is the synthetic Tuya device stored in a default image.
type tuyaDev struct {
	chip                            Chip
	key                             [16]byte
	uuid, authKey, pskKey, facPin   string
	devID, productKey, firmwareKey  string
	localKey, secKey                string
	ssid, password, oldSSID, oldPwd string
}

// Wi-Fi of the synthetic device's stock setup: a home network that is not
// the virtual bench's (contract C3), so that stock firmware never joins it.
const (
	StockSSID     = "SimHome-2.4G"
	StockPassword = "stock-tuya-wifi"
)

// tuyaDevice derives the synthetic identity of the device with this MAC:
// every value says "sim" so that nobody mistakes it for a real one.
func tuyaDevice(chip Chip, mac [6]byte) tuyaDev {
	g := macSeed(chip, mac)
	g.next()
	hexOf := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			fmt.Fprintf(&b, "%016x", g.next())
		}
		return b.String()[:n]
	}
	m := fmt.Sprintf("%02x%02x%02x%02x%02x%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
	d := tuyaDev{
		chip:        chip,
		uuid:        "sim0" + m,
		authKey:     "SIMAUTHKEY" + hexOf(22),
		pskKey:      "simpsk" + hexOf(31),
		facPin:      "simfac" + hexOf(10),
		devID:       "bfsim" + m + hexOf(5),
		productKey:  "simprod" + hexOf(9),
		firmwareKey: "simfirm" + hexOf(9),
		localKey:    "simlocal" + hexOf(8),
		secKey:      "simseckey" + hexOf(7),
		ssid:        StockSSID,
		password:    StockPassword,
		oldSSID:     "SimHome-old",
		oldPwd:      "old-stock-wifi",
	}
	copy(d.key[:], "simdevkey"+hexOf(7))
	return d
}

// blocks returns the device's live data blocks and the older swap copies.
func (d tuyaDev) blocks() (live, old []kvBlock) {
	p := d.chip.profile()
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	gwBI := js(map[string]any{
		"uuid": d.uuid, "auth_key": d.authKey, "psk_key": d.pskKey, "ap_ssid": "SmartLife", "ap_passwd": nil,
		"country_code": "EU", "prod_test": false, "fac_pin": d.facPin, "bt_mac": nil, "bt_hid": nil,
	})
	gwDI := js(map[string]any{
		"id": d.devID, "pk": d.productKey, "firmk": d.firmwareKey, "swv": StockVersion, "dev_swv": StockVersion,
		"bv": "40.00", "pv": "2.2", "lpv": "3.3", "cdv": "1.0.0", "cadv": "1.0.1", "s_id": "simschema1",
		"abi": 0, "dtp": 0, "attr_num": 0, "sync": 0,
	})
	gwAI := js(map[string]any{
		"key": d.secKey, "lckey": d.localKey, "time_z": "+01:00", "s_time_z": "+1",
		"h_url": nil, "mq_url": nil, "cloud_cap": 0,
	})
	wsm := func(ssid, pwd string) []byte {
		return js(map[string]any{
			"ssid": b64(ssid), "passwd": b64(pwd), "wfb64": 1, "token": nil, "region": "EU",
			"stat": 1, "md": 0, "nc_tp": 0, "dns_prio": 0, "random": 0, "reg_key": nil,
		})
	}
	// user_param_key of a one-relay plug: relay on P6 (active high),
	// button on P7 (active low), network LED on P8 (active low), in
	// Tuya's unquoted pseudo-JSON (reference §12.3).
	upk := "{jv:1.0.6,"
	if p.module != "" {
		upk += "module:" + p.module + ","
	}
	upk += "ch_num:1,rl1_pin:6,rl1_lv:1,bt1_pin:7,bt1_lv:0,netled1_pin:8,netled1_lv:0,reset_t:5,crc:58}"

	live = []kvBlock{
		{id: 0, generation: 4, values: []kvValue{
			{"em_sys_env", []byte(p.platform)},
			{"gw_bi", gwBI},
			{"gw_di", gwDI},
		}},
		{id: 1, generation: 6, values: []kvValue{
			{"gw_ai", gwAI},
			{"gw_wsm", wsm(d.ssid, d.password)},
		}},
		{id: 2, generation: 2, values: []kvValue{
			{"user_param_key", []byte(upk)},
		}},
	}
	old = []kvBlock{
		{id: 1, generation: 5, values: []kvValue{
			{"gw_ai", gwAI},
			{"gw_wsm", wsm(d.oldSSID, d.oldPwd)},
		}},
		{id: 0, generation: 3, values: []kvValue{
			{"em_sys_env", []byte(p.platform)},
			{"gw_bi", gwBI},
		}},
		{id: 1, generation: 4, values: []kvValue{
			{"gw_wsm", wsm(d.oldSSID, d.oldPwd)},
		}},
	}
	return live, old
}
