// Package control is the HTTP API between a sweep's driver (`catchmap
// sweep run`) and the catchers at the sites (`catchmap catch`): the JSON
// shapes and a client. Under /v1, with a bearer token:
//
//	GET    /v1/status                  the catcher: site, anycast address, rate cap, counters
//	PUT    /v1/sweeps/{id}             an order: catch this sweep (and, for a sender, send its share)
//	POST   /v1/sweeps/{id}/start       a sender starts sending
//	GET    /v1/sweeps/{id}             the sweep's progress and counts
//	GET    /v1/sweeps/{id}/replies     what was kept, as NDJSON of Reply
//	DELETE /v1/sweeps/{id}             stop sending and forget the sweep
//
// Errors are JSON {"error": "..."}: 4xx for what a retry cannot fix, 5xx
// for what it can.
package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/catchmap/catchmap/sweep/payload"
)

// Reply classes. A catcher keeps caught, other_source and forged replies
// of the sweeps it knows; stray ones it only counts.
const (
	// Caught: a verified reply from the probed address.
	Caught = "caught"
	// OtherSource: a verified reply from another address than the probed
	// one; it counts for the probed /24.
	OtherSource = "other_source"
	// Forged: names a sweep the catcher knows, but its MAC is wrong.
	Forged = "forged"
	// Stray: an unknown sweep or an unparseable payload.
	Stray = "stray"
)

// Classes lists the reply classes in the order reports show them.
var Classes = []string{Caught, OtherSource, Forged, Stray}

// Status is a catcher.
type Status struct {
	Site    string `json:"site"`
	Anycast string `json:"anycast"`
	// MaxRate is the highest rate, in packets per second, this site sends
	// at for any sweep (catch --max-rate).
	MaxRate int `json:"max_rate"`
	// ReadBuffer is the catching socket's receive buffer, in bytes.
	ReadBuffer int `json:"read_buffer"`
	// Sent counts the echo requests this site sent since start, for every
	// sweep.
	Sent uint64 `json:"sent"`
	// Replies counts every reply caught since start, by class.
	Replies map[string]uint64 `json:"replies"`
	// KernelDrops counts replies the kernel dropped on the catching
	// socket's full buffer since start.
	KernelDrops uint64        `json:"kernel_drops"`
	Sweeps      []SweepStatus `json:"sweeps"`
}

// Order asks a catcher to catch a sweep's replies and, with Send, to send
// a share of its probes.
type Order struct {
	ID payload.ID `json:"id"`
	// Key is the sweep's MAC key in hex (payload.Key.Hex).
	Key     string `json:"key"`
	Contact string `json:"contact"`
	// TTLMillis is how long the catcher keeps the sweep without hearing
	// from the driver again: then it stops and forgets it.
	TTLMillis int64      `json:"ttl_ms"`
	Send      *SendOrder `json:"send,omitempty"`
}

// SendOrder is a sender's share of a sweep.
type SendOrder struct {
	// Rate in packets per second.
	Rate int `json:"rate"`
	// Targets are the addresses to probe, in order, packed as 4 bytes
	// each, big-endian (base64 in JSON).
	Targets []byte `json:"targets"`
	// WithinMillis bounds the sending time: what is not sent by then is
	// not sent.
	WithinMillis int64 `json:"within_ms"`
}

// PackTargets packs addresses for SendOrder.Targets.
func PackTargets(targets []uint32) []byte {
	b := make([]byte, 0, 4*len(targets))
	for _, t := range targets {
		b = binary.BigEndian.AppendUint32(b, t)
	}
	return b
}

// UnpackTargets reads SendOrder.Targets.
func UnpackTargets(b []byte) ([]uint32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("targets: %d bytes is not a whole number of IPv4 addresses", len(b))
	}
	ts := make([]uint32, len(b)/4)
	for i := range ts {
		ts[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return ts, nil
}

// Sweep states at a catcher.
const (
	// StateCatching: replies are caught; this site sends nothing (yet).
	StateCatching = "catching"
	// StateSending: this site is sending its share.
	StateSending = "sending"
	// StateSent: this site has sent its share (all that its lists allow).
	StateSent = "sent"
	// StateStopped: sending was stopped before the end (DELETE, TTL, the
	// time bound or the catcher's shutdown).
	StateStopped = "stopped"
	// StateFailed: the sending socket failed.
	StateFailed = "failed"
)

// SweepStatus is one sweep at one catcher.
type SweepStatus struct {
	ID    payload.ID `json:"id"`
	State string     `json:"state"`
	// Targets is the size of this site's share; 0 for a catcher that
	// does not send.
	Targets int `json:"targets"`
	Rate    int `json:"rate,omitempty"`
	// Sent counts echo requests the kernel took; Blocked the targets the
	// site's allow and block lists kept from being sent; SendErrors those
	// the kernel refused.
	Sent       int       `json:"sent"`
	Blocked    int       `json:"blocked"`
	SendErrors int       `json:"send_errors"`
	Started    time.Time `json:"started,omitzero"`
	Finished   time.Time `json:"finished,omitzero"`
	// Replies counts this sweep's replies by class; its stray count is the
	// strays caught while the sweep was known (strays name no sweep).
	Replies map[string]uint64 `json:"replies"`
	// KernelDrops and StoreDropped count replies lost while the sweep was
	// known: on the socket's full buffer, or by a full store.
	KernelDrops  uint64 `json:"kernel_drops"`
	StoreDropped uint64 `json:"store_dropped"`
	Error        string `json:"error,omitempty"`
}

// Done reports whether the sweep's sending is over at this site.
func (s SweepStatus) Done() bool {
	return s.State == StateSent || s.State == StateStopped || s.State == StateFailed
}

// Reply is one reply a catcher kept.
type Reply struct {
	Sweep payload.ID `json:"sweep"`
	Class string     `json:"class"`
	// Target is the probed address and Sender the sending site, as the
	// payload says; From is the reply's source.
	Target  netip.Addr `json:"target"`
	From    netip.Addr `json:"from"`
	Sender  string     `json:"sender"`
	Catcher string     `json:"catcher"`
	// Sent is the sender's clock, Received the catcher's.
	Sent     time.Time `json:"sent"`
	Received time.Time `json:"received"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

// ErrNotFound is a sweep the catcher does not know.
var ErrNotFound = errors.New("the catcher does not know this sweep")
