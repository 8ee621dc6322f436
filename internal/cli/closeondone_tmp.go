package cli

import (
	"context"
	"io"
)

// closeOnDone closes p when ctx ends, which unblocks any Read on it; stop
// detaches it (reporting whether it did so before ctx ended).
//
// TEMPORARY: this stands in for transport.CloseOnDone (contract C5) until
// the transport branch is merged; then this file goes and the callers use
// transport.CloseOnDone(ctx, p).
func closeOnDone(ctx context.Context, p io.Closer) (stop func() bool) {
	return context.AfterFunc(ctx, func() { p.Close() })
}
