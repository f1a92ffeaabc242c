package geo

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/catchmap/catchmap/aggregator/geo/geotest"
)

func TestLookup(t *testing.T) {
	city, asn := geotest.Write(t, t.TempDir(), geotest.Loopback)
	d, err := Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	loc, err := d.Lookup(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Lat == nil || loc.Lon == nil || *loc.Lat != 52.37 || *loc.Lon != 4.89 || loc.Country != "NL" || loc.ASN != 64500 {
		t.Errorf("127.0.0.1: got %+v", loc)
	}
	// An IPv4-mapped IPv6 address is the same address.
	loc, err = d.Lookup(netip.MustParseAddr("::ffff:127.0.0.2"))
	if err != nil || loc.ASN != 64500 {
		t.Errorf("::ffff:127.0.0.2: got %+v, %v", loc, err)
	}
	// Not covered: nothing, not 0,0.
	loc, err = d.Lookup(netip.MustParseAddr("192.0.2.1"))
	if err != nil || loc.Lat != nil || loc.Lon != nil || loc.Country != "" || loc.ASN != 0 {
		t.Errorf("192.0.2.1: got %+v, %v", loc, err)
	}
}

func TestNoDatabases(t *testing.T) {
	d, err := Open("", "")
	if err != nil {
		t.Fatal(err)
	}
	loc, err := d.Lookup(netip.MustParseAddr("127.0.0.1"))
	if err != nil || loc != (Location{}) {
		t.Errorf("got %+v, %v", loc, err)
	}
	var nilDB *DB
	if _, err := nilDB.Lookup(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Error(err)
	}
}

func TestOpenErrors(t *testing.T) {
	city, asn := geotest.Write(t, t.TempDir(), geotest.Loopback)
	if _, err := Open(asn, ""); err == nil || !strings.Contains(err.Error(), "is a GeoLite2-ASN database: give a City one") {
		t.Errorf("ASN file as city: %v", err)
	}
	if _, err := Open("", city); err == nil || !strings.Contains(err.Error(), "give an ASN one") {
		t.Errorf("city file as ASN: %v", err)
	}
	if _, err := Open(t.TempDir()+"/missing.mmdb", ""); err == nil || !strings.Contains(err.Error(), "opening GeoIP city database") {
		t.Errorf("missing file: %v", err)
	}
}
