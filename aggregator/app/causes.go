package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catchmap/catchmap/aggregator/store"
	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/maps"
)

// causesOf lists the target's annotations and the BGP events of its plan
// prefixes in [from, to), in time order; at equal times an annotation
// (an operator's own words) comes last, so it wins.
func causesOf(ctx context.Context, st store.Store, target string, from, to time.Time) ([]maps.Cause, error) {
	var cs []maps.Cause
	p, err := st.Plan(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the plan: %w", err)
	}
	if t, ok := p.Lookup(target); ok && len(t.Prefixes) > 0 {
		es, err := st.Events(ctx, t.Prefixes, from, to)
		if err != nil {
			return nil, fmt.Errorf("reading BGP events: %w", err)
		}
		for _, e := range es {
			cs = append(cs, maps.Cause{Kind: maps.CauseBGP, Time: e.Time, Text: eventText(e), ID: e.ID})
		}
	}
	as, err := st.Annotations(ctx, target, from, to)
	if err != nil {
		return nil, fmt.Errorf("reading annotations: %w", err)
	}
	for _, a := range as {
		cs = append(cs, maps.Cause{Kind: maps.CauseAnnotation, Time: a.Time, Text: a.Text, ID: a.ID})
	}
	rank := map[string]int{maps.CauseBGP: 0, maps.CauseAnnotation: 1}
	slices.SortStableFunc(cs, func(a, b maps.Cause) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(rank[a.Kind], rank[b.Kind]))
	})
	return cs, nil
}

// eventText is an event in a line: "withdraw 192.0.2.0/24 from 192.0.2.1".
func eventText(e api.Event) string {
	var b strings.Builder
	b.WriteString(e.Kind + " " + e.Prefix)
	if len(e.ASPath) > 0 {
		b.WriteString(" AS path")
		for _, as := range e.ASPath {
			b.WriteString(" " + strconv.FormatUint(uint64(as), 10))
		}
	}
	if e.Peer != "" {
		b.WriteString(" from " + e.Peer)
	}
	if e.Source != "" {
		b.WriteString(" (" + e.Source + ")")
	}
	return b.String()
}
