package provision

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tuyaflash/tuyaflash/postflash"
)

// TestHostileAccessPoint: a device's pages reach the user's terminal only
// with their control characters shown as escapes, and a page that never
// ends is cut off by the request timeout.
func TestHostileAccessPoint(t *testing.T) {
	t.Run("escape sequences in the failure page", func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/wi" && !r.URL.Query().Has("save") {
				w.Write([]byte("<form><input id='s1'></form><h3>Connect failed\x1b[2J\x1b]0;owned\x07<br>\u009b31m</h3>"))
				return
			}
			w.Write([]byte("{}"))
		})
		_, err := ProvisionAP(context.Background(), postflash.Tasmota, WiFi{"Home", "password1"}, apAt(t, h))
		if err == nil || !strings.Contains(err.Error(), `Connect failed\x1b[2J`) {
			t.Fatalf("got %v, want the page's text with visible escapes", err)
		}
		for _, r := range err.Error() {
			if r == 0x1b || r == 0x07 || r == 0x9b {
				t.Fatalf("the error holds %U: %q", r, err.Error())
			}
		}
	})
	t.Run("endless page", func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := []byte(strings.Repeat("<p>x</p>", 1024))
			for {
				if _, err := w.Write(buf); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
		o := apAt(t, h)
		o.Timeout, o.Wait = 300*time.Millisecond, 600*time.Millisecond
		done := make(chan error, 1)
		go func() {
			_, err := ProvisionAP(context.Background(), postflash.Tasmota, WiFi{"Home", "password1"}, o)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("an endless page counted as a success")
			}
		case <-time.After(60 * time.Second):
			t.Fatal("an endless page was not cut off")
		}
	})
}
