package cli

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/tuyaflash/tuyaflash/backup"
	"github.com/tuyaflash/tuyaflash/firmware"
	"github.com/tuyaflash/tuyaflash/flasher"
)

func init() { register(firmwareCmd()) }

// firmwareFlags are the catalogue and cache flags; write --firmware uses
// them too (add them to its flag set and call open).
type firmwareFlags struct {
	manifest  string
	cacheDir  string
	offline   bool
	allowHTTP bool
}

func (f *firmwareFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.manifest, "manifest", "", "firmware catalogue `file|URL` (default: the one built into tuyaflash)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "download cache `folder` (default $"+firmware.CacheDirEnv+" or the user cache folder)/tuyaflash/firmware")
	fs.BoolVar(&f.offline, "offline", false, "use only files already in the download cache")
	fs.BoolVar(&f.allowHTTP, "allow-http", false, "also download over plain http:// (a mirror on your network without HTTPS; checksums still apply)")
}

// open loads the catalogue and sets up the download cache.
func (f *firmwareFlags) open(e *env) (*firmware.Manifest, *firmware.Cache, error) {
	client := firmware.NewHTTPClient(f.allowHTTP)
	m, err := firmware.Load(e.ctx, client, f.manifest, f.allowHTTP)
	if err != nil {
		return nil, nil, err
	}
	dir := f.cacheDir
	if dir == "" {
		if dir, err = firmware.DefaultCacheDir(); err != nil {
			return nil, nil, err
		}
	}
	return m, &firmware.Cache{Dir: dir, Client: client, AllowHTTP: f.allowHTTP, UserAgent: "tuyaflash/" + version(), Offline: f.offline}, nil
}

// chipFlags select the chip a catalogue lookup is for.
type chipFlags struct {
	family string
	key    string
}

func (c *chipFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&c.family, "chip", "", "chip `family` as 'tuyaflash detect' reports it: "+familyNames()+" (bk7231m: a BK7231N with the zero key)")
	fs.StringVar(&c.key, "efuse-key", "", "BK7231N eFuse `key` as 'tuyaflash detect' reports it: tuya or zero")
}

func (c *chipFlags) chip() (firmware.Chip, error) {
	var ch firmware.Chip
	if c.family != "" {
		fam, ok := flasher.ParseFamily(c.family)
		if !ok {
			return ch, usagef("--chip %q: want %s", c.family, familyNames())
		}
		ch = firmware.ChipFor(fam) // bk7231m: BK7231N, zero key
	}
	switch k := strings.ToLower(c.key); k {
	case "":
	case firmware.KeyTuya, firmware.KeyZero:
		switch {
		case ch.Family != flasher.BK7231N:
			return ch, usagef("--efuse-key applies to --chip bk7231n only")
		case ch.EfuseKey != "" && ch.EfuseKey != k:
			return ch, usagef("--efuse-key %s contradicts --chip %s (a BK7231N with the %s key)", k, c.family, ch.EfuseKey)
		}
		ch.EfuseKey = k
	default:
		return ch, usagef("--efuse-key %q: want tuya or zero", c.key)
	}
	return ch, nil
}

