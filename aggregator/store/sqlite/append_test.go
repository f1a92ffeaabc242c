package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/probe/result"
)

// TestAppendBatches: one transaction for several batches, with the new
// records counted per batch, across the many-row and one-row statements.
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

	if stored, err := s.AppendBatches(ctx, [][]result.Record{nil, {}}); err != nil || !slices.Equal(stored, []int{0, 0}) {
		t.Errorf("empty batches: %v, %v", stored, err)
	}
}

// TestAppendBatchesAllOrNothing: a bad record anywhere stores nothing.
func TestAppendBatchesAllOrNothing(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catchmap.db"))
	defer s.Close()
	bad := batch("bad", 2)
	bad[1].ID = ""
	_, err := s.AppendBatches(context.Background(), [][]result.Record{batch("good", 60), bad})
	if err == nil || !strings.Contains(err.Error(), "batch 1, record 1 has no id") {
		t.Errorf("error %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AppendBatches(ctx, [][]result.Record{batch("late", 60)}); err == nil {
		t.Error("a cancelled append succeeded")
	}
	if n := count(t, s); n != 0 {
		t.Errorf("%d rows stored by failed appends", n)
	}
}
