package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/catchmap/catchmap/api"
	"github.com/catchmap/catchmap/api/token"
	"github.com/catchmap/catchmap/internal/termtext"
)

// The admin commands (probes, targets) drive an aggregator's API. They exit
// 0 when done, 1 when the aggregator refused (401, 400, 404...), and 2 on
// bad usage or when the aggregator cannot be reached at all.

const (
	aggregatorEnv     = "CATCHMAP_AGGREGATOR"
	defaultAggregator = "http://127.0.0.1:8080"
	// adminTimeout bounds one admin request.
	adminTimeout = 30 * time.Second
	// maxAdminAnswer bounds what an admin command reads from the aggregator.
	maxAdminAnswer = 16 << 20
	// maxPlanFile bounds a plan file, as the aggregator bounds its body.
	maxPlanFile = 4 << 20
)

// adminFlags say which aggregator to drive, and with what token.
type adminFlags struct {
	Aggregator string `help:"Aggregator URL; default $CATCHMAP_AGGREGATOR, else http://127.0.0.1:8080." placeholder:"URL"`
	Token      string `help:"Admin token; prefer $CATCHMAP_ADMIN_TOKEN, as flags show in ps." placeholder:"TOKEN"`
	tlsFlags   `embed:""`
}

// aggregatorURL is the aggregator a command drives: its --aggregator
// flag, else $CATCHMAP_AGGREGATOR, else the default.
func aggregatorURL(e *env, flag string) string {
	if flag != "" {
		return flag
	}
	if v := e.getenv(aggregatorEnv); v != "" {
		return v
	}
	return defaultAggregator
}

// adminToken is a command's --token flag, else $CATCHMAP_ADMIN_TOKEN.
func adminToken(e *env, flag string) token.Token {
	if tok := token.Parse(flag); !tok.IsZero() {
		return tok
	}
	return token.Parse(e.getenv(adminTokenEnv))
}

// adminClient talks to one aggregator for one command; cmd prefixes its
// messages.
type adminClient struct {
	cmd string
	api *api.Client
}

// client checks the flags. Routes that need the admin token fail early
// without one; the read route (targets get) sends whatever token is set.
func (f *adminFlags) client(e *env, cmd string, needAdmin bool) (*adminClient, error) {
	base := aggregatorURL(e, f.Aggregator)
	tok := adminToken(e, f.Token)
	if tok.IsZero() && !needAdmin {
		tok = token.Parse(e.getenv(readTokenEnv))
	}
	hc, err := f.httpClient(cmd, 0)
	if err != nil {
		return nil, err
	}
	ac, err := api.NewClient(base, tok, hc)
	if err != nil {
		return nil, usageErrorf("%s: --aggregator %q is not an http(s) URL: use e.g. %s", cmd, base, defaultAggregator)
	}
	if tok.IsZero() && needAdmin {
		return nil, usageErrorf("%s: no admin token: set $%s (or --token) to the aggregator's admin token", cmd, adminTokenEnv)
	}
	ac.UserAgent = "catchmap-admin"
	ac.MaxAnswer = maxAdminAnswer
	return &adminClient{cmd: cmd, api: ac}, nil
}

// call runs one call of the API client within the admin timeout.
// Refusals come back as exit 1 with the aggregator's message; no answer at
// all as exit 2.
func (c *adminClient) call(ctx context.Context, fn func(context.Context, *api.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	err := fn(ctx, c.api)
	var ne *api.NetError
	var se *api.StatusError
	var ae *api.AnswerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ne) && errors.Is(err, context.DeadlineExceeded):
		return &exitError{code: exitUsage, msg: fmt.Sprintf("%s: the aggregator at %s did not answer within %s", c.cmd, c.api.Base(), adminTimeout)}
	case errors.As(err, &ne):
		return &exitError{code: exitUsage, msg: fmt.Sprintf("%s: cannot reach the aggregator at %s: %v: check --aggregator (or $%s) and that catchmap serve runs there",
			c.cmd, c.api.Base(), ne.Err, aggregatorEnv)}
	case errors.As(err, &se):
		// The aggregator's own message says what was wrong; it never
		// carries a token.
		status := fmt.Sprintf("%d %s", se.Status, http.StatusText(se.Status))
		if se.Auth() {
			return &exitError{code: exitFail, msg: fmt.Sprintf("%s: the aggregator refused the token (%s): %s: check $%s (or --token)", c.cmd, status, se.Message, adminTokenEnv)}
		}
		return &exitError{code: exitFail, msg: fmt.Sprintf("%s: the aggregator answered %s: %s", c.cmd, status, se.Message)}
	case errors.As(err, &ae):
		return &exitError{code: exitFail, msg: fmt.Sprintf("%s: the answer from %s is not what a catchmap aggregator sends (%v): check --aggregator", c.cmd, c.api.Base(), ae.Err)}
	}
	return usageErrorf("%s: --aggregator %q: %v", c.cmd, c.api.Base(), err)
}

