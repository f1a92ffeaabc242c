package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/catchmap/catchmap/maps"
	"github.com/catchmap/catchmap/probe/result"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// takeFile snapshots the fixed record set.
func takeFile(t *testing.T, path string, opts maps.Options) (*Snapshot, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Take(opts, func(fn func(*result.Record) error) error { return result.ReadNDJSON(f, fn) })
}

func TestSnapshotGolden(t *testing.T) {
	s, err := takeFile(t, "testdata/records.ndjson", maps.Options{Target: "ns.example", Res: 3})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "snapshot.golden.json", buf.Bytes())

	// Facts of the record set, so the golden file is not trusted blindly.
	if s.Version != 1 || s.Target != "ns.example" || s.ProbeCount != 10 || s.Served != 10 || s.Results != 22 {
		t.Errorf("version %d target %q probes %d served %d results %d; want 1 ns.example 10 10 22",
			s.Version, s.Target, s.ProbeCount, s.Served, s.Results)
	}
	if want := round6(1.0 / 22); s.ErrorShare != want {
		t.Errorf("error share = %v, want %v", s.ErrorShare, want)
	}
	ber := s.Probes[slices.IndexFunc(s.Probes, func(p SnapshotProbe) bool { return p.ID == "p-ber1" })]
	if ber.Site != "fra" || ber.Country != "DE" || ber.Cell == "" || *ber.RTTMs != 11.5 {
		t.Errorf("p-ber1 = %+v, want fra, DE, a cell, median 11.5 ms", ber)
	}

	// Every line of the file is one key or one list element, keys sorted.
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var top []string
	for _, l := range lines[1 : len(lines)-1] {
		if strings.HasPrefix(l, `  "`) {
			top = append(top, strings.SplitN(l, `"`, 3)[1])
		}
		if strings.HasPrefix(l, "    {") {
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimSpace(l), ",")), &m); err != nil {
				t.Errorf("list line %q is not one object: %v", l, err)
			}
		}
	}
	if !slices.IsSorted(top) || len(top) != 13 {
		t.Errorf("top-level keys %v: want the 13 keys sorted", top)
	}

	back, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("snapshot does not survive a write and read:\n got %+v\nwant %+v", back, s)
	}
}

func TestTakeErrors(t *testing.T) {
	if _, err := takeFile(t, "testdata/records.ndjson", maps.Options{}); err == nil || !strings.Contains(err.Error(), "--target") {
		t.Errorf("two targets without a choice: err = %v, want a hint at --target", err)
	}
	if _, err := takeFile(t, "testdata/records.ndjson", maps.Options{Target: "nope.example"}); !errors.Is(err, ErrNoResults) {
		t.Errorf("unknown target: err = %v, want ErrNoResults", err)
	}
	if _, err := takeFile(t, "testdata/records.ndjson", maps.Options{Target: "ns.example", Res: 9}); err == nil {
		t.Error("resolution 9 accepted")
	}
	if _, err := FromCatchment(&maps.Catchment{By: maps.ByCountry}); err == nil {
		t.Error("a catchment by country made a snapshot")
	}
}

func TestReadSnapshotErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[]`, "not a snapshot"},
		{`{"target": "x"}`, `it has no "version"`},
		{`{"version": 2}`, "snapshot version 2 is unknown to this catchmap (it reads version 1)"},
		{`{"version": 1, "colour": "red"}`, `unknown field "colour"`},
		{`{"version": 1, "resolution": 12}`, "resolution 12 is out of range"},
		{`{"version": 1, "error_share": 2}`, "error_share 2 is not a share"},
		{`{"version": 1, "probes": [{"id": "a"}, {"id": "a"}]}`, `probe "a" twice`},
		{`{"version": 1, "probes": [{"id": "a", "lat": 1}]}`, "lat or lon but not both"},
		{`{"version": 1, "probes": [{"id": ""}]}`, "no id"},
		{`{"version": 1, "sites": [{"site": "ams", "share": -1}]}`, "share of site ams"},
	} {
		_, err := ReadSnapshot(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadSnapshot(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func FuzzReadSnapshot(f *testing.F) {
	b, err := os.ReadFile("testdata/snapshot.golden.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What reads must write and read again the same.
		var buf bytes.Buffer
		if err := s.Write(&buf); err != nil {
			t.Fatalf("write: %v", err)
		}
		first := bytes.Clone(buf.Bytes())
		back, err := ReadSnapshot(&buf)
		if err != nil {
			t.Fatalf("re-read of\n%s\nfailed: %v", first, err)
		}
		var again bytes.Buffer
		if err := back.Write(&again); err != nil || !bytes.Equal(again.Bytes(), first) {
			t.Fatalf("not stable: %v\n%s\n%s", err, first, again.Bytes())
		}
	})
}
