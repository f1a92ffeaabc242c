package result

import (
	"fmt"
	"math"
)

// ValidLatLon reports whether lat, lon is a place on Earth in degrees.
func ValidLatLon(lat, lon float64) error {
	if math.IsNaN(lat) || math.IsInf(lat, 0) || lat < -90 || lat > 90 {
		return fmt.Errorf("latitude %v is not a number in [-90, 90]: fix the probe's location", lat)
	}
	if math.IsNaN(lon) || math.IsInf(lon, 0) || lon < -180 || lon > 180 {
		return fmt.Errorf("longitude %v is not a number in [-180, 180]: fix the probe's location", lon)
	}
	return nil
}
