package maps

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Diff compares two catchments of the same binning: what moved where.
type Diff struct {
	Target     string    `json:"target"` // "" when the two differ
	FromA      time.Time `json:"from_a"`
	ToA        time.Time `json:"to_a"`
	FromB      time.Time `json:"from_b"`
	ToB        time.Time `json:"to_b"`
	By         string    `json:"by"`
	Resolution int       `json:"resolution"`
	// Probes counts probes served in both windows; only they can move.
	Probes      int     `json:"probes"`
	MovedProbes int     `json:"moved_probes"`
	MovedShare  float64 `json:"moved_share"` // weighted (by A's weights)
	// Flows counts moved probes per (from, to), biggest first.
	Flows        []Flow        `json:"flows"`
	CellsChanged []CellChange  `json:"cells_changed"` // cells in both whose site changed
	Sites        []SiteShares  `json:"sites"`
	RTTP50A      *float64      `json:"rtt_p50_a_ms"`
	RTTP50B      *float64      `json:"rtt_p50_b_ms"`
	Cells        []CellCompare `json:"cells"` // every cell of A or B
}

// Flow is a number of probes that moved from one site to another.
type Flow struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Probes int    `json:"probes"`
}

// CellChange is a cell whose dominant site changed.
type CellChange struct {
	Cell string `json:"cell"`
	From string `json:"from"`
	To   string `json:"to"`
}

// SiteShares is a site's share of served probes in A and in B.
type SiteShares struct {
	Site   string  `json:"site"`
	ShareA float64 `json:"share_a"`
	ShareB float64 `json:"share_b"`
}

// CellCompare sets a cell of A beside the same cell of B. Sides where the
// cell is absent have site "" and zero probes.
type CellCompare struct {
	Cell      string   `json:"cell"`
	SiteA     string   `json:"site_a"`
	SiteB     string   `json:"site_b"`
	ProbesA   int      `json:"probes_a"`
	ProbesB   int      `json:"probes_b"`
	RTTP50A   *float64 `json:"rtt_p50_a_ms"`
	RTTP50B   *float64 `json:"rtt_p50_b_ms"`
	RTTChange *float64 `json:"rtt_change_ms"` // B - A, when both are known
}

// Compare diffs catchment a against b. Both must bin the same way.
func Compare(a, b *Catchment) (*Diff, error) {
	if a.By != b.By || a.By == ByH3 && a.Resolution != b.Resolution {
		return nil, fmt.Errorf("cannot compare a catchment by %s (resolution %d) with one by %s (resolution %d): compute both with the same binning",
			a.By, a.Resolution, b.By, b.Resolution)
	}
	d := &Diff{FromA: a.From, ToA: a.To, FromB: b.From, ToB: b.To, By: a.By, Resolution: a.Resolution,
		Flows: []Flow{}, CellsChanged: []CellChange{}, Sites: []SiteShares{}, Cells: []CellCompare{},
		RTTP50A: a.RTTP50, RTTP50B: b.RTTP50}
	if a.Target == b.Target {
		d.Target = a.Target
	}

	inB := make(map[string]string, len(b.ProbeList))
	for _, p := range b.ProbeList {
		if p.Site != "" {
			inB[p.ID] = p.Site
		}
	}
	var total, moved float64
	flows := map[[2]string]int{}
	for _, p := range a.ProbeList {
		sb, ok := inB[p.ID]
		if p.Site == "" || !ok {
			continue
		}
		d.Probes++
		total += p.Weight
		if sb != p.Site {
			d.MovedProbes++
			moved += p.Weight
			flows[[2]string{p.Site, sb}]++
		}
	}
	if total > 0 {
		d.MovedShare = moved / total
	}
	for k, n := range flows {
		d.Flows = append(d.Flows, Flow{From: k[0], To: k[1], Probes: n})
	}
	sortFlows(d.Flows)

	shares := map[string]*SiteShares{}
	share := func(site string) *SiteShares {
		if shares[site] == nil {
			shares[site] = &SiteShares{Site: site}
		}
		return shares[site]
	}
	for _, s := range a.Sites {
		share(s.Site).ShareA = s.Share
	}
	for _, s := range b.Sites {
		share(s.Site).ShareB = s.Share
	}
	for _, k := range sortedKeys(shares) {
		d.Sites = append(d.Sites, *shares[k])
	}
	slices.SortStableFunc(d.Sites, func(x, y SiteShares) int {
		return cmp.Or(cmp.Compare(y.ShareB, x.ShareB), cmp.Compare(y.ShareA, x.ShareA))
	})

	cells := map[string]*CellCompare{}
	cell := func(id string) *CellCompare {
		if cells[id] == nil {
			cells[id] = &CellCompare{Cell: id}
		}
		return cells[id]
	}
	for _, c := range a.Cells {
		cc := cell(c.Cell)
		cc.SiteA, cc.ProbesA, cc.RTTP50A = c.Site, c.Probes, c.RTTP50
	}
	for _, c := range b.Cells {
		cc := cell(c.Cell)
		cc.SiteB, cc.ProbesB, cc.RTTP50B = c.Site, c.Probes, c.RTTP50
	}
	for _, k := range sortedKeys(cells) {
		cc := cells[k]
		if cc.RTTP50A != nil && cc.RTTP50B != nil {
			cc.RTTChange = ptr(roundTo(*cc.RTTP50B-*cc.RTTP50A, 3))
		}
		if cc.SiteA != "" && cc.SiteB != "" && cc.SiteA != cc.SiteB {
			d.CellsChanged = append(d.CellsChanged, CellChange{Cell: k, From: cc.SiteA, To: cc.SiteB})
		}
		d.Cells = append(d.Cells, *cc)
	}
	return d, nil
}

// sortFlows orders flows biggest first, then by from and to.
func sortFlows(fs []Flow) {
	slices.SortFunc(fs, func(x, y Flow) int {
		return cmp.Or(cmp.Compare(y.Probes, x.Probes), cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
	})
}
