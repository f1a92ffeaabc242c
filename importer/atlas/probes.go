package atlas

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ProbeInfo is what Atlas says about a probe. Locations are set by the
// probes' hosts and are sometimes wrong.
type ProbeInfo struct {
	ID       int64
	Lat, Lon *float64 // nil when unknown
	Country  string
	ASNv4    uint32
	ASNv6    uint32
}

// Probes maps probe ids to their metadata.
type Probes map[int64]ProbeInfo

// probeJSON is a probe as /api/v2/probes/ writes it (location in
// geometry.coordinates, [lon, lat]) or the daily archive does (latitude
// and longitude).
type probeJSON struct {
	ID        int64    `json:"id"`
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	Geometry  *struct {
		Coordinates []float64 `json:"coordinates"`
	} `json:"geometry"`
	CountryCode string `json:"country_code"`
	ASNv4       *int64 `json:"asn_v4"`
	ASNv6       *int64 `json:"asn_v6"`
}

// ReadProbes adds the probes in r to ps: a page of /api/v2/probes/
// ({"results": [...]}), a plain array of probes, or the daily archive
// ({"objects": [...]}), plain, gzip or bzip2. It streams, so the archive's
// tens of thousands of probes never sit in memory as JSON.
func ReadProbes(r io.Reader, ps Probes) error {
	in, err := uncompress(r)
	if err != nil {
		return fmt.Errorf("reading Atlas probes: %w", err)
	}
	dec := json.NewDecoder(in)
	tok, err := dec.Token()
	if err != nil {
		return probesError(err)
	}
	switch tok {
	case json.Delim('['):
		if err := readProbeArray(dec, ps); err != nil {
			return err
		}
	case json.Delim('{'):
		found := false
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return probesError(err)
			}
			if key == "results" || key == "objects" {
				if t, err := dec.Token(); err != nil || t != json.Delim('[') {
					return fmt.Errorf("reading Atlas probes: %q is not an array of probes", key)
				}
				if err := readProbeArray(dec, ps); err != nil {
					return err
				}
				found = true
				continue
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return probesError(err)
			}
		}
		if !found {
			return errors.New("reading Atlas probes: the object has no \"results\" (API) or \"objects\" (daily archive) array: is this an Atlas probe list?")
		}
	default:
		return fmt.Errorf("reading Atlas probes: the input starts with %v: expected the /api/v2/probes/ JSON, an array of probes, or the daily probe archive", tok)
	}
	return nil
}

// readProbeArray reads probes up to and including the closing ].
func readProbeArray(dec *json.Decoder, ps Probes) error {
	for i := 0; dec.More(); i++ {
		var p probeJSON
		if err := dec.Decode(&p); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return probesError(err)
			}
			return fmt.Errorf("reading Atlas probes: probe %d: %w", i+1, err)
		}
		ps[p.ID] = p.info()
	}
	if _, err := dec.Token(); err != nil {
		return probesError(err)
	}
	return nil
}

func probesError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("reading Atlas probes: the file ends in the middle of the JSON: is it cut short?")
	}
	return fmt.Errorf("reading Atlas probes: %w", err)
}

func (p *probeJSON) info() ProbeInfo {
	info := ProbeInfo{ID: p.ID, Country: p.CountryCode}
	lat, lon := p.Latitude, p.Longitude
	if p.Geometry != nil && len(p.Geometry.Coordinates) == 2 {
		// GeoJSON order: longitude first.
		lon, lat = &p.Geometry.Coordinates[0], &p.Geometry.Coordinates[1]
	}
	if lat != nil && lon != nil && *lat >= -90 && *lat <= 90 && *lon >= -180 && *lon <= 180 {
		la, lo := *lat, *lon
		info.Lat, info.Lon = &la, &lo
	}
	info.ASNv4 = asn(p.ASNv4)
	info.ASNv6 = asn(p.ASNv6)
	return info
}

func asn(n *int64) uint32 {
	if n == nil || *n <= 0 || *n > 1<<32-1 {
		return 0
	}
	return uint32(*n)
}
