package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spool/spooltest"
)

// realistic is a result record the size of a real DNS measurement's.
func realistic(i int) result.Record {
	return result.Record{ID: fmt.Sprintf("019ae5c4-%04x-7000-8000-%012d", i%0x10000, i),
		Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), Probe: "vps-fra-1.example.net", Target: "k-root",
		Method: result.MethodDNS, AF: 4, Addr: "193.0.14.129", Identity: "ns1.fra.k.ripe.net", Site: "fra", RTTMs: 12.345678,
		DNS: &result.DNS{QName: "hostname.bind.", QClass: "CH", QType: "TXT", Rcode: "NOERROR", NSID: "ns1.fra.k.ripe.net", Size: 97}}
}

// newestRun checks that recs are the last len(recs) of the n records put
// by number, in order.
func newestRun(t *testing.T, recs []result.Record, n int) {
	t.Helper()
	for i, r := range recs {
		if want := realistic(n - len(recs) + i).ID; r.ID != want {
			t.Fatalf("record %d of %d kept is %s, want %s: not the newest, in order", i, len(recs), r.ID, want)
		}
	}
}

// TestTmpfsFill fills a 2 MiB tmpfs with results, one a Put as the agent
// puts them, stopped by the spool's bound or by the disk: once full, at
// least 90% of the disk holds records, after every Put, and every record
// acknowledged is kept or counted as dropped, the oldest first.
func TestTmpfsFill(t *testing.T) {
	const disk = 2 << 20
	for _, tc := range []struct {
		name, why string
		maxBytes  int64
	}{
		{"bound", "why.spool_full=", disk},
		{"enospc", "why.disk_full=", DefaultMaxBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := spooltest.Tmpfs(t, disk)
			s, logs := openLogged(t, dir, Options{MaxBytes: tc.maxBytes})
			rs := Results(s)
			r := realistic(0)
			one, _ := JSON[result.Record]{}.Encode(&r)
			puts := 3 * disk / len(one)
			least := 1.0
			for i := range puts {
				if err := rs.Put([]result.Record{realistic(i)}); err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
				if value(rs.dropped) > 0 {
					least = min(least, float64(rs.Bytes())/disk)
				}
			}
			if value(rs.dropped) == 0 {
				t.Fatalf("%d puts did not fill the disk", puts)
			}
			if !strings.Contains(logs.String(), tc.why) {
				t.Fatalf("no drop logged with %s: %s", tc.why, logs)
			}
			if least < 0.9 {
				t.Fatalf("once full, records took as little as %.1f%% of the disk", 100*least)
			}
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				t.Fatal(err)
			}
			if used := int64(st.Blocks-st.Bfree) * st.Bsize; used > tc.maxBytes || used > rs.DiskBytes()+rs.block {
				t.Fatalf("the filesystem says %d bytes used; the spool counts %d", used, rs.DiskBytes())
			}
			kept, bytes := rs.Len(), rs.Bytes()
			if got := value(rs.dropped) + float64(kept); got != float64(puts) {
				t.Fatalf("kept %d and dropped %v of %d acknowledged", kept, value(rs.dropped), puts)
			}
			_ = rs.Close()

			// Read back as a restart would: all there, nothing damaged.
			rs2 := Results(open(t, dir, tc.maxBytes))
			b, err := rs2.Peek(puts)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Records) != kept || rs2.Bytes() != bytes {
				t.Fatalf("reopened: %d records, %d bytes; had %d, %d", len(b.Records), rs2.Bytes(), kept, bytes)
			}
			newestRun(t, b.Records, puts)
			if err := rs2.Ack(b); err != nil {
				t.Fatal(err)
			}
			if value(rs2.corrupt) != 0 {
				t.Fatalf("%v damaged spans after filling the disk", value(rs2.corrupt))
			}
			t.Logf("%d records of %d bytes held on a %d-byte disk (%.1f%%, at least %.1f%% once full); %d puts",
				kept, bytes, disk, 100*float64(bytes)/disk, 100*least, puts)
		})
	}
}

