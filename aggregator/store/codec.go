package store

import (
	"encoding/json"
	"fmt"

	"github.com/catchmap/catchmap/api"
)

// DecodePlan reads a plan as the backends store it: the JSON of api.Plan.
// A body that does not decode means the stored plan is damaged; the error
// says to put it again.
func DecodePlan(body string) (api.Plan, error) {
	var p api.Plan
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return api.Plan{}, fmt.Errorf("stored plan is not valid JSON: put the plan again: %w", err)
	}
	return p, nil
}

// Rows is what both database drivers' query results offer.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanStrings reads a one-column string result to its end; the caller
// closes rows.
func ScanStrings(rows Rows) ([]string, error) {
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
