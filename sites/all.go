package sites

import (
	"cmp"
	"slices"
)

// Airports returns every built-in IATA airport, sorted by code, for callers
// that place things where airports are (the simulator puts its probes where
// people and networks are, and airports are a proxy for both).
func (t *Table) Airports() []Site {
	out := make([]Site, 0, len(t.airports))
	for _, s := range t.airports {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Site) int { return cmp.Compare(a.Code, b.Code) })
	return out
}
