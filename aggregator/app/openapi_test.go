package app

import (
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/catchmap/catchmap/aggregator/server"
	"github.com/catchmap/catchmap/maps"
)

// schema is the part of an OpenAPI schema these tests read.
type schema struct {
	Ref        string            `yaml:"$ref"`
	AllOf      []schema          `yaml:"allOf"`
	Properties map[string]schema `yaml:"properties"`
	Items      *schema           `yaml:"items"`
}

type openAPIDoc struct {
	Paths      map[string]map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]schema `yaml:"schemas"`
	} `yaml:"components"`
}

func readOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// documentedPattern is the ServeMux pattern that serves an OpenAPI
// operation: "/" is the exact root ("/{$}"), and a path ending in the
// parameter {path} is a subtree ("/static/{path}" is "/static/").
func documentedPattern(method, path string) string {
	switch {
	case path == "/":
		path = "/{$}"
	case strings.HasSuffix(path, "/{path}"):
		path = strings.TrimSuffix(path, "{path}")
	}
	return strings.ToUpper(method) + " " + path
}

// TestOpenAPIAppRoutes checks that every route of the whole aggregator is
// documented, every documented route is served, and the operations marked
// x-mounted-by: app are exactly those the bare API server lacks (which
// aggregator/server's own test skips).
func TestOpenAPIAppRoutes(t *testing.T) {
	doc := readOpenAPI(t)
	var documented, byApp []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			p := documentedPattern(method, path)
			documented = append(documented, p)
			if op["x-mounted-by"] == "app" {
				byApp = append(byApp, p)
			}
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, path)
			}
		}
	}
	served := newFixture(t, Options{}).app.Patterns()
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Errorf("routes differ:\ndocumented %q\n    served %q", documented, served)
	}

	bare, err := server.New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var appOnly []string
	for _, p := range served {
		if !slices.Contains(bare.Patterns(), p) {
			appOnly = append(appOnly, p)
		}
	}
	sort.Strings(byApp)
	if !slices.Equal(byApp, appOnly) {
		t.Errorf("x-mounted-by: app marks %q, but the app alone mounts %q", byApp, appOnly)
	}
}

// properties collects a schema's properties, through $ref and allOf.
func properties(t *testing.T, doc openAPIDoc, s schema) map[string]schema {
	t.Helper()
	if s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		ref, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("dangling %s", s.Ref)
		}
		return properties(t, doc, ref)
	}
	props := map[string]schema{}
	for _, a := range s.AllOf {
		for k, v := range properties(t, doc, a) {
			props[k] = v
		}
	}
	for k, v := range s.Properties {
		props[k] = v
	}
	return props
}

// jsonFields lists the names a type's JSON has.
func jsonFields(rt reflect.Type) []string {
	var names []string
	for f := range rt.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			names = append(names, jsonFields(f.Type)...)
		case name == "":
			names = append(names, f.Name)
		default:
			names = append(names, name)
		}
	}
	return names
}

// matchFields checks that a schema has exactly the JSON fields of a Go type.
func matchFields(t *testing.T, what string, props map[string]schema, rt reflect.Type, extra ...string) {
	t.Helper()
	want := append(jsonFields(rt), extra...)
	var got []string
	for k := range props {
		got = append(got, k)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s: schema properties %q, %s JSON fields %q", what, got, rt, want)
	}
}

// TestOpenAPIMapsSchemas holds the maps routes' schemas to the types whose
// JSON the routes serve, so a field added to maps cannot go undocumented.
func TestOpenAPIMapsSchemas(t *testing.T) {
	doc := readOpenAPI(t)
	ref := func(name string) map[string]schema {
		return properties(t, doc, schema{Ref: "#/components/schemas/" + name})
	}
	item := func(props map[string]schema, field string) map[string]schema {
		t.Helper()
		s, ok := props[field]
		if !ok || s.Items == nil {
			t.Fatalf("property %q is not a documented array", field)
		}
		return properties(t, doc, *s.Items)
	}
	for _, c := range []struct {
		name  string
		props map[string]schema
		typ   reflect.Type
		extra []string
	}{
		{"Catchment", ref("Catchment"), reflect.TypeFor[maps.Catchment](), nil},
		{"CellStat", ref("CellStat"), reflect.TypeFor[maps.CellStat](), nil},
		{"SiteStat", ref("SiteStat"), reflect.TypeFor[maps.SiteStat](), nil},
		{"Flip", ref("Flip"), reflect.TypeFor[maps.Flip](), nil},
		{"LocationSuspect", ref("LocationSuspect"), reflect.TypeFor[maps.LocationSuspect](), nil},
		{"CellFeatureProperties", ref("CellFeatureProperties"), reflect.TypeFor[maps.CellStat](), []string{"kind"}},
		{"SiteFeatureProperties", ref("SiteFeatureProperties"), reflect.TypeFor[maps.SiteStat](), []string{"kind"}},
		{"Diff", ref("Diff"), reflect.TypeFor[maps.Diff](), nil},
		{"Diff.cells_changed", item(ref("Diff"), "cells_changed"), reflect.TypeFor[maps.CellChange](), nil},
		{"Diff.sites", item(ref("Diff"), "sites"), reflect.TypeFor[maps.SiteShares](), nil},
		{"Diff.cells", item(ref("Diff"), "cells"), reflect.TypeFor[maps.CellCompare](), nil},
		{"Flow", ref("Flow"), reflect.TypeFor[maps.Flow](), nil},
		{"Timeline", ref("Timeline"), reflect.TypeFor[maps.Timeline](), nil},
		{"Timeline.steps", item(ref("Timeline"), "steps"), reflect.TypeFor[maps.Step](), nil},
		{"Shift", ref("Shift"), reflect.TypeFor[maps.Shift](), nil},
		{"Cause", ref("Cause"), reflect.TypeFor[maps.Cause](), nil},
	} {
		matchFields(t, c.name, c.props, c.typ, c.extra...)
	}
	// The GeoJSON's foreign member is the catchment without its cells.
	member := properties(t, doc, ref("CatchmentGeoJSON")["catchment"])
	if _, ok := member["cells"]; ok {
		t.Error("CatchmentGeoJSON.catchment documents cells, which the member leaves out (they are the features)")
	}
	member["cells"] = schema{}
	matchFields(t, "CatchmentGeoJSON.catchment", member, reflect.TypeFor[maps.Catchment]())
}
