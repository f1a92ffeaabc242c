package atlastest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/catchmap/catchmap/fleet/fleettest"
)

// get sends a GET to the fake and decodes the JSON answer.
func get(t *testing.T, url, auth string) (int, map[string]any) {
	t.Helper()
	a := fleettest.Send(t, http.MethodGet, url, auth, "")
	return a.Status, a.JSON
}

func TestFake(t *testing.T) {
	probes := `[{"id": 1, "country_code": "NL"}, {"id": 2}, {"id": 3}]`
	s := New(t, Options{Probes: []byte(probes)})

	code, v := get(t, s.URL+"/api/v2/probes/?id__in=1,3&page_size=1", "")
	if code != 200 || v["count"] != float64(2) || !strings.HasPrefix(v["next"].(string), s.URL+"/api/v2/probes/?") || v["previous"] != nil {
		t.Errorf("first page: %d %v", code, v)
	}
	code, v = get(t, v["next"].(string), "Key "+s.Key)
	if res := v["results"].([]any); code != 200 || v["next"] != nil || v["previous"] == nil || len(res) != 1 || res[0].(map[string]any)["id"] != float64(3) {
		t.Errorf("second page: %d %v", code, v)
	}

	for _, tc := range []struct {
		url, auth string
		code      int
		detail    string
	}{
		{"/api/v2/probes/", "Bearer " + s.Key, 401, "The API key is not valid."},
		{"/api/v2/probes/", "Key nope", 401, "The API key is not valid."},
		{"/api/v2/probes/?id__in=1,x", "", 400, "There were problems with your request"},
		{"/api/v2/measurements/5/results/?start=yesterday", "", 400, "There were problems with your request"},
		{"/api/v2/measurements/5/results/", "", 404, "No Measurement matches the given query."},
		{"/api/v2/measurements/5/", "", 404, "No Measurement matches the given query."},
	} {
		code, v := get(t, s.URL+tc.url, tc.auth)
		e, _ := v["error"].(map[string]any)
		if code != tc.code || e["status"] != float64(tc.code) || e["detail"] != tc.detail || e["title"] != http.StatusText(tc.code) {
			t.Errorf("%s with %q: %d %v", tc.url, tc.auth, code, v)
		}
	}
	_, v = get(t, s.URL+"/api/v2/measurements/5/results/?start=yesterday", "")
	errs := v["error"].(map[string]any)["errors"].([]any)
	if src := errs[0].(map[string]any)["source"].(map[string]any); src["parameter"] != "start" {
		t.Errorf("the error names %v, want the parameter start", src)
	}
}
