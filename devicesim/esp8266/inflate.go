package espsim

import (
	"compress/zlib"
	"io"
)

// inflater decompresses a FLASH_DEFL_DATA stream block by block. The zlib
// reader runs in its own goroutine and asks for input when it needs more;
// the serving goroutine hands it one block at a time and receives the
// output, so flash writes stay on the serving goroutine and every block is
// fully processed before the next command is read.
type inflater struct {
	in     chan []byte
	out    chan inflateMsg
	done   bool // the stream ended (normally or not)
	closed bool
}

type inflateMsg struct {
	data []byte
	need bool // waiting for the next block
	done bool
	err  error
}

func newInflater() *inflater {
	z := &inflater{in: make(chan []byte), out: make(chan inflateMsg)}
	go z.run()
	// The zlib reader asks for the first block before producing anything.
	_, _ = z.collect(nil)
	return z
}

func (z *inflater) run() {
	defer close(z.out)
	f := &feeder{z: z}
	zr, err := zlib.NewReader(f)
	if err != nil {
		z.out <- inflateMsg{done: true, err: err}
		return
	}
	buf := make([]byte, 32*kib)
	for {
		n, err := zr.Read(buf)
		if n > 0 {
			z.out <- inflateMsg{data: append([]byte(nil), buf[:n]...)}
		}
		if err == io.EOF {
			z.out <- inflateMsg{done: true}
			return
		}
		if err != nil {
			z.out <- inflateMsg{done: true, err: err}
			return
		}
	}
}

// feeder is the zlib reader's input: it blocks for the next block.
type feeder struct {
	z   *inflater
	cur []byte
	eof bool
}

func (f *feeder) more() bool {
	for len(f.cur) == 0 {
		if f.eof {
			return false
		}
		f.z.out <- inflateMsg{need: true}
		b, ok := <-f.z.in
		if !ok {
			f.eof = true
			return false
		}
		f.cur = b
	}
	return true
}

func (f *feeder) Read(p []byte) (int, error) {
	if !f.more() {
		return 0, io.EOF
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

func (f *feeder) ReadByte() (byte, error) {
	if !f.more() {
		return 0, io.EOF
	}
	b := f.cur[0]
	f.cur = f.cur[1:]
	return b, nil
}

// feed hands block to the decompressor and passes every output chunk to
// sink until the decompressor wants more input or the stream ends.
// streamErr is a corrupt stream; sinkErr is sink's error (the inflater is
// then aborted).
func (z *inflater) feed(block []byte, sink func([]byte) error) (streamErr, sinkErr error) {
	if z.done || z.closed {
		return nil, nil
	}
	z.in <- block
	return z.collect(sink)
}

func (z *inflater) collect(sink func([]byte) error) (streamErr, sinkErr error) {
	for m := range z.out {
		switch {
		case m.data != nil:
			if err := sink(m.data); err != nil {
				z.abort()
				return nil, err
			}
		case m.need:
			return nil, nil
		case m.done:
			z.done = true
			return m.err, nil
		}
	}
	z.done = true
	return nil, nil
}

// abort stops the decompressor and waits for its goroutine to end.
func (z *inflater) abort() {
	if z.closed {
		return
	}
	z.closed = true
	close(z.in)
	for range z.out {
	}
	z.done = true
}
