package catcher

import (
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/payload"
)

func someReplies(id payload.ID, n int, base string) []control.Reply {
	rs := make([]control.Reply, n)
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for i := range rs {
		a := netip.MustParseAddr(base).As4()
		a[2] = byte(i)
		to := netip.AddrFrom4(a)
		rs[i] = control.Reply{Sweep: id, Class: control.Caught, Target: to, From: to, Sender: "ams",
			Sent: t0.Add(time.Duration(i) * time.Millisecond), Received: t0.Add(time.Duration(i)*time.Millisecond + 20*time.Millisecond)}
	}
	return rs
}

func keptOf(t *testing.T, s Store, id payload.ID) []control.Reply {
	t.Helper()
	var rs []control.Reply
	if err := s.Replies(id, func(r control.Reply) error { rs = append(rs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestStores: both stores keep each sweep's replies in order, hand them
// out as often as asked, and forget a sweep whole.
func TestStores(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) Store{
		"memory": func(*testing.T) Store { return NewMemStore(1000) },
		"spool": func(t *testing.T) Store {
			s, err := NewSpoolStore(slog.New(slog.DiscardHandler), t.TempDir(), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			a, b := payload.NewID(), payload.NewID()
			ra, rb := someReplies(a, 5, "10.1.0.1"), someReplies(b, 3, "10.2.0.1")
			if err := s.Append(append(ra[:3:3], rb...)); err != nil {
				t.Fatal(err)
			}
			if err := s.Append(ra[3:]); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if got := keptOf(t, s, a); !reflect.DeepEqual(got, ra) {
					t.Fatalf("sweep a: %+v\nwant %+v", got, ra)
				}
			}
			if got := keptOf(t, s, b); !reflect.DeepEqual(got, rb) {
				t.Fatalf("sweep b: %+v", got)
			}
			if err := s.Forget(a); err != nil {
				t.Fatal(err)
			}
			if got := keptOf(t, s, a); len(got) != 0 {
				t.Errorf("forgotten sweep still holds %d replies", len(got))
			}
			if got := keptOf(t, s, b); len(got) != 3 {
				t.Errorf("the other sweep lost replies: %d", len(got))
			}
			stop := errors.New("stop")
			if err := s.Replies(b, func(control.Reply) error { return stop }); !errors.Is(err, stop) {
				t.Errorf("fn's error: %v", err)
			}
		})
	}
}

// TestSpoolStoreRestart: replies spooled before a catcher stops are there
// after it starts again, for the driver to collect.
func TestSpoolStoreRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSpoolStore(slog.New(slog.DiscardHandler), dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	id := payload.NewID()
	rs := someReplies(id, 4, "10.3.0.1")
	if err := s.Append(rs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again, err := NewSpoolStore(slog.New(slog.DiscardHandler), dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := keptOf(t, again, id); !reflect.DeepEqual(got, rs) {
		t.Fatalf("after a restart: %+v", got)
	}
}
