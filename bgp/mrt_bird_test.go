package bgp

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/mrt"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/internal/testutil"
	"github.com/catchmap/catchmap/lab"
)

// The two speakers of TestReadMRTBird, on a veth pair between namespaces
// the test makes.
const (
	speakerAddr  = "10.64.53.1" // announces the prefixes
	speakerAS    = 64501
	recorderAddr = "10.64.53.2" // dumps what it receives
	recorderAS   = 64502
)

// netnsPair makes namespaces cmmrt<pid><tag>-a and -b, joined by a veth
// pair with speakerAddr in a and recorderAddr in b, and deletes them in
// Cleanup.
func netnsPair(t *testing.T, tag string) (a, b string) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "network namespaces need root: run the test as root")
	}
	if err := lab.CheckTools(); err != nil {
		unavailable(t, "%v", err)
	}
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	base := fmt.Sprintf("cmmrt%d%s", os.Getpid(), tag)
	a, b = base+"-a", base+"-b"
	for _, ns := range []string{a, b} {
		ip("netns", "add", ns)
		t.Cleanup(func() { ip("netns", "del", ns) })
	}
	// Both ends are made inside the namespaces, so their names cannot
	// collide with anyone's in the host's.
	ip("link", "add", "mrt0", "netns", a, "type", "veth", "peer", "name", "mrt0", "netns", b)
	for ns, addr := range map[string]string{a: speakerAddr, b: recorderAddr} {
		ip("-n", ns, "addr", "add", addr+"/30", "dev", "mrt0")
		ip("-n", ns, "link", "set", "mrt0", "up")
		ip("-n", ns, "link", "set", "lo", "up")
	}
	return a, b
}

// TestReadMRTBird imports the message dump of a real bird, which receives
// 192.0.2.0/24 by two routes from another bird (one prepended), then the
// withdrawal of each. With ADD-PATH the recorder gets both paths, and
// bird marks the updates with the RFC 8050 ADDPATH subtypes; without, it
// gets the best path only, then the other as a replacement.
func TestReadMRTBird(t *testing.T) {
	for _, c := range []struct {
		name              string
		speaker, recorder string // ADD-PATH settings of their channels
		// addPath: the session negotiates it, so the recorder has both
		// paths at first, and the two announcements may come in either
		// order.
		addPath bool
		want    []string // events
	}{
		{"add-path off", "", "", false, []string{
			"announce 192.0.2.0/24 64501", "announce 192.0.2.0/24 64501 64501", "withdraw 192.0.2.0/24"}},
		{"add-path on", "add paths tx;", "add paths rx;", true, []string{
			"announce 192.0.2.0/24 64501", "announce 192.0.2.0/24 64501 64501", "withdraw 192.0.2.0/24", "withdraw 192.0.2.0/24"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := netnsPair(t, strings.TrimPrefix(c.name, "add-path "))
			dump := filepath.Join(t.TempDir(), "updates.mrt")
			speaker, _ := runBird(t, a, fmt.Sprintf(`log stderr all;
router id %[1]s;
protocol device { }
protocol static anycast { ipv4; route 192.0.2.0/24 blackhole; route 198.51.100.0/24 blackhole; }
protocol static backup { ipv4 { preference 100; }; route 192.0.2.0/24 blackhole; }
protocol bgp recorder {
	local %[1]s as %[2]d;
	neighbor %[3]s as %[4]d;
	connect delay time 1; connect retry time 1; error wait time 1, 2;
	ipv4 { import none; export filter { if proto = "backup" then bgp_path.prepend(%[2]d); accept; }; %[5]s };
}
`, speakerAddr, speakerAS, recorderAddr, recorderAS, c.speaker))
			recorder, stopRecorder := runBird(t, b, fmt.Sprintf(`log stderr all;
router id %[1]s;
mrtdump %[5]q;
mrtdump protocols all;
protocol device { }
protocol bgp speaker {
	local %[1]s as %[2]d;
	neighbor %[3]s as %[4]d;
	connect delay time 1; connect retry time 1; error wait time 1, 2;
	ipv4 { import all; export none; %[6]s };
}
`, recorderAddr, recorderAS, speakerAddr, speakerAS, dump, c.recorder))

			// The recorder's routes for 192.0.2.0/24, as their AS paths.
			paths := func() string {
				rs, err := lab.ParseRoutes(recorder("show", "route", "all"))
				if err != nil {
					t.Fatal(err)
				}
				var ps []string
				for _, r := range rs {
					if r.Net == "192.0.2.0/24" {
						ps = append(ps, strings.Trim(fmt.Sprint(r.ASPath), "[]"))
					}
				}
				slices.Sort(ps)
				return strings.Join(ps, ",")
			}
			first := "64501"
			if c.addPath {
				first = "64501,64501 64501"
			}
			wait := func(what, want string) {
				t.Helper()
				testutil.WaitForNil(t, 30*time.Second, what, func() error {
					if got := paths(); got != want {
						return fmt.Errorf("the recorder's paths are %q, want %q", got, want)
					}
					return nil
				})
			}
			wait("the announcements", first)
			speaker("disable", "anycast")
			wait("the withdrawal of the best route", "64501 64501")
			speaker("disable", "backup")
			wait("the withdrawal of the other", "")
			stopRecorder()

			data, err := os.ReadFile(dump)
			if err != nil {
				t.Fatal(err)
			}
			marked := 0
			for _, r := range mrtRecords(data) {
				if s := mrt.MRTSubTypeBGP4MP(binary.BigEndian.Uint16(r[6:])); s == mrt.MESSAGE_ADDPATH || s == mrt.MESSAGE_AS4_ADDPATH {
					marked++
				}
			}
			if (marked > 0) != c.addPath {
				t.Fatalf("bird marked %d records ADDPATH: the test no longer sets up what it means to", marked)
			}
			got, st := readAll(t, data)
			t.Logf("%d records, %d marked ADDPATH: %+v", len(mrtRecords(data)), marked, st)
			if st.Malformed != 0 {
				t.Errorf("%d malformed records, first: %s", st.Malformed, st.FirstMalformed)
			}
			s := summary(got)
			if len(s) == len(c.want) && c.addPath {
				slices.Sort(s[:2])
			}
			if !slices.Equal(s, c.want) {
				t.Errorf("events %q, want %q", s, c.want)
			}
			for _, e := range got {
				if e.Peer != speakerAddr || e.Source != api.SourceMRT {
					t.Errorf("event %+v: want peer %s, source mrt", e, speakerAddr)
				}
			}
		})
	}
}
