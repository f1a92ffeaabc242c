package atlas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/catchmap/catchmap/fleet/fleetutil"
	atlasimport "github.com/catchmap/catchmap/importer/atlas"
)

// idsPerRequest keeps a probes URL short (id__in lists every id) while a
// few requests still cover the thousands of probes of a large
// measurement.
const idsPerRequest = 200

// maxPages bounds how many "next" links one request follows, so that a
// server whose pages never end cannot keep the client going.
const maxPages = 1000

// Probes fetches what Atlas says of the probes ids (GET /api/v2/probes/
// with id__in, following "next"). Probes Atlas does not know are absent
// from the answer.
func (c *Client) Probes(ctx context.Context, ids []int64) (atlasimport.Probes, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ps := atlasimport.Probes{}
	for chunk := range slices.Chunk(ids, idsPerRequest) {
		list := make([]string, len(chunk))
		for i, id := range chunk {
			list[i] = idString(id)
		}
		q := url.Values{"id__in": {strings.Join(list, ",")}, "page_size": {"500"}}
		if err := c.probePages(ctx, c.endpoint("probes")+"?"+q.Encode(), ps); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

func (c *Client) probePages(ctx context.Context, next string, ps atlasimport.Probes) error {
	const op = "reading RIPE Atlas probes"
	for page := 1; next != ""; page++ {
		if page > maxPages {
			return fmt.Errorf("%s: more than %d pages: the server's \"next\" links do not end", op, maxPages)
		}
		b, err := c.call(ctx, op, http.MethodGet, next, nil)
		if err != nil {
			return err
		}
		if next, err = decodeProbesPage(b, ps); err != nil {
			return fmt.Errorf("%s: page %d: %w", op, page, err)
		}
		if next != "" && !c.sameOrigin(next) {
			return fmt.Errorf("%s: page %d links to %q, outside %s: not following it with the key", op, page, next, c.base)
		}
	}
	return nil
}

// decodeProbesPage adds the probes of a page ({"next": ..., "results":
// [...]}) to ps with the importer's reader and returns the next page's
// URL, empty after the last.
func decodeProbesPage(b []byte, ps atlasimport.Probes) (string, error) {
	var page struct {
		Next    *string         `json:"next"`
		Results json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return "", fmt.Errorf("the answer is not a page of probes: %w", err)
	}
	if len(page.Results) == 0 || page.Results[0] != '[' {
		return "", errors.New("the answer is not a page of probes: it has no \"results\" array")
	}
	if err := atlasimport.ReadProbes(bytes.NewReader(page.Results), ps); err != nil {
		return "", err
	}
	if page.Next == nil {
		return "", nil
	}
	return *page.Next, nil
}

// DefaultProbeTTL is how long a ProbeCache trusts what it fetched: hosts
// move probes rarely, and a day bounds how long a moved one is misplaced.
const DefaultProbeTTL = 24 * time.Hour

// maxCachedProbes bounds the cache; Atlas has numbered about 60,000
// probes in all, so it is never reached in practice.
const maxCachedProbes = 100_000

// ProbeCache keeps probe metadata (place, ASNs, country) between polls, so
// that each probe is fetched once a TTL, not once a result. It remembers
// probes Atlas does not know too, for as long. It is safe for concurrent
// use.
type ProbeCache struct {
	client *Client
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[int64]probeEntry
}

type probeEntry struct {
	info    atlasimport.ProbeInfo
	known   bool
	fetched time.Time
}

// NewProbeCache returns a cache that fetches through c and keeps what it
// fetched for ttl (DefaultProbeTTL when zero or less).
func NewProbeCache(c *Client, ttl time.Duration) *ProbeCache {
	return &ProbeCache{client: c, ttl: fleetutil.PositiveOr(ttl, DefaultProbeTTL), now: time.Now, entries: map[int64]probeEntry{}}
}

// Lookup returns the metadata of the probes ids that Atlas knows,
// fetching those it has not got or that are older than the TTL.
func (pc *ProbeCache) Lookup(ctx context.Context, ids []int64) (atlasimport.Probes, error) {
	now := pc.now()
	out := atlasimport.Probes{}
	var missing []int64
	pc.mu.Lock()
	for _, id := range ids {
		e, ok := pc.entries[id]
		switch {
		case !ok || now.Sub(e.fetched) >= pc.ttl:
			missing = append(missing, id)
		case e.known:
			out[id] = e.info
		}
	}
	pc.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	// The lock is not held while fetching: two lookups of the same new
	// probe may both fetch it, which costs a request, not correctness.
	got, err := pc.client.Probes(ctx, missing)
	if err != nil {
		return nil, err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, id := range missing {
		info, known := got[id]
		if known {
			out[id] = info
		}
		if _, ok := pc.entries[id]; ok || len(pc.entries) < maxCachedProbes {
			pc.entries[id] = probeEntry{info: info, known: known, fetched: now}
		}
	}
	return out, nil
}
