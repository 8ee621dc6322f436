// Package ops runs the jobs a user asks for on a connected chip: back up
// the whole flash into the store (resumable), write an image, restore a
// backup. It decides what is safe; the chip packages do the bytes.
package ops

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/flasher"
)

// BackupOptions configures Backup.
type BackupOptions struct {
	// Root is the backup store; Output, when set, is the dump's exact
	// path instead of root/<device>/<name>.bin.
	Root, Output string
	ToolVersion  string
	Port         string
	Progress     flasher.Progress
	Events       flasher.Notify
	// Now stamps the backup (time.Now when zero).
	Now time.Time
	// Started, when set, is told where the partial dump is kept and how
	// many verified bytes it already holds, before reading starts (for
	// an interruption's message).
	Started func(partial string, done int64)
}

// BackupResult reports a finished backup.
type BackupResult struct {
	Path    string         `json:"path"`
	Sidecar backup.Sidecar `json:"sidecar"`
	// Resumed is how many bytes came from an earlier interrupted run.
	Resumed int64 `json:"resumed_bytes"`
}

// IdentityKey names a device for partial backups and inventories: family,
// flash id, size and MAC (when it is not a placeholder).
func IdentityKey(info flasher.Info) string {
	parts := []string{strings.ToLower(string(info.Family))}
	if id := info.FlashIDString(); id != "" {
		parts = append(parts, strings.ToLower(id))
	}
	parts = append(parts, fmt.Sprintf("%dk", info.FlashSize/1024))
	if info.HasMAC() {
		if ph, _ := info.MAC.Placeholder(); !ph {
			parts = append(parts, info.MAC.Compact())
		}
	}
	return strings.Join(parts, "-")
}

// SidecarFor fills the device part of a sidecar from the chip's Info.
func SidecarFor(info flasher.Info) backup.Sidecar {
	s := backup.Sidecar{
		Family:     string(info.Family),
		Protocol:   info.Protocol,
		Bootloader: info.Bootloader,
		FlashID:    info.FlashIDString(),
		FlashName:  info.FlashName,
		FlashSize:  info.FlashSize,
		EfuseKey:   info.EfuseKey,
		Baud:       info.Baud,
	}
	if info.ChipID != 0 {
		s.ChipID = fmt.Sprintf("0x%X", info.ChipID)
	}
	if info.HasMAC() {
		s.MAC = info.MAC.String()
		if ph, why := info.MAC.Placeholder(); ph {
			s.MACPlaceholder = why
		}
	}
	return s
}

// commitWriter stores verified data into a partial dump and records
// progress in its journal every 64 KiB.
type commitWriter struct {
	p     *backup.Partial
	done  int64
	crc   uint32
	dirty int64
}