// targets is GET /api/v1/targets, the plan.
func (c *adminClient) targets(ctx context.Context) (api.Plan, error) {
	var p api.Plan
	err := c.call(ctx, func(ctx context.Context, ac *api.Client) (err error) {
		p, err = ac.Targets(ctx)
		return err
	})
	return p, err
}

type probesCmd struct {
	Add    probesAddCmd    `cmd:"" help:"Register a probe: prints its id and its token, which is shown only this once."`
	List   probesListCmd   `cmd:"" help:"List the registered probes."`
	Revoke probesRevokeCmd `cmd:"" help:"Revoke a probe: its token stops working at once."`
}

type probesAddCmd struct {
	adminFlags `embed:""`
	Name       string   `help:"Name people recognise, such as ams-home-1." required:""`
	Lat        *float64 `help:"Latitude, -90 to 90 (with --lon). Unset: the aggregator places the probe by its address when it has GeoIP data." placeholder:"DEG"`
	Lon        *float64 `help:"Longitude, -180 to 180 (with --lat)." placeholder:"DEG"`
	Label      []string `help:"Label KEY=VALUE, repeatable; plan entries select probes by label." sep:"none" placeholder:"KEY=VALUE"`
	JSON       bool     `name:"json" help:"Print the answer as JSON."`
}

// parseLabels reads KEY=VALUE flags; the aggregator checks the key's
// characters, so only the shape is checked here.
func parseLabels(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(flags))
	for _, l := range flags {
		k, v, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: use KEY=VALUE, such as provider=hetzner", l)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("--label %q: key %q given twice", l, k)
		}
		m[k] = v
	}
	return m, nil
}

func (c *probesAddCmd) Run(e *env) error {
	const cmd = "probes add"
	if (c.Lat == nil) != (c.Lon == nil) {
		return usageErrorf("%s: give both --lat and --lon, or neither", cmd)
	}
	labels, err := parseLabels(c.Label)
	if err != nil {
		return usageErrorf("%s: %v", cmd, err)
	}
	cl, err := c.client(e, cmd, true)
	if err != nil {
		return err
	}
	reg := api.ProbeRegistration{Name: c.Name, Lat: c.Lat, Lon: c.Lon, Labels: labels}
	var got api.ProbeCreated
	if err := cl.call(e.ctx, func(ctx context.Context, ac *api.Client) (err error) {
		got, err = ac.RegisterProbe(ctx, reg)
		return err
	}); err != nil {
		return err
	}
	if c.JSON {
		return writeJSON(e.stdout, got)
	}
	fmt.Fprintf(e.stdout, "id: %s\ntoken: %s\n", got.ID, got.Token)
	fmt.Fprintf(e.stderr, "catchmap: probe %q registered; the token is shown only this once (the aggregator keeps its hash): give it to the agent as $CATCHMAP_TOKEN\n", c.Name)
	return nil
}

type probesListCmd struct {
	adminFlags `embed:""`
	JSON       bool `name:"json" help:"Print the probes as JSON, as the API gives them."`
}

