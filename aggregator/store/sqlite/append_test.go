package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/probe/result"
)

// TestAppendBatches: the new records are counted per batch across the
// many-row and one-row statements (the conformance suite has the rest).
func TestAppendBatches(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	ctx := context.Background()
	old := batch("old", 3)
	if n, err := s.Append(ctx, old); err != nil || n != 3 {
		t.Fatalf("append: %d, %v", n, err)
	}
	a := batch("a", 2*rowsPerInsert+7)                    // two many-row statements and 7 single rows
	b := append(batch("b", 4), a[0], old[1], a[len(a)-1]) // 4 new, 3 stored before or earlier in the call
	b = append(b, batch("c", rowsPerInsert)...)           // ends on a full statement
	stored, err := s.AppendBatches(ctx, [][]result.Record{a, nil, b})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{len(a), 0, 4 + rowsPerInsert}; !slices.Equal(stored, want) {
		t.Errorf("stored %v, want %v", stored, want)
	}
	if n, want := count(t, s), 3+len(a)+4+rowsPerInsert; n != want {
		t.Errorf("%d rows, want %d", n, want)
	}
	// Every column of a record in a many-row statement lands in its row.
	var got result.Record
	err = s.Scan(ctx, store.Query{Target: a[rowsPerInsert+1].Target}, func(r *result.Record) error {
		if r.ID == a[rowsPerInsert+1].ID {
			got = *r
		}
		return nil
	})
	if err != nil || got.ID == "" || got.Site != a[rowsPerInsert+1].Site || !got.Time.Equal(a[rowsPerInsert+1].Time) {
		t.Errorf("record read back: %+v, %v", got, err)
	}
}