func firmwareCmd() *command {
	var ff firmwareFlags
	var cf chipFlags
	var sha string
	c := &command{name: "firmware", args: "list | fetch NAME | verify FILE",
		subcommands: map[string]string{"list": "list", "fetch": "fetch", "verify": "verify"},
		summary:     "list the firmware catalogue, download images into the cache, check an image file",
		long: `list    what the catalogue has (for --chip), with the cache state of each file
fetch   download NAME into the cache (resumes cut downloads; checks the sha256 the
        catalogue gives, or pins the checksum of the first download when it gives
        none); without --chip every build of NAME
verify  tell what an image file is by its content, where it would be written
        (with --chip) and whether it matches the catalogue or --sha256

'tuyaflash write --firmware NAME' uses the same catalogue and cache.`}
	c.flags = func(fs *pflag.FlagSet) {
		cf.add(fs)
		ff.add(fs)
		fs.StringVar(&sha, "sha256", "", "verify: the `checksum` the file must have")
	}
	c.check = func(e *env, args []string) error {
		if len(args) == 0 {
			return usagef("firmware needs a subcommand: list, fetch NAME or verify FILE")
		}
		only := map[string][]string{"sha256": {"verify"}, "offline": {"fetch"}}
		for flag, subs := range only {
			if e.changed(flag) && !slices.Contains(subs, args[0]) {
				return usagef("--%s applies to 'firmware %s' only", flag, strings.Join(subs, "' and 'firmware "))
			}
		}
		if e.changed("allow-http") && args[0] != "fetch" && !strings.Contains(ff.manifest, "://") {
			return usagef("--allow-http applies to downloads: 'firmware fetch', or a --manifest URL")
		}
		return nil
	}
	c.run = func(e *env, args []string) error {
		chip, err := cf.chip()
		if err != nil {
			return err
		}
		sub, rest := args[0], args[1:]
		switch sub {
		case "list":
			if len(rest) > 0 {
				return usagef("firmware list takes no arguments (use --chip to filter)")
			}
			return e.firmwareList(&ff, chip)
		case "fetch":
			if len(rest) != 1 {
				return usagef("firmware fetch needs one catalogue name (see 'tuyaflash firmware list')")
			}
			return e.firmwareFetch(&ff, chip, rest[0])
		case "verify":
			if len(rest) != 1 {
				return usagef("firmware verify needs one image file")
			}
			return e.firmwareVerify(&ff, chip, rest[0], sha)
		}
		return usagef("unknown firmware subcommand %q: want list, fetch or verify", sub)
	}
	return c
}

// listRow is one line of firmware list.
type listRow struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Version  string `json:"version"`
	Chip     string `json:"chip"`
	EfuseKey string `json:"efuse_key,omitempty"`
	Format   string `json:"format"`
	// Offset is where the file starts in flash, WrittenAt where writing
	// starts ("0x…"; "" for UF2, whose parts say where they go).
	Offset    string `json:"offset"`
	WrittenAt string `json:"written_at,omitempty"`
	Skip      int    `json:"skip,omitempty"`
	URL       string `json:"url,omitempty"`
	// Checksum is "catalogue", "pinned", "unpinned (moving)", "not yet
	// pinned" or "your file".
	Checksum string `json:"checksum"`
	SHA256   string `json:"sha256,omitempty"`
	Cached   bool   `json:"cached"`
	Title    string `json:"title,omitempty"`
}

type listDoc struct {
	header
	Firmware []listRow `json:"firmware"`
	// PinsFile holds the checksums pinned on first download.
	PinsFile string `json:"pins_file"`
}

