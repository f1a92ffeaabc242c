package driver

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/hitlist"
	"github.com/catchmap/catchmap/sweep/payload"
)

// Unresponsive is the status of a /24 with no reply within the cooldown.
const Unresponsive = "unresponsive"

// Row is one /24's catchment.
type Row struct {
	Prefix netip.Prefix `json:"prefix"`
	Target netip.Addr   `json:"target"`
	// Status is caught, other_source or unresponsive.
	Status string `json:"status"`
	// Site caught the reply; From is the reply's source (the target when
	// caught); Sender sent the probe.
	Site   string `json:"site,omitempty"`
	From   string `json:"from,omitempty"`
	Sender string `json:"sender,omitempty"`
	// RTTMillis is the round trip, when the catching site sent the probe
	// (one clock; sites' clocks are not compared).
	RTTMillis *float64  `json:"rtt_ms,omitempty"`
	Sent      time.Time `json:"sent,omitzero"`
	Received  time.Time `json:"received,omitzero"`
	// Also lists the other sites that caught a reply for the /24: a
	// catchment that moved during the sweep, or duplicated replies.
	Also []string `json:"also,omitempty"`
}

// CSVHeader is the CSV output's columns.
var CSVHeader = []string{"prefix", "target", "status", "site", "from", "sender", "rtt_ms", "sent", "received", "also"}

// Summary counts a sweep.
type Summary struct {
	Sweep        payload.ID    `json:"sweep"`
	Prefixes     int           `json:"prefixes"`
	From         []string      `json:"from"`
	Rate         int           `json:"rate"`
	Cooldown     time.Duration `json:"-"`
	Started      time.Time     `json:"started"`
	SendingEnded time.Time     `json:"sending_ended"`
	Finished     time.Time     `json:"finished"`
	// Sent, Blocked and SendErrors add up the senders'.
	Sent       int `json:"sent"`
	Blocked    int `json:"blocked"`
	SendErrors int `json:"send_errors"`
	// Per /24: caught (by site), other_source, unresponsive; Moved counts
	// /24s with replies at more than one site.
	Caught       map[string]int `json:"caught"`
	OtherSource  int            `json:"other_source"`
	Unresponsive int            `json:"unresponsive"`
	Moved        int            `json:"moved"`
	// Replies not counted for any /24: duplicates, forged and stray ones,
	// and replies whose target is not in the hitlist.
	Duplicates int    `json:"duplicates"`
	Forged     uint64 `json:"forged"`
	Stray      uint64 `json:"stray"`
	Unknown    int    `json:"unknown_target"`
	// Lost before counting: on a catching socket's full buffer, or a full
	// store.
	KernelDrops  uint64 `json:"kernel_drops"`
	StoreDropped uint64 `json:"store_dropped"`
	// Sites has each site's own counts.
	Sites []control.SweepStatus `json:"sites"`
	// SiteNames are the sites, in the order of Sites.
	SiteNames []string `json:"site_names"`
}

// CaughtTotal is the number of /24s caught at any site.
func (s Summary) CaughtTotal() int {
	n := 0
	for _, c := range s.Caught {
		n += c
	}
	return n
}

// catchments turns the replies into one row per target, counting into s.
// A /24's row is its caught reply, else its other_source one, the first
// received of those.
func catchments(targets []uint32, replies []control.Reply, s *Summary) []Row {
	slices.SortFunc(replies, func(a, b control.Reply) int { return a.Received.Compare(b.Received) })
	index := make(map[uint32]int, len(targets))
	rows := make([]Row, len(targets))
	sorted := slices.Clone(targets)
	slices.Sort(sorted)
	for i, t := range sorted {
		index[t>>8] = i
		rows[i] = Row{Prefix: hitlist.Prefix24(t), Target: hitlist.Addr(t), Status: Unresponsive}
	}
	s.Caught = map[string]int{}
	sites := make([][]string, len(rows)) // every site that caught a reply, per row
	for _, r := range replies {
		if r.Class != control.Caught && r.Class != control.OtherSource {
			continue
		}
		i, ok := index[hitlist.U32(r.Target)>>8]
		if !ok || rows[i].Target != r.Target {
			s.Unknown++
			continue
		}
		if !slices.Contains(sites[i], r.Catcher) {
			sites[i] = append(sites[i], r.Catcher)
		}
		row := &rows[i]
		if row.Status != Unresponsive {
			s.Duplicates++
		}
		if row.Status == Unresponsive || row.Status == control.OtherSource && r.Class == control.Caught {
			*row = rowOf(row, r)
		}
	}
	for i := range rows {
		rows[i].Also = slices.DeleteFunc(sites[i], func(x string) bool { return x == rows[i].Site })
		slices.Sort(rows[i].Also)
	}
	for _, row := range rows {
		switch row.Status {
		case control.Caught:
			s.Caught[row.Site]++
		case control.OtherSource:
			s.OtherSource++
		default:
			s.Unresponsive++
		}
		if len(row.Also) > 0 {
			s.Moved++
		}
	}
	return rows
}

