package server

import (
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/catchmap/catchmap/probe/result"
)

type openAPIDoc struct {
	OpenAPI    string                               `yaml:"openapi"`
	Paths      map[string]map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `yaml:"properties"`
		} `yaml:"schemas"`
		Responses  map[string]any `yaml:"responses"`
		Parameters map[string]any `yaml:"parameters"`
	} `yaml:"components"`
}

func readOpenAPI(t *testing.T) (openAPIDoc, string) {
	t.Helper()
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc, string(b)
}

// TestOpenAPIRoutes checks that every route the server serves is documented
// and every documented route is served.
func TestOpenAPIRoutes(t *testing.T) {
	doc, _ := readOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" || op["x-mounted-by"] == "app" { // app routes: checked in aggregator/app
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, path)
			}
		}
	}
	s, err := New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	served := s.Patterns()
	sort.Strings(documented)
	sort.Strings(served)
	if !reflect.DeepEqual(documented, served) {
		t.Errorf("routes differ:\ndocumented %q\n    served %q", documented, served)
	}
}

// TestOpenAPIRefs checks that every $ref resolves.
func TestOpenAPIRefs(t *testing.T) {
	doc, text := readOpenAPI(t)
	for _, m := range regexp.MustCompile(`\$ref: "#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(text, -1) {
		var ok bool
		switch m[1] {
		case "schemas":
			_, ok = doc.Components.Schemas[m[2]]
		case "responses":
			_, ok = doc.Components.Responses[m[2]]
		case "parameters":
			_, ok = doc.Components.Parameters[m[2]]
		}
		if !ok {
			t.Errorf("dangling %s", m[0])
		}
	}
}

// TestOpenAPIRecord checks that the Record schema has every JSON field of
// result.Record, so that the document follows the contract.
func TestOpenAPIRecord(t *testing.T) {
	doc, _ := readOpenAPI(t)
	props := doc.Components.Schemas["Record"].Properties
	rt := reflect.TypeFor[result.Record]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if _, ok := props[name]; !ok {
			t.Errorf("Record schema lacks %q", name)
		}
	}
	if len(props) != rt.NumField() {
		t.Errorf("Record schema has %d properties, result.Record %d fields", len(props), rt.NumField())
	}
}