func (w *commitWriter) Write(b []byte) (int, error) {
	n, err := w.p.File.Write(b)
	w.done += int64(n)
	w.crc = crc32.Update(w.crc, crc32.IEEETable, b[:n])
	w.dirty += int64(n)
	if err != nil {
		return n, err
	}
	if w.dirty >= 64*1024 {
		w.dirty = 0
		if err := w.p.Commit(w.done); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Backup reads the whole flash into the store. The dump goes to a partial
// file first, committed as it is verified; an interrupted backup resumes
// from there after the chip confirms the stored part. The finished dump is
// saved atomically with its sidecar and never overwrites anything.
func Backup(ctx context.Context, dev flasher.Device, o BackupOptions) (*BackupResult, error) {
	info := dev.Info()
	if err := KnownSize(info, "backup"); err != nil {
		return nil, err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	size := int64(info.FlashSize)
	key := IdentityKey(info)
	part, err := backup.OpenPartial(o.Root, key, key, 0, size)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	keep := true
	defer func() {
		if keep {
			part.Close()
		}
	}()
	res := &BackupResult{}
	w := &commitWriter{p: part}
	if done := part.Journal.Done; done > 0 {
		prefix, err := part.Prefix()
		if err != nil {
			return nil, fmt.Errorf("backup: read partial dump: %w", err)
		}
		switch err := dev.Verify(ctx, 0, prefix); {
		case err == nil:
			o.Events.Emit(flasher.Warning, fmt.Sprintf("resuming an interrupted backup of this device at 0x%06X (%d KiB already verified)", done, done/1024))
			res.Resumed = done
			w.done, w.crc = done, crc32.ChecksumIEEE(prefix)
		case errors.Is(err, flasher.ErrVerify):
			o.Events.Emit(flasher.Warning, "an interrupted backup was found but the chip no longer matches it; starting over")
			if err := part.Restart(); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
	if o.Started != nil {
		o.Started(part.Path(), w.done)
	}
	if err := dev.Read(ctx, uint32(w.done), uint32(size-w.done), w, o.Progress); err != nil {
		if ctx.Err() != nil {
			// Interrupted (Ctrl-C, SIGTERM): whatever the closed port
			// made the read say, this is no link fault.
			err = context.Cause(ctx)
		}
		// Everything that reached w was verified first; a write the disk
		// cut short (full, a file size limit) may end inside a sector,
		// where no read can resume: keep whole sectors only.
		done := w.done &^ (resumeAlign - 1)
		if done > 0 && part.Commit(done) != nil {
			// A full disk took the data but not the journal: a resume
			// starts where the journal last said.
			done = part.Journal.Done
		}
		if done == 0 {
			keep = false
			part.Finish()
			switch {
			case ctx.Err() != nil:
				return nil, &flasher.HintError{Err: fmt.Errorf("backup: %w", err), Hint: "nothing was read yet; run the same command again"}
			case storageErr(err):
				return nil, &flasher.HintError{Err: fmt.Errorf("backup: %w", err), Hint: storageHint}
			}
			return nil, fmt.Errorf("backup: %w", err)
		}
		return nil, &flasher.HintError{
			Err:  fmt.Errorf("backup stopped at 0x%06X: %w", done, err),
			Hint: resumeHint(ctx, err, part.Path(), done),
		}
	}
	if err := part.Commit(w.done); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	data, err := part.Prefix()
	if err != nil {
		return nil, err
	}
	if isUniform(data, 0x00) {
		return nil, &flasher.HintError{
			Err:  fmt.Errorf("the whole flash reads as 0x00: %w", flasher.ErrDevice),
			Hint: "the flash is not readable (ltchiptool #29: pulling P24 low during reset helped one user); no backup was saved",
		}
	}
	if isUniform(data, 0xFF) {
		o.Events.Emit(flasher.Warning, "the whole flash reads as 0xFF (erased): this dump holds no firmware")
	}
	sc := SidecarFor(info)
	sc.ToolVersion, sc.Port = o.ToolVersion, o.Port
	sc.Verified = ReadVerification(info.Family)
	if res.Resumed > 0 {
		sc.Verified.Resumed = res.Resumed
		sc.Verified.ResumedMethod = sc.Verified.Method + " of the whole resumed range, computed by the " + sc.Verified.By
	}
	if _, err := part.File.Seek(0, 0); err != nil {
		return nil, err
	}
	path, err := backup.Save(part.File, &sc, o.Root, o.Output, o.Now)
	if err != nil {
		return nil, &flasher.HintError{Err: fmt.Errorf("save backup: %w", err), Hint: "the verified dump is kept in " + part.Path()}
	}
	if sc.CRC32 != fmt.Sprintf("%08x", w.crc) {
		return nil, fmt.Errorf("the saved file %s does not hold what the chip sent (crc32 %s, read %08x): check the disk", path, sc.CRC32, w.crc)
	}
	keep = false
	part.Finish()
	res.Path, res.Sidecar = path, sc
	return res, nil
}

func isUniform(b []byte, v byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

// ReadVerification says how a family's client checks what it reads: the
// Beken client compares the chip's CRC-32 of every 64 KiB group
// (flasher/bk7231 verifyGroup) and the ESP8266 client the stub's MD5 of
// every chunk of up to 64 KiB (flasher/esp8266 maxReadChunk), before the
// data is handed over; the saved file's CRC-32 is then compared with that
// of the verified data.
func ReadVerification(fam flasher.Family) *backup.Verification {
	v := &backup.Verification{Method: "crc32", By: "chip", Granularity: 64 << 10,
		Whole: "crc32 of the saved file compared with that of the verified blocks"}
	if fam.Espressif() {
		v.Method, v.By = "md5", "stub"
	}
	return v
}

// resumeHint says what to do after a backup stopped at done bytes whose
// verified part is kept in path.
func resumeHint(ctx context.Context, err error, path string, done int64) string {
	kept := PartialKept(path, done)
	if ctx.Err() != nil {
		return kept
	}
	return linkHint(err) + "; nothing is lost: " + kept
}

// PartialKept says where the verified part of an interrupted backup is
// kept and how to resume.
func PartialKept(path string, done int64) string {
	return fmt.Sprintf("the partial backup (0x000000-0x%06X verified, %d KiB) is kept in %s; run the same command again to resume", done-1, done/1024, path)
}

// resumeAlign is the granularity of a resumed backup: the flash sector,
// on which every chip's reads may start.
const resumeAlign = 4096

// storageErr reports whether err is the backup folder's disk refusing the
// dump (full, the process's file size limit, mounted read-only), not the
// link.
func storageErr(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EROFS)
}

const storageHint = "the disk of the backup folder refused the dump (full, a file size limit, or read-only): free some space or choose another folder (--backup-dir or $TUYAFLASH_BACKUP_DIR), then run the same command again"

// linkHint says what to do after a transfer error (never after an
// interruption: see resumeHint).
func linkHint(err error) string {
	if h := flasher.Hint(err); h != "" {
		return h
	}
	if storageErr(err) {
		return storageHint
	}
	if errors.Is(err, os.ErrClosed) || strings.Contains(err.Error(), "closed") {
		return "the serial link was lost (adapter unplugged or device powered off)"
	}
	return "the link is unreliable (check the wires and the 3.3 V supply, or try a lower --baud)"
}
