package espstub

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// inflateResult is what build/inflate-check reports.
type inflateResult struct {
	out                    []byte
	stored, fixed, dynamic int
	status                 string // "done" or the stub status, e.g. "0xC7"
}

var inflateLine = regexp.MustCompile(`stored=(\d+) fixed=(\d+) dynamic=(\d+) in=\d+ out=\d+ status=(\S+)`)

// runInflate feeds stream to the stub's inflater in pieces of chunk bytes.
func runInflate(t *testing.T, stream []byte, chunk int, endSeparately bool) inflateResult {
	t.Helper()
	args := []string{"-c", strconv.Itoa(chunk)}
	if endSeparately {
		args = append(args, "-e")
	}
	cmd := exec.Command(hostTool(t, "inflate-check"), args...)
	cmd.Stdin = bytes.NewReader(stream)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	m := inflateLine.FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("inflate-check: %v\n%s", err, errb.String())
	}
	r := inflateResult{out: out.Bytes(), status: m[4]}
	r.stored, _ = strconv.Atoi(m[1])
	r.fixed, _ = strconv.Atoi(m[2])
	r.dynamic, _ = strconv.Atoi(m[3])
	if (err == nil) != (r.status == "done") {
		t.Fatalf("inflate-check exit %v with status %s", err, r.status)
	}
	return r
}

