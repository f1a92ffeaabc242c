package spec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A plan entry's allow_class_in reaches the identifier, from JSON (the API)
// and from YAML (plan files) alike.
func TestAllowClassIN(t *testing.T) {
	var fromJSON, fromYAML Spec
	if err := json.Unmarshal([]byte(`{"target": "192.0.2.53", "allow_class_in": true}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte("target: 192.0.2.53\nallow_class_in: true\n"), &fromYAML); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Spec{fromJSON, fromYAML} {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		id, err := NewIdentifier(&s)
		if err != nil {
			t.Fatal(err)
		}
		if !s.AllowClassIN || !id.AllowClassIN {
			t.Errorf("spec %+v: identifier allows class IN: %v, want true", s, id.AllowClassIN)
		}
	}
	if b, err := json.Marshal(Spec{Target: "x"}); err != nil || string(b) != `{"target":"x","method":""}` {
		t.Errorf("a spec without it writes %s, %v: want the field left out", b, err)
	}
}

// A plan entry (PUT /api/v1/targets) and measure both validate with
// Validate: a qname whose trailing backslash escapes the final dot is a bad
// spec that names the qname.
func TestValidateQNameBackslash(t *testing.T) {
	s := Spec{Target: "192.0.2.53", QName: `hostname.bind\`}
	if err := s.Validate(); !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), `qname "hostname.bind\\" ends in a backslash`) {
		t.Errorf("Validate: %v, want a bad spec naming the qname", err)
	}
}