func rowOf(old *Row, r control.Reply) Row {
	row := Row{Prefix: old.Prefix, Target: old.Target, Status: r.Class, Site: r.Catcher, From: r.From.String(), Sender: r.Sender,
		Sent: r.Sent, Received: r.Received}
	if r.Catcher == r.Sender {
		ms := float64(r.Received.Sub(r.Sent).Microseconds()) / 1000
		row.RTTMillis = &ms
	}
	return row
}

// add sums the sites' own counts.
func (s *Summary) add(sites []*site) {
	for _, st := range sites {
		f := st.final
		s.Sites = append(s.Sites, f)
		s.SiteNames = append(s.SiteNames, st.name)
		s.Sent += f.Sent
		s.Blocked += f.Blocked
		s.SendErrors += f.SendErrors
		s.Forged += f.Replies[control.Forged]
		s.Stray += f.Replies[control.Stray]
		s.KernelDrops += f.KernelDrops
		s.StoreDropped += f.StoreDropped
	}
}

// WriteNDJSON writes one JSON object per row.
func WriteNDJSON(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// WriteCSV writes the rows under CSVHeader.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, r := range rows {
		rtt, sent, received := "", "", ""
		if r.RTTMillis != nil {
			rtt = strconv.FormatFloat(*r.RTTMillis, 'f', 3, 64)
		}
		if !r.Sent.IsZero() {
			sent, received = r.Sent.Format(time.RFC3339Nano), r.Received.Format(time.RFC3339Nano)
		}
		if err := cw.Write([]string{r.Prefix.String(), r.Target.String(), r.Status, r.Site, r.From, r.Sender, rtt, sent, received, strings.Join(r.Also, " ")}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Text is the summary in a few lines, for people.
func (s Summary) Text() string {
	took := s.Finished.Sub(s.Started).Round(time.Millisecond)
	sending := s.SendingEnded.Sub(s.Started).Round(time.Millisecond)
	out := fmt.Sprintf("sweep %s: %d /24s from %v at %d packets/s per site; sending took %s, all %s (cooldown %s)\n",
		s.Sweep, s.Prefixes, s.From, s.Rate, sending, took, s.Cooldown)
	out += fmt.Sprintf("  sent %d, blocked %d, send errors %d\n", s.Sent, s.Blocked, s.SendErrors)
	out += fmt.Sprintf("  /24s: caught %d, other_source %d, unresponsive %d, at more than one site %d\n",
		s.CaughtTotal(), s.OtherSource, s.Unresponsive, s.Moved)
	for i, st := range s.Sites {
		out += fmt.Sprintf("  site %s: caught %d /24s; %s\n", s.SiteNames[i], s.Caught[s.SiteNames[i]], siteLine(st))
	}
	out += fmt.Sprintf("  not counted: duplicates %d, forged %d, stray %d, unknown target %d; lost: kernel drops %d, store full %d\n",
		s.Duplicates, s.Forged, s.Stray, s.Unknown, s.KernelDrops, s.StoreDropped)
	return out
}

func siteLine(st control.SweepStatus) string {
	l := fmt.Sprintf("replies caught %d, other_source %d, forged %d, stray %d, kernel drops %d",
		st.Replies[control.Caught], st.Replies[control.OtherSource], st.Replies[control.Forged], st.Replies[control.Stray], st.KernelDrops)
	if st.Targets > 0 {
		l += fmt.Sprintf("; sent %d of %d (%s)", st.Sent, st.Targets, st.State)
	}
	if st.Error != "" {
		l += "; error: " + st.Error
	}
	return l
}