func (c *probesListCmd) Run(e *env) error {
	cl, err := c.client(e, "probes list", true)
	if err != nil {
		return err
	}
	var ps []api.Probe
	if err := cl.call(e.ctx, func(ctx context.Context, ac *api.Client) (err error) {
		ps, err = ac.Probes(ctx)
		return err
	}); err != nil {
		return err
	}
	if c.JSON {
		return writeJSON(e.stdout, ps)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tLAT\tLON\tLABELS\tLAST SEEN\tSTATUS")
	for _, p := range ps {
		status := "active"
		if p.Revoked {
			status = "revoked"
		}
		seen := "never"
		if p.LastSeen != nil {
			seen = p.LastSeen.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, termtext.Printable(p.Name), coord(p.Lat), coord(p.Lon),
			termtext.Printable(labelList(p.Labels)), seen, status)
	}
	return tw.Flush()
}

func coord(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

// labelList prints labels sorted, as key=value,key=value.
func labelList(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	ls := make([]string, 0, len(m))
	for k, v := range m {
		ls = append(ls, k+"="+v)
	}
	slices.Sort(ls)
	return strings.Join(ls, ",")
}

type probesRevokeCmd struct {
	adminFlags `embed:""`
	ID         string `arg:"" help:"Probe id, as probes list shows it."`
}

func (c *probesRevokeCmd) Run(e *env) error {
	const cmd = "probes revoke"
	id := strings.TrimSpace(c.ID)
	if id == "" {
		return usageErrorf("%s: empty probe id: see catchmap probes list", cmd)
	}
	cl, err := c.client(e, cmd, true)
	if err != nil {
		return err
	}
	if err := cl.call(e.ctx, func(ctx context.Context, ac *api.Client) error { return ac.RevokeProbe(ctx, id) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "probe %s revoked: its token no longer works\n", id)
	return nil
}

type targetsCmd struct {
	Get targetsGetCmd `cmd:"" help:"Print the measurement plan."`
	Put targetsPutCmd `cmd:"" help:"Replace the measurement plan with a YAML or JSON file."`
}

type targetsGetCmd struct {
	adminFlags `embed:""`
	Format     string `help:"Output format: json or yaml; both are what targets put reads." enum:"json,yaml" default:"json"`
}

func (c *targetsGetCmd) Run(e *env) error {
	cl, err := c.client(e, "targets get", false)
	if err != nil {
		return err
	}
	p, err := cl.targets(e.ctx)
	if err != nil {
		return err
	}
	if p.Targets == nil {
		p.Targets = []api.Target{}
	}
	if c.Format == "yaml" {
		// Through the JSON form, as parsePlan reads YAML: api.Target has no
		// YAML form of its own.
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("targets get: %w", err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("targets get: %w", err)
		}
		enc := yaml.NewEncoder(e.stdout)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("targets get: writing YAML: %w", err)
		}
		return enc.Close()
	}
	return writeJSON(e.stdout, p)
}

type targetsPutCmd struct {
	adminFlags `embed:""`
	File       string `arg:"" help:"Plan file: YAML (.yaml, .yml) or JSON (.json); '-' reads stdin, either format." placeholder:"FILE"`
}

func (c *targetsPutCmd) Run(e *env) error {
	const cmd = "targets put"
	data, err := readPlanFile(e, c.File)
	if err != nil {
		return usageErrorf("%s: %v", cmd, err)
	}
	p, err := parsePlan(c.File, data)
	if err != nil {
		return usageErrorf("%s: %v", cmd, err)
	}
	cl, err := c.client(e, cmd, true)
	if err != nil {
		return err
	}
	var got api.Plan
	if err := cl.call(e.ctx, func(ctx context.Context, ac *api.Client) (err error) {
		got, err = ac.PutTargets(ctx, p)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "plan version %s: %d targets\n", got.Version, len(got.Targets))
	for _, t := range got.Targets {
		fmt.Fprintf(e.stdout, "  %s\t%s %s every %s\n", termtext.Printable(t.Name), t.Method, termtext.Printable(t.Target), t.Interval.D())
	}
	return nil
}

func readPlanFile(e *env, name string) ([]byte, error) {
	var r io.Reader = e.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxPlanFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxPlanFile {
		return nil, fmt.Errorf("%s: larger than %d bytes, the most the aggregator takes", name, maxPlanFile)
	}
	return data, nil
}

// parsePlan reads a plan file strictly, so that a misspelt key fails here
// rather than being dropped: JSON when the name ends in .json, or when the
// text starts with '{' and the name is not YAML's; YAML otherwise. YAML goes
// through its JSON form, because api.Target cannot be decoded as YAML (its
// interval key is also the inline spec.Spec's, which yaml refuses): one
// decoder then gives one meaning, the aggregator's. The aggregator
// validates the entries themselves.
func parsePlan(name string, data []byte) (api.Plan, error) {
	var p api.Plan
	ext := strings.ToLower(filepath.Ext(name))
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return p, fmt.Errorf("%s: empty: write targets: with a list of entries (an empty list clears the plan)", name)
	}
	format := "JSON"
	if ext != ".json" && (ext == ".yaml" || ext == ".yml" || trimmed[0] != '{') {
		format = "YAML"
		var err error
		if data, err = yamlToJSON(data); err != nil {
			return p, fmt.Errorf("%s: bad YAML plan: %w", name, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%s: bad %s plan: %w", name, format, err)
	}
	if dec.More() {
		return p, fmt.Errorf("%s: more than one JSON value: keep one plan object", name)
	}
	if p.Targets == nil {
		return p, fmt.Errorf("%s: targets: missing: list the entries under targets: (targets: [] clears the plan)", name)
	}
	return p, nil
}

// yamlToJSON converts one YAML document; duplicate keys, more documents
// and values JSON cannot hold are errors.
func yamlToJSON(data []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("no YAML document")
		}
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: keep one plan")
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("a value has no JSON form (keys must be text): %w", err)
	}
	return out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
