package jsonx

import (
	"bytes"
	"encoding/json"
	"math"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

type inner struct {
	F   float64  `json:"f"`
	P   *float64 `json:"p,omitempty"`
	S   string   `json:"s,omitempty"`
	Raw []byte   `json:"raw,omitempty"`
}

type Embedded struct {
	E1 int    `json:"e1"`
	E2 string `json:"e2,omitempty"`
}

type sample struct {
	Embedded
	Name    string             `json:"name"`
	When    time.Time          `json:"when"`
	Addr    netip.Addr         `json:"addr"`
	Every   time.Duration      `json:"every"`
	Shares  map[string]float64 `json:"shares"`
	ByN     map[int]string     `json:"by_n,omitempty"`
	Inner   *inner             `json:"inner,omitempty"`
	List    []inner            `json:"list"`
	Any     any                `json:"any"`
	Skipped string             `json:"-"`
	NoTag   bool
	F32     float32 `json:"f32"`
	U       uint32  `json:"u,omitempty"`
	private int
}

func ptr[T any](v T) *T { return &v }

// reference is encoding/json, HTML-escaping or not.
func reference(t *testing.T, v any, html bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

func samples() []any {
	s := sample{Embedded: Embedded{E1: 3}, Name: "<a&b> \u2028 \x01 é", When: time.Date(2026, 12, 4, 1, 2, 3, 4, time.FixedZone("x", 3600)),
		Addr: netip.MustParseAddr("2001:db8::1"), Every: time.Minute, Shares: map[string]float64{"z": 1e-7, "a": 0.5, "m": 1e21},
		ByN: map[int]string{10: "x", 2: "y"}, Inner: &inner{F: math.Copysign(0, -1), P: ptr(123456789.125), Raw: []byte{0, 255}},
		List: []inner{{F: 1e-300}, {F: math.MaxFloat64, S: "\ufffd"}}, Any: map[string]any{"k": []any{1.5, "s", nil, true}},
		NoTag: true, F32: 3.4e-7, U: 7, private: 1}
	return []any{s, &s, sample{}, []sample{s, {}}, nil, 0.1 + 0.2, "plain", map[string]*inner{"n": nil}}
}

// TestNullableIsEncodingJSON: where encoding/json succeeds, the fallback
// that writes null for NaN gives its bytes exactly.
func TestNullableIsEncodingJSON(t *testing.T) {
	for _, html := range []bool{false, true} {
		for i, v := range samples() {
			want := reference(t, v, html)
			got, err := nullable{html}.append(nil, reflect.ValueOf(v))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("html %v, sample %d: %v\n got %s\nwant %s", html, i, err, got, want)
			}
			a, err := appendJSON(nil, v, html)
			if err != nil || !bytes.Equal(a, want) {
				t.Errorf("html %v, sample %d: appendJSON %v\n got %s\nwant %s", html, i, err, a, want)
			}
		}
	}
}

// TestNonFiniteIsNull: NaN and infinities become null where encoding/json
// would fail, and the rest stays as it would be.
func TestNonFiniteIsNull(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		v := sample{Name: "n", Shares: map[string]float64{"a": f, "b": 1}, Inner: &inner{F: f, P: ptr(f)}, F32: float32(f)}
		if _, err := json.Marshal(v); err == nil {
			t.Fatalf("encoding/json took %v", f)
		}
		got, err := Marshal(v)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		var back map[string]any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%v: not JSON: %s", f, got)
		}
		in := back["inner"].(map[string]any)
		if back["shares"].(map[string]any)["a"] != nil || back["shares"].(map[string]any)["b"] != 1.0 ||
			in["f"] != nil || in["p"] != nil || back["f32"] != nil || back["name"] != "n" {
			t.Errorf("%v: %s", f, got)
		}
	}
}

// FuzzFloat: AppendFloat is encoding/json's number for every finite float.
func FuzzFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 1e-6, 1e-7, 1e21, 1e20, 0.1, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if got := AppendFloat(nil, v, 64); string(got) != "null" {
				t.Fatalf("%v: %s", v, got)
			}
			return
		}
		want, _ := json.Marshal(v)
		if got := AppendFloat(nil, v, 64); !bytes.Equal(got, want) {
			t.Fatalf("%v: %s, want %s", v, got, want)
		}
		want32, _ := json.Marshal(float32(v))
		if got := AppendFloat(nil, float64(float32(v)), 32); !math.IsInf(float64(float32(v)), 0) && !bytes.Equal(got, want32) {
			t.Fatalf("float32 %v: %s, want %s", float32(v), got, want32)
		}
	})
}
