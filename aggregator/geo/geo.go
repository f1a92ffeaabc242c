// Package geo places a probe by its address with MaxMind-format (mmdb)
// databases: a City database for coordinates and country, an ASN database
// for the network. Either may be absent; lookups then leave those fields
// empty.
package geo

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/oschwald/geoip2-golang"
)

// Location is what the databases know about an address. Lat and Lon are nil
// when unknown (0,0 is a real place).
type Location struct {
	Lat     *float64
	Lon     *float64
	Country string // ISO 3166-1 alpha-2
	ASN     uint32
}

// DB looks addresses up. The zero value and a nil *DB know nothing.
type DB struct {
	city *geoip2.Reader
	asn  *geoip2.Reader
}

// Open opens the databases at the given paths; an empty path skips that
// database.
func Open(cityPath, asnPath string) (*DB, error) {
	d := &DB{}
	if cityPath != "" {
		r, err := geoip2.Open(cityPath)
		if err != nil {
			return nil, fmt.Errorf("opening GeoIP city database %s: %w (give a GeoLite2-City or GeoIP2-City mmdb file)", cityPath, err)
		}
		// City(nil) checks the database type before it looks anything up.
		if _, err := r.City(nil); isWrongType(err) {
			r.Close()
			return nil, fmt.Errorf("GeoIP city database %s is a %s database: give a City one", cityPath, r.Metadata().DatabaseType)
		}
		d.city = r
	}
	if asnPath != "" {
		r, err := geoip2.Open(asnPath)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("opening GeoIP ASN database %s: %w (give a GeoLite2-ASN mmdb file)", asnPath, err)
		}
		if _, err := r.ASN(nil); isWrongType(err) {
			r.Close()
			d.Close()
			return nil, fmt.Errorf("GeoIP ASN database %s is a %s database: give an ASN one", asnPath, r.Metadata().DatabaseType)
		}
		d.asn = r
	}
	return d, nil
}

func isWrongType(err error) bool {
	var im geoip2.InvalidMethodError
	return errors.As(err, &im)
}

// Lookup returns what the databases know about addr. A failed lookup (a
// malformed database record) is an error; an address the databases do not
// cover is a zero Location and no error.
func (d *DB) Lookup(addr netip.Addr) (Location, error) {
	var loc Location
	if d == nil || !addr.IsValid() {
		return loc, nil
	}
	ip := addr.Unmap().AsSlice()
	if d.city != nil {
		c, err := d.city.City(ip)
		if err != nil {
			return Location{}, fmt.Errorf("GeoIP city lookup of %s: %w", addr, err)
		}
		// geoip2 answers zero values for an address it does not cover; a
		// real location always has an accuracy radius or coordinates.
		l := c.Location
		if l.AccuracyRadius != 0 || l.Latitude != 0 || l.Longitude != 0 {
			lat, lon := l.Latitude, l.Longitude
			loc.Lat, loc.Lon = &lat, &lon
		}
		loc.Country = c.Country.IsoCode
	}
	if d.asn != nil {
		a, err := d.asn.ASN(ip)
		if err != nil {
			return Location{}, fmt.Errorf("GeoIP ASN lookup of %s: %w", addr, err)
		}
		loc.ASN = uint32(a.AutonomousSystemNumber)
	}
	return loc, nil
}

// Close releases the databases.
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	var errs []error
	if d.city != nil {
		errs = append(errs, d.city.Close())
	}
	if d.asn != nil {
		errs = append(errs, d.asn.Close())
	}
	return errors.Join(errs...)
}