// TestDiskFullOfOtherFiles: when another file fills the disk, the spool
// recycles its own space, oldest first; with nothing of its own left, Put
// fails and counts the records, and works again once there is room.
func TestDiskFullOfOtherFiles(t *testing.T) {
	dir := spooltest.Tmpfs(t, 256<<10)
	rs := Results(open(t, dir, 0))
	n := 0
	put := func() error {
		err := rs.Put([]result.Record{realistic(n)})
		n++
		return err
	}
	for range 100 {
		if err := put(); err != nil {
			t.Fatal(err)
		}
	}
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	for i := range 1000 {
		if err := put(); err != nil {
			t.Fatalf("put %d on a disk full of another file: %v (should drop the oldest instead)", i, err)
		}
	}
	if value(rs.dropped) == 0 {
		t.Fatal("nothing dropped on a full disk")
	}
	b, err := rs.Peek(n)
	if err != nil {
		t.Fatal(err)
	}
	newestRun(t, b.Records, n)
	if float64(len(b.Records))+value(rs.dropped) != float64(n) {
		t.Fatalf("kept %d, dropped %v of %d acknowledged", len(b.Records), value(rs.dropped), n)
	}
	if err := rs.Ack(b); err != nil {
		t.Fatal(err)
	}

	// The spool is empty; take what its segments freed too.
	fill(t, filler)
	dropped := value(rs.dropped)
	if err := put(); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk is full of other files") {
		t.Fatalf("Put on a full disk with an empty spool: %v", err)
	}
	if value(rs.dropped) != dropped+1 {
		t.Fatal("the record a failed Put lost is not counted")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := put(); err != nil {
		t.Fatalf("Put once the disk has room again: %v", err)
	}
	_ = rs.Close()
	rs2 := Results(open(t, dir, 0))
	b, err = rs2.Peek(n)
	if err != nil || len(b.Records) != 1 || b.Records[0].ID != realistic(n-1).ID {
		t.Fatalf("reopened: %v, %v; want the last record alone", b, err)
	}
	if err := rs2.Ack(b); err != nil || value(rs2.corrupt) != 0 {
		t.Fatalf("ack %v, %v damaged spans: failed writes left damage behind", err, value(rs2.corrupt))
	}
}

// TestFailedAppendLeavesNoDamage: an append that the full disk cuts short
// is cut off the segment, so that nothing damaged is read after a restart.
func TestFailedAppendLeavesNoDamage(t *testing.T) {
	dir := spooltest.Tmpfs(t, 1<<20) // 16 KiB segments
	s := open(t, dir, 0)
	for i := range 6 { // five fill the first segment, the sixth starts the second
		mustPut(t, s, raws(1, fmt.Sprint("a", i), 3000))
	}
	if n := len(files(t, dir)); n != 2 {
		t.Fatalf("%d segments, want 2", n)
	}
	fill(t, filepath.Join(dir, "filler"))
	// The append fills the second segment's first page, then needs another.
	mustPut(t, s, raws(1, "b", 3000))
	if value(s.dropped) != 5 {
		t.Fatalf("dropped %v, want the 5 records of the first segment", value(s.dropped))
	}
	s2, b := restart(t, s)
	if got := names(b.Records); got != "a5-0000,b-0000" {
		t.Fatalf("after the restart: %s", got)
	}
	mustAck(t, s2, b)
	if n := value(s2.corrupt); n != 0 {
		t.Fatalf("%v damaged spans: the failed append was left in the segment", n)
	}
}

// fill appends to path until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestKill9 SIGKILLs a process that puts records, and reads its spool:
// every record whose Put returned is there.
func TestKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SPOOL_KILL9_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		i, err := strconv.Atoi(sc.Text())
		if err != nil {
			continue // go test's own output
		}
		acked = i
		if i == 300 { // past a few segment rolls: 8 KiB records, 1 MiB segments
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = cmd.Wait()
	if acked < 300 {
		t.Fatalf("the child acknowledged only %d records", acked)
	}
	s := open(t, dir, 0)
	b := mustPeek(t, s, 1<<20)
	if len(b.Records) <= acked {
		t.Fatalf("%d records in the spool, %d acknowledged", len(b.Records), acked+1)
	}
	for i, r := range b.Records {
		if want := fmt.Sprintf("k%d-0000", i); names([][]byte{r}) != want {
			t.Fatalf("record %d is %.12s, want %s", i, r, want)
		}
	}
	t.Logf("%d acknowledged, %d in the spool", acked+1, len(b.Records))
}

