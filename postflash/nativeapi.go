package postflash

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"regexp"
	"strings"
)

// ESPHome native API (esphome/components/api): TCP 6053. A plaintext frame
// is 0x00, varint(payload length), varint(message type), protobuf payload;
// a Noise frame is 0x01, 16-bit big-endian length, payload. A node that
// requires encryption answers a plaintext frame with a Noise frame whose
// payload is 0x01 followed by the reason ("Bad indicator byte"). The Noise
// server hello (payload 0x01, node name, NUL, and in newer releases the MAC
// as 12 hex digits, NUL) is sent before any key is needed.
const (
	apiPort = "6053"

	msgHelloRequest      = 1
	msgHelloResponse     = 2
	msgDeviceInfoRequest = 9
	msgDeviceInfoResp    = 10

	maxAPIFrame = 64 << 10
)

// nativeInfo is what the native API port told.
type nativeInfo struct {
	encrypted    bool
	reject       string // reason of an encrypted node's rejection
	serverInfo   string // "node (esphome v2024.10.2)"
	name         string
	friendly     string
	mac          string
	version      string
	model        string // board, e.g. "esp01_1m"
	manufacturer string
}

var errNotAPI = errors.New("not an ESPHome native API")

var esphomeVersion = regexp.MustCompile(`esphome v(\d[^\s)]*)`)

// probeNativeAPI says hello in plaintext; a plaintext node answers with
// HelloResponse and then DeviceInfoResponse (allowed right after hello,
// before any password), an encrypted node rejects the frame, and then the
// Noise hello tells its name (and MAC).
func (p *prober) probeNativeAPI(ctx context.Context) (*nativeInfo, error) {
	c, err := p.dialProbe(ctx, apiPort)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(p.deadline())
	r := bufio.NewReader(c)

	hello := appendString(nil, 1, "tuyaflash")
	hello = appendVarintField(hello, 2, 1)
	hello = appendVarintField(hello, 3, 10)
	if _, err := c.Write(plainFrame(msgHelloRequest, hello)); err != nil {
		return nil, err
	}
	ind, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	info := &nativeInfo{}
	switch ind {
	case 0x01:
		payload, err := readNoiseFrame(r)
		if err != nil {
			return nil, err
		}
		info.encrypted = true
		if len(payload) > 0 && payload[0] == 0x01 {
			info.reject = string(payload[1:])
		}
		p.noiseHello(ctx, info)
		return info, nil
	case 0x00:
	default:
		return nil, fmt.Errorf("%w: first byte 0x%02X", errNotAPI, ind)
	}
	typ, payload, err := readPlainFrameAfterIndicator(r)
	if err != nil {
		return nil, err
	}
	if typ != msgHelloResponse {
		return nil, fmt.Errorf("%w: message type %d where HelloResponse (2) was due", errNotAPI, typ)
	}
	for f := range fields(payload) {
		switch f.num {
		case 3:
			info.serverInfo = string(f.bytes)
		case 4:
			info.name = string(f.bytes)
		}
	}
	if m := esphomeVersion.FindStringSubmatch(info.serverInfo); m != nil {
		info.version = m[1]
	}
	if _, err := c.Write(plainFrame(msgDeviceInfoRequest, nil)); err != nil {
		return info, nil
	}
	for range 8 { // skip anything the node sends first (pings)
		typ, payload, err := readPlainFrame(r)
		if err != nil {
			return info, nil
		}
		if typ != msgDeviceInfoResp {
			continue
		}
		for f := range fields(payload) {
			switch f.num {
			case 2:
				info.name = string(f.bytes)
			case 3:
				info.mac = string(f.bytes)
			case 4:
				info.version = string(f.bytes)
			case 6:
				info.model = string(f.bytes)
			case 12:
				info.manufacturer = string(f.bytes)
			case 13:
				info.friendly = string(f.bytes)
			}
		}
		break
	}
	return info, nil
}

// noiseHello opens a second connection and sends an empty Noise client
// hello; the server hello names the node and, in newer ESPHome, its MAC.
// Failures leave info as it is.
func (p *prober) noiseHello(ctx context.Context, info *nativeInfo) {
	c, err := p.dialProbe(ctx, apiPort)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(p.deadline())
	if _, err := c.Write([]byte{0x01, 0x00, 0x00}); err != nil {
		return
	}
	r := bufio.NewReader(c)
	if b, err := r.ReadByte(); err != nil || b != 0x01 {
		return
	}
	payload, err := readNoiseFrame(r)
	if err != nil || len(payload) < 2 || payload[0] != 0x01 {
		return
	}
	parts := strings.Split(string(payload[1:]), "\x00")
	info.name = parts[0]
	if len(parts) > 1 {
		info.mac = parts[1]
	}
}

func plainFrame(typ int, payload []byte) []byte {
	b := []byte{0x00}
	b = binary.AppendUvarint(b, uint64(len(payload)))
	b = binary.AppendUvarint(b, uint64(typ))
	return append(b, payload...)
}

func readPlainFrame(r *bufio.Reader) (int, []byte, error) {
	ind, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	if ind != 0x00 {
		return 0, nil, fmt.Errorf("%w: indicator 0x%02X", errNotAPI, ind)
	}
	return readPlainFrameAfterIndicator(r)
}

func readPlainFrameAfterIndicator(r *bufio.Reader) (int, []byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, err
	}
	typ, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, err
	}
	if n > maxAPIFrame {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", errNotAPI, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return int(typ), buf, nil
}

// readNoiseFrame reads the length and payload after the 0x01 indicator.
func readNoiseFrame(r *bufio.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// Minimal protobuf: varint and length-delimited fields, the rest skipped.

func appendVarintField(b []byte, num int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(num)<<3)
	return binary.AppendUvarint(b, v)
}

func appendString(b []byte, num int, s string) []byte {
	b = binary.AppendUvarint(b, uint64(num)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type pbField struct {
	num   int
	value uint64 // varint fields
	bytes []byte // length-delimited fields
}

// fields iterates over the fields of a protobuf message; it stops at the
// first malformed one.
func fields(b []byte) iter.Seq[pbField] {
	return func(yield func(pbField) bool) {
		for len(b) > 0 {
			key, n := binary.Uvarint(b)
			if n <= 0 {
				return
			}
			b = b[n:]
			f := pbField{num: int(key >> 3)}
			switch key & 7 {
			case 0:
				v, n := binary.Uvarint(b)
				if n <= 0 {
					return
				}
				f.value, b = v, b[n:]
			case 1:
				if len(b) < 8 {
					return
				}
				b = b[8:]
			case 2:
				l, n := binary.Uvarint(b)
				if n <= 0 || uint64(len(b)-n) < l {
					return
				}
				f.bytes, b = b[n:n+int(l)], b[n+int(l):]
			case 5:
				if len(b) < 4 {
					return
				}
				b = b[4:]
			default:
				return
			}
			if !yield(f) {
				return
			}
		}
	}
}
