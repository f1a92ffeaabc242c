package result

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden pins every output format byte for byte: the files under
// testdata/ are what users' scripts parse. Run with -update after an
// intended change and review the diff.
func TestGolden(t *testing.T) {
	rs := sampleRecords()
	names := map[string]string{"ams": "Amsterdam, NL", "fra": "Frankfurt am Main, DE"}
	formats := []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"records.json", func(b *bytes.Buffer) error { return WriteJSON(b, rs) }},
		{"records.ndjson", func(b *bytes.Buffer) error {
			nw := NewNDJSONWriter(b)
			for i := range rs {
				if err := nw.Write(&rs[i]); err != nil {
					return err
				}
			}
			return nil
		}},
		{"records.csv", func(b *bytes.Buffer) error {
			cw := NewCSVWriter(b)
			for i := range rs {
				if err := cw.Write(&rs[i]); err != nil {
					return err
				}
			}
			return cw.Flush()
		}},
		{"records.table.txt", func(b *bytes.Buffer) error {
			return WriteTable(b, rs, func(code string) string { return names[code] })
		}},
	}
	for _, f := range formats {
		t.Run(f.file, func(t *testing.T) {
			var got bytes.Buffer
			if err := f.write(&got); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", f.file)
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s changed (go test -update if intended):\n got:\n%s\nwant:\n%s", path, got.Bytes(), want)
			}
		})
	}
}
