package maps

import (
	"slices"

	"github.com/uber/h3-go/v4"
)

// A grouping bins probes into the cells of a map (the by= of the API).
// Every part that offers a choice of grouping lists them from here
// (Groupings), so that a new one is an entry below.
type grouping struct {
	name string
	// cell is the probe's cell id, "" for none; h3 is the probe's H3 cell
	// when the grouping's cells are H3 cells (their place and shape are
	// the cell's), else 0 (a cell's place is the centroid of its probes).
	cell func(p *probeState, res int) (id string, h3 h3.Cell)
}

// Groupings of probes into cells.
const (
	ByH3      = "h3"
	ByCountry = "country"
	ByASN     = "asn"
)

var groupings = []grouping{
	{ByH3, func(p *probeState, res int) (string, h3.Cell) {
		if !p.lat.set {
			return "", 0
		}
		c, err := Cell(p.lat.v, p.lon.v, res)
		if err != nil { // the place was validated in Add
			return "", 0
		}
		return c.String(), c
	}},
	{ByCountry, func(p *probeState, _ int) (string, h3.Cell) { return CountryCell(p.country.v), 0 }},
	{ByASN, func(p *probeState, _ int) (string, h3.Cell) { return ASNCell(p.asn.v), 0 }},
}

// Groupings lists the names of the groupings, the default (h3) first.
func Groupings() []string {
	names := make([]string, len(groupings))
	for i, g := range groupings {
		names[i] = g.name
	}
	return names
}

func groupingOf(name string) *grouping {
	i := slices.IndexFunc(groupings, func(g grouping) bool { return g.name == name })
	if i < 0 {
		return nil
	}
	return &groupings[i]
}
