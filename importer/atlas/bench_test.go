package atlas

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

const (
	benchResults = 1_000_000
	benchProbes  = 20_000 // about as many as Atlas has connected
)

// writeBenchFile writes n results as NDJSON: the fixtures, with successful
// CHAOS answers weighted to half as in a real root measurement, from
// benchProbes probes.
func writeBenchFile(b *testing.B, path string, n int) {
	fs := fixtures(b)
	mix := append([]fixture{}, fs...)
	for range len(fs) {
		mix = append(mix, fs[0])
	}
	// Each template is cut around its probe id, which changes per line.
	type tmpl struct{ pre, post []byte }
	var ts []tmpl
	for _, f := range mix {
		line := lines(b, []fixture{f})
		key := []byte(`"prb_id":` + strconv.FormatInt(f.res["prb_id"].(int64), 10))
		i := bytes.Index(line, key)
		if i < 0 {
			b.Fatalf("no prb_id in %s", line)
		}
		ts = append(ts, tmpl{line[:i+len(`"prb_id":`)], line[i+len(key):]})
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		t := ts[i%len(ts)]
		w.Write(t.pre)
		w.WriteString(strconv.Itoa(100000 + i%benchProbes))
		w.Write(t.post)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkImport1M reads a file of a million results into records (no
// store) and reports the rate and the peak heap, which must stay flat
// whatever the file's size.
func BenchmarkImport1M(b *testing.B) {
	path := filepath.Join(b.TempDir(), "results.ndjson")
	writeBenchFile(b, path, benchResults)
	st, _ := os.Stat(path)
	id, err := spec.NewIdentifier(&spec.Spec{Method: result.MethodDNS, Preset: "k-root"})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	var total int
	var took, cpu time.Duration
	for b.Loop() {
		c, err := NewConverter(Options{Ident: id})
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		start, cpu0 := time.Now(), cpuTime()
		rd, err := NewReader(f)
		if err != nil {
			b.Fatal(err)
		}
		records := 0
		for {
			res, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Convert(res, func(*result.Record) error { records++; return nil }); err != nil {
				b.Fatal(err)
			}
			if rd.Count()%50_000 == 0 {
				sample()
			}
		}
		took += time.Since(start)
		cpu += cpuTime() - cpu0
		total += rd.Count()
		f.Close()
		if rd.Count() != benchResults {
			b.Fatalf("%d results read, want %d", rd.Count(), benchResults)
		}
	}
	b.ReportMetric(float64(total)/took.Seconds(), "results/s")
	// The machine may be shared: CPU time per result says what a core
	// to itself would do.
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/result")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(st.Size())/(1<<20), "file-MB")
}