func (e *env) firmwareList(ff *firmwareFlags, chip firmware.Chip) error {
	m, cache, err := ff.open(e)
	if err != nil {
		return err
	}
	pins, err := cache.Pins()
	if err != nil {
		return err
	}
	rows := []listRow{}
	for _, ch := range m.Fits(chip) {
		fw, b := ch.Firmware, ch.Build
		for i := range b.Parts {
			p := &b.Parts[i]
			r := listRow{Name: fw.Name, Kind: string(fw.Kind), Version: fw.Version, Chip: string(b.ChipFamily), EfuseKey: b.EfuseKey,
				Format: string(p.Format), Offset: backup.HexAddr(p.Offset), Skip: p.Skip, URL: m.Location(p), Title: fw.Title, SHA256: p.SHA256}
			if p.Format != firmware.FormatUF2 {
				r.WrittenAt = backup.HexAddr(p.Offset + uint32(p.Skip))
			}
			switch pin, pinned := pins[r.URL]; {
			case fw.UserFile:
				r.Checksum = "your file"
			case fw.Moving:
				r.Checksum = "unpinned (moving)"
			case p.SHA256 != "":
				r.Checksum = "catalogue"
			case pinned:
				r.Checksum, r.SHA256 = "pinned "+pin.PinnedAt.Format(time.DateOnly), pin.SHA256
			default:
				r.Checksum = "pinned on first download"
			}
			if r.URL != "" && strings.Contains(r.URL, "://") {
				_, err := os.Stat(cache.Path(r.URL))
				r.Cached = err == nil
			}
			rows = append(rows, r)
		}
	}
	e.emit(&listDoc{header: header{Command: "firmware list"}, Firmware: rows, PinsFile: cache.PinsPath()})
	if len(rows) == 0 {
		fmt.Fprintf(e.stdout, "the catalogue has nothing for a %s%s\n", chip.Family, keyText(chip.EfuseKey))
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tCHIP\tFORMAT\tWRITTEN AT\tCHECKSUM\tCACHED")
	for _, r := range rows {
		chipCol := r.Chip
		if r.EfuseKey != "" {
			chipCol += " (" + r.EfuseKey + " key)"
		}
		at := r.WrittenAt
		if at == "" {
			at = "from the file"
		}
		cached := "-"
		if r.Cached {
			cached = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, cmp.Or(r.Version, "-"), chipCol, r.Format, at, r.Checksum, cached)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nChecksums pinned on first download (%d): %s\n", len(pins), cache.PinsPath())
	fmt.Fprintf(e.stdout, "Write one with: tuyaflash write --port PORT --firmware NAME (the build for the detected chip is picked)\n")
	return nil
}

func keyText(k string) string {
	if k == "" {
		return ""
	}
	return " with the " + k + " eFuse key"
}

// fetchRow is firmware fetch's result for one file.
type fetchRow struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Chip      string `json:"chip"`
	EfuseKey  string `json:"efuse_key,omitempty"`
	URL       string `json:"url"`
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Status    string `json:"status"`
	FromCache bool   `json:"from_cache"`
	Resumed   int64  `json:"resumed_bytes"`
	PinnedAt  string `json:"pinned_at,omitempty"`
}

type fetchDoc struct {
	header
	Fetched []fetchRow `json:"fetched"`
}

func (e *env) firmwareFetch(ff *firmwareFlags, chip firmware.Chip, name string) error {
	m, cache, err := ff.open(e)
	if err != nil {
		return err
	}
	var choices []firmware.Choice
	if chip.Family != "" {
		ch, err := m.Lookup(name, chip)
		if err != nil {
			return err
		}
		choices = append(choices, ch)
	} else {
		for _, ch := range m.Fits(firmware.Chip{}) {
			if ch.Firmware.Name == strings.ToLower(name) {
				choices = append(choices, ch)
			}
		}
		if len(choices) == 0 {
			_, err := m.Lookup(name, chip)
			return err
		}
	}
	doc := &fetchDoc{header: header{Command: "firmware fetch"}, Fetched: []fetchRow{}}
	e.emit(doc)
	e.setState("interrupted while downloading %s: the part already downloaded is kept in the cache; run the same command again to resume", name)
	for _, ch := range choices {
		fw, b := ch.Firmware, ch.Build
		if fw.UserFile {
			return &flasher.HintError{Err: fmt.Errorf("%s is built for each device; there is nothing to download", fw.Name),
				Hint: "compile your device's YAML with ESPHome and pass the file: tuyaflash write --firmware path/to/firmware.bin (ESP8266) or firmware.uf2 (BK7231)"}
		}
		for i := range b.Parts {
			p := &b.Parts[i]
			loc := m.Location(p)
			if !strings.Contains(loc, "://") {
				return fmt.Errorf("%s %s is the local file %s; nothing to download", fw.Name, b.ChipFamily, loc)
			}
			fmt.Fprintf(e.stdout, "%s %s for %s%s: %s\n", fw.Name, fw.Version, b.ChipFamily, keyText(b.EfuseKey), loc)
			res, err := cache.Fetch(e.ctx, firmware.Request{URL: loc, SHA256: p.SHA256, Size: p.Size, Moving: fw.Moving, Format: p.Format, Label: fw.Name + " " + fw.Version})
			if err != nil {
				return err
			}
			row := fetchRow{Name: fw.Name, Version: fw.Version, Chip: string(b.ChipFamily), EfuseKey: b.EfuseKey, URL: res.URL, Path: res.Path,
				Size: res.Size, SHA256: res.SHA256, Status: string(res.Status), FromCache: res.FromCache, Resumed: res.Resumed}
			if !res.PinnedAt.IsZero() {
				row.PinnedAt = res.PinnedAt.UTC().Format(time.RFC3339)
			}
			doc.Fetched = append(doc.Fetched, row)
			e.printFetch(res, cache.PinsPath())
		}
	}
	return nil
}

func (e *env) printFetch(r *firmware.Result, pinsFile string) {
	from := "downloaded"
	if r.FromCache {
		from = "from the cache"
	} else if r.Resumed > 0 {
		from = fmt.Sprintf("downloaded (resumed after %d KiB)", r.Resumed/1024)
	}
	fmt.Fprintf(e.stdout, "  %s, %d bytes: %s\n  sha256 %s\n", from, r.Size, r.Path, r.SHA256)
	switch r.Status {
	case firmware.StatusVerified:
		fmt.Fprintf(e.stdout, "  checksum verified against the catalogue\n")
	case firmware.StatusPinned:
		fmt.Fprintf(e.stdout, "  %s\n", pinnedNowText(pinsFile))
	case firmware.StatusPinMatched:
		fmt.Fprintf(e.stdout, "  checksum matches the one pinned on its first download (%s, in %s)\n", r.PinnedAt.Format(time.DateOnly), pinsFile)
	case firmware.StatusUnpinned:
		fmt.Fprintf(e.stdout, "  UNPINNED: a moving 'latest' address; checked by content only, its checksum is not protected\n")
	}
}

// pinnedNowText tells that a download's checksum was pinned now, and where.
func pinnedNowText(pinsFile string) string {
	return "PINNED NOW: the catalogue gives no checksum for this file, so this download's sha256 is recorded in " + pinsFile + "; later downloads must match it (compare it with the project's release page)"
}

// detectionJSON is what an image file is, in firmware verify's document.
type detectionJSON struct {
	Format      string       `json:"format"`
	Description string       `json:"description"`
	Arch        string       `json:"arch,omitempty"`
	Family      string       `json:"family,omitempty"`
	Offset      string       `json:"offset"`
	Skip        int          `json:"skip"`
	Regions     []regionJSON `json:"regions,omitempty"`
	EfuseKey    string       `json:"efuse_key,omitempty"`
	BootKey     string       `json:"boot_key,omitempty"`
	Bootloader  string       `json:"bootloader,omitempty"`
	FlashMode   string       `json:"flash_mode,omitempty"`
	FlashSize   string       `json:"flash_size,omitempty"`
	Version     string       `json:"version,omitempty"`
	Gzip        bool         `json:"gzip"`
	SHA256      string       `json:"sha256"`
	Size        int          `json:"size"`
	Notes       []string     `json:"notes,omitempty"`
}

// regionJSON is one region of flash an image writes.
type regionJSON struct {
	Addr string `json:"addr"`
	End  string `json:"end"`
	Size int    `json:"size"`
	Part string `json:"part,omitempty"`
}

func regionsJSON(rs []firmware.Region) []regionJSON {
	var out []regionJSON
	for _, r := range rs {
		n := max(r.Size, len(r.Data))
		out = append(out, regionJSON{Addr: backup.HexAddr(r.Addr), End: backup.HexAddr(r.Addr + uint32(n) - 1), Size: n, Part: r.Part})
	}
	return out
}

func detectionDoc(d *firmware.Detection) *detectionJSON {
	if d == nil {
		return nil
	}
	j := &detectionJSON{Format: string(d.Format), Description: d.Describe(), Arch: string(d.Arch), Family: string(d.Family),
		Offset: backup.HexAddr(d.Offset), Skip: d.Skip, Regions: regionsJSON(d.Regions), EfuseKey: d.Key, BootKey: d.BootKey,
		Bootloader: d.Bootloader, FlashSize: d.FlashSize, Version: d.Version, Gzip: d.Compressed, SHA256: d.SHA256, Size: d.Size, Notes: d.Notes}
	if d.FlashMode != nil {
		j.FlashMode = d.FlashMode.String()
	}
	return j
}

// placementJSON is where an image would be written on a chip.
type placementJSON struct {
	Chip    string       `json:"chip"`
	Regions []regionJSON `json:"regions"`
	Skip    int          `json:"skip"`
	Patched bool         `json:"patched"`
	Notes   []string     `json:"notes,omitempty"`
}

type verifyFileDoc struct {
	header
	File      string         `json:"file"`
	Detection *detectionJSON `json:"detection,omitempty"`
	Placement *placementJSON `json:"placement,omitempty"`
	Catalogue string         `json:"catalogue,omitempty"`
	// PinsFile holds the checksums pinned on first download.
	PinsFile string `json:"pins_file,omitempty"`
}

func (e *env) firmwareVerify(ff *firmwareFlags, chip firmware.Chip, file, want string) error {
	doc := &verifyFileDoc{header: header{Command: "firmware verify"}, File: file}
	e.emit(doc)
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	m, cache, err := ff.open(e)
	if err != nil {
		return err
	}
	det, verr := firmware.Detect(data, file)
	if det == nil {
		return verr
	}
	if verr == nil {
		verr = det.CheckSHA256(want)
	}
	doc.Detection, doc.Catalogue, doc.PinsFile = detectionDoc(det), catalogueMatch(m, cache, det.SHA256), cache.PinsPath()
	var place *firmware.Placement
	if verr == nil && chip.Family != "" {
		info := firmware.PrecheckInfo(chip.Family)
		info.EfuseKey = chip.EfuseKey
		place, verr = firmware.Place(info, det, firmware.PlaceOptions{})
		if place != nil {
			doc.Placement = &placementJSON{Chip: string(chip.Family), Regions: regionsJSON(place.Regions), Skip: place.Skip, Patched: place.Patched, Notes: place.Notes}
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "File:\t%s (%d bytes)\n", file, det.Size)
	fmt.Fprintf(tw, "sha256:\t%s\n", det.SHA256)
	fmt.Fprintf(tw, "Content:\t%s\n", det.Describe())
	if det.Version != "" {
		fmt.Fprintf(tw, "Version:\t%s\n", det.Version)
	}
	if doc.Catalogue != "" {
		fmt.Fprintf(tw, "Catalogue:\t%s\n", doc.Catalogue)
	}
	for _, n := range det.Notes {
		fmt.Fprintf(tw, "Note:\t%s\n", n)
	}
	if p := place; p != nil {
		for _, r := range p.Regions {
			fmt.Fprintf(tw, "On a %s:\t%d bytes at 0x%06X-0x%06X\n", chip.Family, len(r.Data), r.Addr, r.Addr+uint32(len(r.Data))-1)
		}
		for _, n := range p.Notes {
			fmt.Fprintf(tw, "\t%s\n", n)
		}
	}
	fmt.Fprintf(tw, "Pinned checksums:\t%s\n", cache.PinsPath())
	tw.Flush()
	if verr == nil && want != "" {
		fmt.Fprintln(e.stdout, "sha256 matches --sha256")
	}
	return verr
}

// catalogueMatch names the catalogue entry or cache pin whose checksum is
// sha ("" when none is).
func catalogueMatch(m *firmware.Manifest, cache *firmware.Cache, sha string) string {
	pins, _ := cache.Pins()
	for _, ch := range m.Fits(firmware.Chip{}) {
		for i := range ch.Build.Parts {
			p := &ch.Build.Parts[i]
			pin, ok := pins[m.Location(p)]
			switch {
			case p.SHA256 == sha:
				return fmt.Sprintf("%s %s for %s (checksum from the catalogue)", ch.Firmware.Name, ch.Firmware.Version, ch.Build.ChipFamily)
			case ok && pin.SHA256 == sha && !ch.Firmware.Moving:
				return fmt.Sprintf("%s %s for %s (checksum pinned %s in %s)", ch.Firmware.Name, ch.Firmware.Version, ch.Build.ChipFamily, pin.PinnedAt.Format(time.DateOnly), cache.PinsPath())
			}
		}
	}
	return ""
}