// firmwareLike imitates a Tasmota image: code-like bytes, string tables,
// and runs of 0x00 and 0xFF.
func firmwareLike(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	words := strings.Fields("relay power switch wifi config tasmota module gpio button led timer rule mqtt topic state")
	var b bytes.Buffer
	for b.Len() < n {
		switch k := r.IntN(20); {
		case k < 11:
			for i, m := 0, 64+r.IntN(2000); i < m; i++ {
				b.WriteByte(byte(min(255, int(r.ExpFloat64()*40))))
			}
		case k < 15:
			for i, m := 0, 4+r.IntN(60); i < m; i++ {
				b.WriteString(words[r.IntN(len(words))])
				b.WriteByte(' ')
			}
			b.WriteByte(0)
		case k < 18:
			b.Write(make([]byte, 16+r.IntN(4096)))
		default:
			b.Write(bytes.Repeat([]byte{0xFF}, 16+r.IntN(8192)))
		}
	}
	return b.Bytes()[:n]
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func goZlib(t *testing.T, data []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zlib.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// TestInflateGoLevels: streams from Go's compress/zlib at every level,
// fed whole, byte by byte and in odd pieces, decode to the input.
func TestInflateGoLevels(t *testing.T) {
	inputs := map[string][]byte{
		"empty":    nil,
		"short":    []byte("OHAI"),
		"text":     bytes.Repeat([]byte("tuyaflash backs up the stock firmware first. "), 900),
		"firmware": firmwareLike(1, 160<<10),
		"random":   randomBytes(2, 40<<10),
		"zeros":    make([]byte, 100<<10),
	}
	levels := []int{flate.HuffmanOnly, flate.DefaultCompression, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	var seen [3]int
	for name, data := range inputs {
		for _, level := range levels {
			stream := goZlib(t, data, level)
			for _, chunk := range []int{16384, 1, 4093} {
				if chunk == 1 && len(stream) > 64<<10 {
					continue // slow and no different from 7
				}
				r := runInflate(t, stream, chunk, false)
				if r.status != "done" || !bytes.Equal(r.out, data) {
					t.Errorf("%s level %d chunk %d: status %s, %d of %d bytes, equal=%v",
						name, level, chunk, r.status, len(r.out), len(data), bytes.Equal(r.out, data))
				}
				seen[0] += r.stored
				seen[1] += r.fixed
				seen[2] += r.dynamic
			}
		}
	}
	for i, kind := range []string{"stored", "fixed", "dynamic"} {
		if seen[i] == 0 {
			t.Errorf("no %s block among Go's streams", kind)
		}
	}
	t.Logf("blocks decoded: stored %d, fixed %d, dynamic %d", seen[0], seen[1], seen[2])
}

type fixture struct {
	name, kind string
	size       int
	sha        string
	stream     []byte
}

// fixtures loads the C-zlib streams made by testdata/make_fixtures.py.
func fixtures(t *testing.T) []fixture {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "fixtures.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		var fx fixture
		if _, err := fmt.Sscanf(line, "%s %d %s %s", &fx.name, &fx.size, &fx.sha, &fx.kind); err != nil {
			t.Fatalf("fixtures.txt: %q: %v", line, err)
		}
		if fx.stream, err = os.ReadFile(filepath.Join("testdata", fx.name+".zlib")); err != nil {
			t.Fatal(err)
		}
		out = append(out, fx)
	}
	if len(out) < 6 {
		t.Fatalf("only %d fixtures", len(out))
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestInflateCZlibFixtures: level-9 streams from C zlib (what esptool
// sends) covering stored, fixed and dynamic blocks.
func TestInflateCZlibFixtures(t *testing.T) {
	kinds := map[string]bool{}
	for _, fx := range fixtures(t) {
		// The manifest itself, checked with Go's decoder.
		zr, err := zlib.NewReader(bytes.NewReader(fx.stream))
		if err != nil {
			t.Fatal(err)
		}
		want, err := io.ReadAll(zr)
		if err != nil || len(want) != fx.size || sha(want) != fx.sha {
			t.Fatalf("%s: fixture does not match fixtures.txt (%v)", fx.name, err)
		}
		for _, chunk := range []int{16384, 1, 333} {
			for _, endSep := range []bool{false, true} {
				r := runInflate(t, fx.stream, chunk, endSep)
				if r.status != "done" || len(r.out) != fx.size || sha(r.out) != fx.sha {
					t.Errorf("%s chunk %d: status %s, %d bytes, sha %s", fx.name, chunk, r.status, len(r.out), sha(r.out))
					continue
				}
				n := map[string]int{"stored": r.stored, "fixed": r.fixed, "dynamic": r.dynamic}[fx.kind]
				if n == 0 {
					t.Errorf("%s: no %s block decoded (stored %d fixed %d dynamic %d)", fx.name, fx.kind, r.stored, r.fixed, r.dynamic)
				}
				kinds[fx.kind] = true
			}
		}
	}
	if len(kinds) != 3 {
		t.Errorf("fixtures cover %v; want stored, fixed and dynamic", kinds)
	}
}

// TestInflateTruncated: a stream cut anywhere is rejected with the stub's
// inflate error, whether the cut shows on the last packet or at the end.
func TestInflateTruncated(t *testing.T) {
	streams := map[string][]byte{}
	for _, fx := range fixtures(t) {
		if fx.name == "fixed" || fx.name == "stored" || fx.name == "firmware" {
			streams["c-"+fx.name] = fx.stream
		}
	}
	streams["go-9"] = goZlib(t, firmwareLike(3, 20<<10), 9)
	for name, s := range streams {
		cuts := []int{0, 1, 2, 3, len(s) / 3, len(s) / 2, len(s) - 5, len(s) - 4, len(s) - 1}
		if len(s) < 200 {
			cuts = cuts[:0]
			for i := 0; i < len(s); i++ {
				cuts = append(cuts, i)
			}
		}
		for _, cut := range cuts {
			for _, endSep := range []bool{false, true} {
				r := runInflate(t, s[:cut], 4096, endSep)
				if r.status != "0xC7" {
					t.Errorf("%s cut at %d of %d (end separately %v): status %s, want 0xC7", name, cut, len(s), endSep, r.status)
				}
			}
		}
	}
}

// TestInflateCorrupt flips bytes of a C-zlib stream. Each result must be a
// rejection with 0xC7 or, where the flip hit bits deflate ignores, the
// original data; never other data reported as good.
func TestInflateCorrupt(t *testing.T) {
	var fx fixture
	for _, f := range fixtures(t) {
		if f.name == "firmware" {
			fx = f
		}
	}
	r := rand.New(rand.NewPCG(9, 9))
	rejected := 0
	const tries = 150
	for i := 0; i < tries; i++ {
		s := bytes.Clone(fx.stream)
		pos := r.IntN(len(s))
		s[pos] ^= byte(1 + r.IntN(255))
		res := runInflate(t, s, 16384, false)
		switch {
		case res.status == "0xC7":
			rejected++
		case res.status == "done" && sha(res.out) == fx.sha:
		default:
			t.Errorf("byte %d flipped: status %s with %d bytes of other data", pos, res.status, len(res.out))
		}
	}
	if rejected < tries*9/10 {
		t.Errorf("only %d of %d corrupted streams rejected", rejected, tries)
	}
}

// bitWriter writes deflate bit streams by hand (RFC 1951 3.1.1).
type bitWriter struct {
	out  []byte
	acc  uint32
	nacc uint
}

func (w *bitWriter) bits(v uint32, n uint) {
	for i := uint(0); i < n; i++ {
		w.acc |= (v >> i & 1) << w.nacc
		w.nacc++
		if w.nacc == 8 {
			w.out = append(w.out, byte(w.acc))
			w.acc, w.nacc = 0, 0
		}
	}
}

// code writes a Huffman code, most significant bit first.
func (w *bitWriter) code(c uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.bits(c>>uint(i)&1, 1)
	}
}

func (w *bitWriter) align() {
	if w.nacc > 0 {
		w.bits(0, 8-w.nacc)
	}
}

// fixedLit writes literal/length symbol s with the fixed code.
func (w *bitWriter) fixedLit(s int) {
	switch {
	case s < 144:
		w.code(uint32(0x30+s), 8)
	case s < 256:
		w.code(uint32(0x190+s-144), 9)
	case s < 280:
		w.code(uint32(s-256), 7)
	default:
		w.code(uint32(0xC0+s-280), 8)
	}
}

func zlibWrap(deflate []byte, data []byte) []byte {
	out := []byte{0x78, 0xDA}
	out = append(out, deflate...)
	return binary.BigEndian.AppendUint32(out, adler32.Checksum(data))
}

// TestInflateHandMade: streams no encoder writes, each breaking one rule.
func TestInflateHandMade(t *testing.T) {
	stored := func(data []byte, nlenXor uint16) []byte {
		w := &bitWriter{}
		w.bits(1, 1) // final
		w.bits(0, 2) // stored
		w.align()
		w.bits(uint32(len(data)), 16)
		w.bits(uint32(^uint16(len(data))^nlenXor), 16)
		return append(w.out, data...)
	}
	fixed := func(body func(w *bitWriter)) []byte {
		w := &bitWriter{}
		w.bits(1, 1)
		w.bits(1, 2)
		body(w)
		w.fixedLit(256)
		w.align()
		return w.out
	}
	// Dynamic block whose code length code lengths are all 1: over-subscribed.
	overSub := func() []byte {
		w := &bitWriter{}
		w.bits(1, 1)
		w.bits(2, 2)
		w.bits(0, 5)  // HLIT 257
		w.bits(0, 5)  // HDIST 1
		w.bits(15, 4) // HCLEN 19
		for i := 0; i < 19; i++ {
			w.bits(1, 3)
		}
		w.align()
		return w.out
	}()
	// Dynamic block starting with code 16 (repeat previous) at index 0.
	repeatFirst := func() []byte {
		w := &bitWriter{}
		w.bits(1, 1)
		w.bits(2, 2)
		w.bits(0, 5)
		w.bits(0, 5)
		w.bits(0, 4) // HCLEN 4: lengths for 16, 17, 18, 0
		for i := 0; i < 4; i++ {
			w.bits(2, 3) // four codes of length 2: complete
		}
		w.code(1, 2) // symbol 16 (codes in symbol order: 0, 16, 17, 18)
		w.bits(0, 2)
		w.align()
		return append(w.out, 0, 0, 0, 0)
	}()
	hello := []byte("hello")
	cases := []struct {
		name   string
		stream []byte
		want   string
	}{
		{"stored ok", zlibWrap(stored(hello, 0), hello), "done"},
		{"stored length check", zlibWrap(stored(hello, 1), hello), "0xC7"},
		{"fixed ok", zlibWrap(fixed(func(w *bitWriter) {
			w.fixedLit('a')
			w.fixedLit(257) // length 3
			w.code(0, 5)    // distance 1
		}), []byte("aaaa")), "done"},
		// The trailer matches what a decoder that reads the zeroed window
		// before the start would produce, so only the distance rule stops it.
		{"distance before start", zlibWrap(fixed(func(w *bitWriter) {
			w.fixedLit('a')
			w.fixedLit(257)
			w.code(1, 5) // distance 2, only 1 byte out
		}), []byte("a\x00a\x00")), "0xC7"},
		{"distance code 30", zlibWrap(fixed(func(w *bitWriter) {
			w.fixedLit('a')
			w.fixedLit(257)
			w.code(30, 5)
		}), []byte("aaaa")), "0xC7"},
		{"length code 286", zlibWrap(fixed(func(w *bitWriter) {
			w.fixedLit('a')
			w.fixedLit(286)
		}), []byte("a")), "0xC7"},
		{"reserved block type", zlibWrap([]byte{0x07, 0x00}, nil), "0xC7"},
		{"over-subscribed code", zlibWrap(overSub, nil), "0xC7"},
		{"repeat with nothing before", zlibWrap(repeatFirst, nil), "0xC7"},
		{"wrong adler", append(zlibWrap(stored(hello, 0), hello)[:len(zlibWrap(stored(hello, 0), hello))-1], 0), "0xC7"},
		{"not deflate (CM 7)", append([]byte{0x77, 0x85}, stored(hello, 0)...), "0xC7"},
		{"header check bits", append([]byte{0x78, 0xDB}, stored(hello, 0)...), "0xC7"},
		{"preset dictionary", append([]byte{0x78, 0xBB, 0, 0, 0, 1}, stored(hello, 0)...), "0xC7"},
		{"gzip instead of zlib", []byte{0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3}, "0xC7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, chunk := range []int{16384, 1} {
				r := runInflate(t, c.stream, chunk, false)
				if r.status != c.want {
					t.Fatalf("chunk %d: status %s, want %s", chunk, r.status, c.want)
				}
			}
		})
	}
}