// TestKill9Child is the process TestKill9 kills.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv("SPOOL_KILL9_DIR")
	if dir == "" {
		t.Skip("only runs as TestKill9's child")
	}
	s, err := Open(quiet(), prometheus.NewRegistry(), dir, Options{Subsystem: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// Bounded in case the parent dies before killing it.
	for i := range 100000 {
		if err := s.Put(raws(1, fmt.Sprint("k", i), 8<<10)); err != nil {
			t.Fatal(err)
		}
		fmt.Println(i)
	}
}

// TestPermissions: whatever the umask, the spool's directory is the
// owner's alone, and so is every file in it.
func TestPermissions(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	dir := filepath.Join(t.TempDir(), "spool")
	rs := Results(open(t, dir, 0))
	if err := rs.Put(results(3, "p")); err != nil {
		t.Fatal(err)
	}
	b, err := rs.Peek(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Ack(b); err != nil { // writes the cursor
		t.Fatal(err)
	}
	if err := rs.Quarantine(results(1, "q"), "400 bad batch"); err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = fs.ModeDir | 0o700
		}
		if info.Mode() != want {
			t.Errorf("%s is %v, want %v", path, info.Mode(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // the directory, a segment, the cursor, the quarantine file
		t.Fatalf("checked %d entries, want 4", n)
	}
}

// TestOldSpool: an agent upgraded in place takes up the spool its older
// version left (testdata/oldspool was written by it: one NDJSON file per
// Put), hands it out first, and deletes it once acked.
func TestOldSpool(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/oldspool")); err != nil {
		t.Fatal(err)
	}
	// A Put torn by a crash of the old agent, and its temporary file.
	torn := `{"id":"old-3-0","time":"2026-01-02T03:04:05Z","method":"dns"}` + "\n" + `{"id":"old-3-1","ti`
	for name, data := range map[string]string{"0000000000000003-2.ndjson": torn, ".tmp-123456": `{"id":"x"`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rs := Results(open(t, dir, 0))
	if rs.Len() != 8 {
		t.Fatalf("Len = %d, want the 8 records the file names count", rs.Len())
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123456")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temp file of an interrupted Put survived Open: %v", err)
	}
	b, err := rs.Peek(4)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(b.Records); got != "old-0-0,old-1-0,old-1-1,old-2-0" {
		t.Fatalf("first batch = %s", got)
	}
	if b.Records[3].Site != "fra" || b.Records[3].RTTMs != 12.5 {
		t.Fatalf("old record read as %+v", b.Records[3])
	}
	if err := rs.Ack(b); err != nil {
		t.Fatal(err)
	}
	_ = rs.Close()

	// Restarted once more, partway through an old file.
	rs2 := Results(open(t, dir, 0))
	if rs2.Len() != 4 {
		t.Fatalf("Len after restart = %d, want 4", rs2.Len())
	}
	if err := rs2.Put(results(2, "new")); err != nil {
		t.Fatal(err)
	}
	b, err = rs2.Peek(100)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(b.Records); got != "old-2-1,old-2-2,old-3-0,new-0000,new-0001" {
		t.Fatalf("after restart = %s", got)
	}
	if err := rs2.Ack(b); err != nil {
		t.Fatal(err)
	}
	if value(rs2.corrupt) != 1 {
		t.Fatalf("damage counted %v, want 1: the torn line", value(rs2.corrupt))
	}
	if f := files(t, dir); len(f) != 0 || rs2.Len() != 0 {
		t.Fatalf("left after acking all: %v, Len %d", f, rs2.Len())
	}
}
