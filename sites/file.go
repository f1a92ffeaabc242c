package sites

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// fileSite is one entry of a user's sites file. Coordinates are pointers so
// a missing one is an error rather than a site in the Gulf of Guinea.
type fileSite struct {
	Code    string   `yaml:"code"`
	Name    string   `yaml:"name"`
	City    string   `yaml:"city"`
	Country string   `yaml:"country"`
	Lat     *float64 `yaml:"lat"`
	Lon     *float64 `yaml:"lon"`
	Kind    string   `yaml:"kind"`
}

type file struct {
	Sites []fileSite `yaml:"sites"`
}

var (
	codeRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._:/-]*$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// LoadFile reads a user's sites file, a YAML document such as
//
//	sites:
//	  - code: qfra3        # as the preset yields it; any case
//	    name: Quad9 Frankfurt
//	    city: Frankfurt
//	    country: DE        # ISO 3166 alpha-2, optional
//	    lat: 50.11
//	    lon: 8.68
//	    kind: pop          # optional, default "user"
//
// Unknown keys, missing codes or coordinates, out-of-range coordinates and
// repeated codes are errors naming the file, line and field.
func LoadFile(path string) ([]Site, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading sites file: %w", err)
	}
	return parseFile(path, data)
}

func parseFile(name string, data []byte) ([]Site, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty: want a `sites:` list of code, name, city, country, lat, lon", name)
		}
		return nil, fmt.Errorf("%s: %s (a site has the keys code, name, city, country, lat, lon, kind)", name, yamlErr(err))
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document: put every site under one `sites:` list", name)
	}
	if len(f.Sites) == 0 {
		return nil, fmt.Errorf("%s: no sites: want a `sites:` list of code, name, city, country, lat, lon", name)
	}
	// A second, untyped parse gives the line of each entry and key, so that
	// errors point at them. It cannot fail where the strict decode passed.
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	seen := map[string]int{}
	out := make([]Site, 0, len(f.Sites))
	for i, fs := range f.Sites {
		where := func(field string) string {
			return fmt.Sprintf("%s: line %d: sites[%d].%s", name, line(&root, i, field), i, field)
		}
		code := strings.ToLower(strings.TrimSpace(fs.Code))
		switch {
		case code == "":
			return nil, fmt.Errorf("%s: missing: give the site code as the preset yields it", where("code"))
		case !codeRE.MatchString(code):
			return nil, fmt.Errorf("%s: %q is not a site code: use letters, digits and . _ : / -", where("code"), fs.Code)
		}
		if prev, dup := seen[code]; dup {
			return nil, fmt.Errorf("%s: %q is already defined at sites[%d]: keep one", where("code"), code, prev)
		}
		seen[code] = i
		country := strings.ToUpper(strings.TrimSpace(fs.Country))
		if country != "" && !countryRE.MatchString(country) {
			return nil, fmt.Errorf("%s: %q is not an ISO 3166 alpha-2 code such as DE or US", where("country"), fs.Country)
		}
		switch {
		case fs.Lat == nil:
			return nil, fmt.Errorf("%s: missing: give the latitude in degrees, -90 to 90", where("lat"))
		case fs.Lon == nil:
			return nil, fmt.Errorf("%s: missing: give the longitude in degrees, -180 to 180", where("lon"))
		case !validLat(*fs.Lat):
			return nil, fmt.Errorf("%s: %v is out of range: latitude must be between -90 and 90", where("lat"), *fs.Lat)
		case !validLon(*fs.Lon):
			return nil, fmt.Errorf("%s: %v is out of range: longitude must be between -180 and 180", where("lon"), *fs.Lon)
		}
		kind := strings.TrimSpace(fs.Kind)
		if kind == "" {
			kind = KindUser
		}
		out = append(out, Site{Code: code, Name: fs.Name, City: fs.City, Country: country,
			Lat: *fs.Lat, Lon: *fs.Lon, Kind: kind})
	}
	return out, nil
}

// yamlErr drops yaml's "unmarshal errors:" preamble, keeping the lines.
func yamlErr(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// line finds the line of sites[i].field in the parsed document, falling
// back to the entry's line, then to 0 when the shape is not as expected.
func line(root *yaml.Node, i int, field string) int {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return 0
	}
	seq := value(root.Content[0], "sites")
	if seq == nil || seq.Kind != yaml.SequenceNode || i >= len(seq.Content) {
		return 0
	}
	entry := seq.Content[i]
	if v := value(entry, field); v != nil {
		return v.Line
	}
	return entry.Line
}

func value(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return m.Content[j+1]
		}
	}
	return nil
}
