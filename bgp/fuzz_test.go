package bgp

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/catchmap/catchmap/api"
)

// FuzzMRT feeds arbitrary bytes to the MRT import: it must never panic or
// hang, and every event must be well formed and about an anycast prefix.
// Seeds are in testdata/fuzz/FuzzMRT (go test -run TestFuzzSeeds -update
// rewrites the generated ones).
func FuzzMRT(f *testing.F) {
	f.Add(updatesMRT(f))
	f.Add(addPathMRT(f))
	ps := anycast(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ReadMRT(context.Background(), bytes.NewReader(data), ps, func(e api.Event) error {
			if e.Kind != api.EventAnnounce && e.Kind != api.EventWithdraw {
				t.Fatalf("event kind %q", e.Kind)
			}
			if e.Prefix != "192.0.2.0/24" && e.Prefix != "2001:db8:53::/48" {
				t.Fatalf("event for %q, not an anycast prefix", e.Prefix)
			}
			if e.ID == "" || e.Source != api.SourceMRT || e.Time.IsZero() {
				t.Fatalf("event %+v lacks id, source or time", e)
			}
			if _, err := netip.ParseAddr(e.Peer); err != nil && e.Peer != "" {
				t.Fatalf("event peer %q: %v", e.Peer, err)
			}
			return nil
		})
	})
}

// TestFuzzSeeds writes the generated seeds with -update: the whole update
// files, and each of their records alone.
func TestFuzzSeeds(t *testing.T) {
	if !*updateFiles {
		t.Skip("run with -update to rewrite the generated FuzzMRT seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzMRT")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{"empty": {}, "gzip_header": {0x1f, 0x8b, 8, 0}}
	for prefix, data := range map[string][]byte{"": updatesMRT(t), "addpath_": addPathMRT(t)} {
		seeds[prefix+"updates"] = data
		for i, r := range mrtRecords(data) {
			seeds[fmt.Sprintf("%srecord_%d", prefix, i+1)] = slices.Clone(r)
		}
	}
	for name, b := range seeds {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
