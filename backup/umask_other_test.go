//go:build !unix

package backup

import "testing"

func withUmask(t *testing.T, _ int) { t.Skip("no Unix modes") }
