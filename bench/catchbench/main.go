// Command catchbench is the Go side of the benchmarks in bench/: a loopback
// DNS server for dnsperf and catchmap to share, and drivers that run
// catchmap's dns method and ICMP sweep the way the scripts time them.
//
//	catchbench serve -addr-file F [-for 2m]       serve DNS on 127.0.0.1, write the address to F
//	catchbench dns -server ADDR [-for 10s] [-c 100]  run the dns method in a loop, print queries/s
//	catchbench sweep -list FILE [-interval 1ms]   sweep the addresses in FILE, print wall time
//
// It refuses any address outside 127.0.0.0/8 and ::1: benchmarks stay on
// loopback.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/catchmap/catchmap/probe"
	"github.com/catchmap/catchmap/probe/result"
	"github.com/catchmap/catchmap/probe/spec"
)

// Benchmark question: dnsperf sends class IN only, so both tools ask this.
const (
	benchQName    = "id.bench.test."
	benchIdentity = "bench1.lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "catchbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: catchbench serve|dns|sweep [flags]")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout)
	case "dns":
		return driveDNS(ctx, args[1:], stdout)
	case "sweep":
		return sweep(ctx, args[1:], stdout)
	}
	return fmt.Errorf("unknown command %q: use serve, dns or sweep", args[0])
}

// serve answers TXT for every name, in the question's class (so IN for
// dnsperf and CH for a default catchmap query alike), echoing EDNS. It is
// not internal/responder, which answers CHAOS only, but does the same work
// per query: parse, build one TXT answer, pack.
func serve(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addrFile := fs.String("addr-file", "", "write the server's address to this file once it serves")
	lifetime := fs.Duration("for", 2*time.Minute, "stop after this long, in case the script that started it dies")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("serve: listen on loopback UDP: %w", err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(answerTXT), NotifyStartedFunc: func() { close(started) }}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		return fmt.Errorf("serve: DNS server did not start: %w", err)
	}
	addr := pc.LocalAddr().String()
	if *addrFile != "" {
		// Written then renamed, so a polling script never reads half a line.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	fmt.Fprintln(stdout, addr)
	ctx, cancel := context.WithTimeout(ctx, *lifetime)
	defer cancel()
	select {
	case <-ctx.Done():
	case err := <-done:
		return fmt.Errorf("serve: DNS server stopped: %w", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return srv.ShutdownContext(sctx)
}

func answerTXT(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if len(req.Question) == 1 && req.Question[0].Qtype == dns.TypeTXT {
		q := req.Question[0]
		resp.Answer = []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: q.Qclass},
			Txt: []string{benchIdentity},
		}}
	} else {
		resp.Rcode = dns.RcodeRefused
	}
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(1232, false)
	}
	_ = w.WriteMsg(resp)
}

// driveDNS runs catchmap's dns method (the whole Measure path: spec checks,
// identifier, a socket from the Measurer's pool, the record) from c workers
// for a fixed time and prints answered queries per second. One Measurer
// serves all workers, as in `catchmap measure`.
func driveDNS(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	server := fs.String("server", "", "loopback DNS server address, host:port")
	dur := fs.Duration("for", 10*time.Second, "how long to send queries")
	conc := fs.Int("c", 100, "concurrent measurements (dnsperf keeps 100 queries outstanding by default)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(*server)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("dns: -server %q: want a loopback address and port such as 127.0.0.1:5353", *server)
	}
	if *conc < 1 || *dur <= 0 {
		return errors.New("dns: -c and -for must be positive")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("dns: -cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("dns: -cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	m := probe.NewMeasurer(slog.New(slog.DiscardHandler))
	defer m.Close()
	sp := spec.Spec{Target: ap.String(), Method: result.MethodDNS, QName: benchQName, QClass: "IN", QType: "TXT",
		Timeout: spec.Duration(2 * time.Second)}
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr sync.Once
	var errText string
	start := time.Now()
	// A query cut short by the end of the run is not a failure. The
	// socket's deadline can fire before ctx.Err() turns non-nil, so the
	// clock decides, against the very deadline the socket was given (a
	// time taken after the context was made would be a little later, and
	// count a query cut short in between as failed).
	end, _ := ctx.Deadline()
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				rs, err := m.Measure(ctx, sp)
				if err != nil {
					firstErr.Do(func() { errText = err.Error() })
					failed.Add(1)
					continue
				}
				for _, r := range rs {
					switch {
					case r.OK() && r.Identity == benchIdentity:
						ok.Add(1)
					case time.Now().Before(end): // not cut short by the end of the run
						failed.Add(1)
						firstErr.Do(func() { errText = string(r.ErrorKind) + ": " + r.Error })
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "answered %d failed %d seconds %.3f qps %.0f\n",
		ok.Load(), failed.Load(), elapsed.Seconds(), float64(ok.Load())/elapsed.Seconds())
	if errText != "" {
		fmt.Fprintf(stdout, "first failure: %s\n", errText)
	}
	return nil
}

// sweep sends one ICMP echo to each address in -list (one a line) with
// probe.Sweep and prints the wall time and how many answered.
func sweep(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	list := fs.String("list", "", "file of loopback addresses, one a line")
	interval := fs.Duration("interval", probe.DefaultSweepInterval, "gap between echoes")
	wait := fs.Duration("wait", 2*time.Second, "wait for replies after the last echo")
	privileged := fs.Bool("privileged", true, "raw ICMP sockets (root or CAP_NET_RAW)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrs, err := readAddrs(*list)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	rs, err := probe.Sweep(ctx, addrs, probe.SweepOptions{Privileged: *privileged, Interval: *interval, Wait: *wait})
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	replied := 0
	for _, r := range rs {
		if r.Replied {
			replied++
		}
	}
	fmt.Fprintf(stdout, "addresses %d replied %d seconds %.3f\n", len(rs), replied, elapsed.Seconds())
	return nil
}

func readAddrs(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sweep: -list: %w", err)
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil || !a.IsLoopback() {
			return nil, fmt.Errorf("sweep: %s line %d: %q is not a loopback address", path, n, line)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sweep: read %s: %w", path, err)
	}
	return out, nil
}
