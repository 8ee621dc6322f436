package esp8266

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	espsim "github.com/tuyaflash/tuyaflash/devicesim/esp8266"
	"github.com/tuyaflash/tuyaflash/flasher"
	"github.com/tuyaflash/tuyaflash/transport"
)

func TestZZSmoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, chip := transport.Pipe(transport.LinkOptions{Baud: 115200, Paced: true})
		dev, err := espsim.New(espsim.Config{Chip: espsim.ESP8285})
		if err != nil { t.Fatal(err) }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- dev.Serve(ctx, chip) }()
		defer func() { cancel(); host.Close(); chip.Close(); <-done }()
		d, err := Connect(ctx, host, Options{Events: func(e flasher.Event) { t.Log("event", e) }})
		if err != nil { t.Fatal(err) }
		t.Logf("%+v", d.Info())
		data := bytes.Repeat([]byte("tuyaflash"), 3000)
		st := time.Now()
		res, err := d.Write(ctx, 0x10000, data, nil)
		t.Logf("%+v %v %v", res, err, time.Since(st))
		stub := &Stub{Text: make([]byte, 100), TextStart: 0x4010C500, Entry: 0x4010C504, Data: make([]byte, 10), DataStart: 0x3FFFAE6C}
		if err := d.runStub(stub); err != nil { t.Fatal(err) }
		var buf bytes.Buffer
		st = time.Now()
		err = d.Read(ctx, 0x10000, uint32(len(data)), &buf, nil)
		t.Log(err, bytes.Equal(buf.Bytes(), data), time.Since(st))
		st = time.Now()
		res, err = d.Write(ctx, 0x20000, data, nil)
		t.Logf("%+v %v %v", res, err, time.Since(st))
		t.Logf("%+v", dev.Stats())
	})
}
