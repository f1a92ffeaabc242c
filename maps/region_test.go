package maps

import (
	"math"
	"strings"
	"testing"
)

func TestDistanceKm(t *testing.T) {
	// Amsterdam to Frankfurt is about 365 km as the crow flies.
	if d := DistanceKm(52.37, 4.90, 50.11, 8.68); math.Abs(d-365) > 10 {
		t.Errorf("Amsterdam-Frankfurt = %.1f km, want about 365", d)
	}
	if d := DistanceKm(10, 20, 10, 20); d != 0 {
		t.Errorf("distance to itself = %v, want 0", d)
	}
}

func TestParseCellAndInCell(t *testing.T) {
	c, err := Cell(52.37, 4.90, 3)
	if err != nil {
		t.Fatal(err)
	}
	ams := c.String()
	if res, err := ParseCell(ams); err != nil || res != 3 {
		t.Fatalf("ParseCell(%s) = %d, %v; want 3, nil", ams, res, err)
	}
	coarse, err := Cell(52.37, 4.90, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lat, lon float64
		cell     string
		want     bool
	}{
		{52.37, 4.90, ams, true},
		{52.37, 4.90, coarse.String(), true},
		{50.11, 8.68, ams, false},
		{-33.9, 151.2, coarse.String(), false},
	} {
		got, err := InCell(tc.lat, tc.lon, tc.cell)
		if err != nil || got != tc.want {
			t.Errorf("InCell(%v, %v, %s) = %v, %v; want %v", tc.lat, tc.lon, tc.cell, got, err, tc.want)
		}
	}
	fine, err := Cell(52.37, 4.90, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "xyz", "0x" + ams, strings.ToUpper(ams), "8", fine.Children(8)[0].String()} {
		if _, err := ParseCell(bad); err == nil {
			t.Errorf("ParseCell(%q) succeeded, want an error", bad)
		}
	}
	if _, err := InCell(91, 0, ams); err == nil {
		t.Error("InCell with latitude 91 succeeded, want an error")
	}
}

func TestQuantile(t *testing.T) {
	if v, ok := Quantile([]float64{4, 1, 3, 2}, 0.5); !ok || v != 2.5 {
		t.Errorf("median of 1..4 = %v, %v; want 2.5", v, ok)
	}
	if _, ok := Quantile(nil, 0.5); ok {
		t.Error("median of nothing is ok, want not ok")
	}
}
