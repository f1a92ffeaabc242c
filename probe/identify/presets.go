package identify

import (
	"fmt"
	"sort"
	"strings"
)

// presets is the built-in table. Sources and example answers are in
// testdata/identify/presets.yaml, which the tests replay against it.
var presets = []Preset{}

// Lookup returns the preset with this name (case-insensitive).
func Lookup(name string) (Preset, error) {
	for _, p := range presets {
		if strings.EqualFold(p.Name, name) {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("unknown preset %q: `catchmap presets` lists them (%s)", name, strings.Join(Names(), ", "))
}

// Names lists the preset names, sorted.
func Names() []string {
	out := make([]string, 0, len(presets))
	for _, p := range presets {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}
