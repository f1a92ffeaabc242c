package atlas

import (
	"strings"
	"testing"
	"time"
)

// TestEstimate checks the documented unit costs: DNS 10 a result over
// UDP and 20 over TCP, ping a credit a packet at the default size, and a
// one-off's result twice as much.
func TestEstimate(t *testing.T) {
	day := 24 * time.Hour
	dns := Definition{Type: TypeDNS, Protocol: "UDP", Interval: 300}
	tcp := Definition{Type: TypeDNS, Protocol: "TCP", Interval: 300}
	ping := Definition{Type: TypePing, Interval: 240}
	cases := []struct {
		name      string
		def       Definition
		probes    int
		over      time.Duration
		perResult int64
		results   int64
	}{
		{"dns a day", dns, 100, day, 10, 288},
		{"dns tcp a day", tcp, 100, day, 20, 288},
		{"dns part of an interval", dns, 10, 301 * time.Second, 10, 2},
		{"dns one-off", Definition{Type: TypeDNS}, 100, day, 20, 1},
		{"dns tcp one-off", Definition{Type: TypeDNS, Protocol: "TCP"}, 100, time.Hour, 40, 1},
		{"ping a day", ping, 50, day, 3, 360},
		{"ping one-off", Definition{Type: TypePing}, 50, day, 6, 1},
		{"ping 16 packets", Definition{Type: TypePing, Interval: 3600, Packets: 16}, 1, day, 16, 24},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Estimate([]Definition{tc.def}, tc.probes, tc.over)
			it := c.Items[0]
			want := int64(tc.probes) * tc.results * tc.perResult
			if it.PerResult != tc.perResult || it.Results != tc.results || it.Credits != want || c.Credits != want || c.Over != tc.over {
				t.Errorf("estimate %+v, want %d × %d × %d = %d", c, tc.probes, tc.results, tc.perResult, want)
			}
		})
	}
}

func TestDailyCap(t *testing.T) {
	reqs := requests(t, kRoot())
	// Two families × 62 probes × 288 results × 10 credits.
	const day = 2 * 62 * 288 * 10
	c, err := CheckDailyCap(reqs, day)
	if err != nil || c.Credits != day || len(c.Items) != 2 {
		t.Errorf("at the cap: %+v %v", c, err)
	}
	if _, err := CheckDailyCap(reqs, 0); err != nil {
		t.Errorf("no cap: %v", err)
	}
	_, err = CheckDailyCap(reqs, day-1)
	if err == nil || !strings.Contains(err.Error(), "about 357120 RIPE Atlas credits a day (an estimate") ||
		!strings.Contains(err.Error(), "daily cap of 357119") {
		t.Errorf("over the cap: %v", err)
	}
}

func TestDryRun(t *testing.T) {
	reqs := requests(t, kRoot())
	var b strings.Builder
	if err := DryRun(&b, reqs, time.Hour); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"POST /api/v2/measurements/ (request 2 of 2):",
		`"set_nsid_bit": true`, `"include_qbuf": true`, `"system-ipv6-works"`,
		"Estimated RIPE Atlas credits over 1h0m0s (Atlas has no estimate endpoint",
		"dns IPv4 k.root-servers.net (periodic): 62 probes × 12 results × 10 credits = 7440 credits",
		"total: about 14880 credits",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run does not say %q:\n%s", want, out)
		}
	}
}
