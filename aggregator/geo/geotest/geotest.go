// Package geotest writes tiny City and ASN mmdb files for tests, so that
// GeoIP code runs against real database files rather than a fake.
package geotest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Place is what the generated databases answer for Network.
type Place struct {
	Network  string // CIDR, such as 127.0.0.0/8
	Lat, Lon float64
	Country  string
	ASN      uint32
	Org      string
}

// Loopback is a place covering 127.0.0.0/8, the only addresses tests use.
var Loopback = Place{Network: "127.0.0.0/8", Lat: 52.37, Lon: 4.89, Country: "NL", ASN: 64500, Org: "Example Test Net"}

// Write writes City and ASN databases for places into dir and returns their
// paths.
func Write(t testing.TB, dir string, places ...Place) (cityPath, asnPath string) {
	t.Helper()
	city := newTree(t, "GeoLite2-City")
	asn := newTree(t, "GeoLite2-ASN")
	for _, p := range places {
		_, n, err := net.ParseCIDR(p.Network)
		if err != nil {
			t.Fatalf("geotest: bad network %q: %v", p.Network, err)
		}
		err = city.Insert(n, mmdbtype.Map{
			"location": mmdbtype.Map{
				"latitude":        mmdbtype.Float64(p.Lat),
				"longitude":       mmdbtype.Float64(p.Lon),
				"accuracy_radius": mmdbtype.Uint16(100),
			},
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(p.Country)},
		})
		if err != nil {
			t.Fatalf("geotest: inserting %s into the city database: %v", p.Network, err)
		}
		err = asn.Insert(n, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(p.ASN),
			"autonomous_system_organization": mmdbtype.String(p.Org),
		})
		if err != nil {
			t.Fatalf("geotest: inserting %s into the ASN database: %v", p.Network, err)
		}
	}
	cityPath = filepath.Join(dir, "city.mmdb")
	asnPath = filepath.Join(dir, "asn.mmdb")
	writeTree(t, city, cityPath)
	writeTree(t, asn, asnPath)
	return cityPath, asnPath
}

func newTree(t testing.TB, dbType string) *mmdbwriter.Tree {
	t.Helper()
	tr, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		// Loopback is reserved; tests need it anyway.
		IncludeReservedNetworks: true,
		RecordSize:              24,
	})
	if err != nil {
		t.Fatalf("geotest: new %s tree: %v", dbType, err)
	}
	return tr
}

func writeTree(t testing.TB, tr *mmdbwriter.Tree, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if _, err := tr.WriteTo(f); err != nil {
		f.Close()
		t.Fatalf("geotest: writing %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geotest: closing %s: %v", path, err)
	}
}
