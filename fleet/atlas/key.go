package atlas

import "github.com/catchmap/catchmap/fleet/fleetutil"

// Key is a RIPE Atlas API key: a secret that prints as a placeholder
// everywhere (fmt, slog, JSON, YAML), so that a key logged or wrapped into
// an error by mistake does not leak.
type Key = fleetutil.Secret

// NewKey wraps a key given by a user (config, environment); surrounding
// space is dropped.
func NewKey(s string) Key { return fleetutil.NewSecret(s) }
