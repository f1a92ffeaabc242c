package atlas

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Status is a measurement's status id, as Atlas numbers them.
type Status int

// The statuses. Specified, Scheduled and Ongoing are a measurement's life;
// Stopped is its normal end (stopped by its owner, a one-off done, or its
// stop time reached); the others are Atlas ending it by itself.
const (
	Specified        Status = 0
	Scheduled        Status = 1
	Ongoing          Status = 2
	Stopped          Status = 4
	ForcedToStop     Status = 5
	NoSuitableProbes Status = 6
	Failed           Status = 7
	Denied           Status = 8
	Canceled         Status = 9
)

var statusNames = map[Status]string{
	Specified: "Specified", Scheduled: "Scheduled", Ongoing: "Ongoing", Stopped: "Stopped",
	ForcedToStop: "Forced to stop", NoSuitableProbes: "No suitable probes", Failed: "Failed",
	Denied: "Denied", Canceled: "Canceled",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "status " + strconv.Itoa(int(s))
}

// Running reports whether the measurement has not ended.
func (s Status) Running() bool { return s >= Specified && s <= Ongoing }

// ErrStoppedByAtlas is wrapped by Measurement.StoppedByAtlas's errors.
var ErrStoppedByAtlas = errors.New("RIPE Atlas ended the measurement by itself")

// Measurement is what GET /api/v2/measurements/{id}/ says of a measurement.
type Measurement struct {
	ID          int64
	Type        string
	AF          int
	Target      string
	Description string
	OneOff      bool
	Interval    time.Duration // zero for a one-off
	Start, Stop time.Time     // zero when not (yet) set
	Status      Status
	// StatusName is Atlas's word for the status; StatusSince is when it
	// took it, zero when Atlas does not say.
	StatusName  string
	StatusSince time.Time
	// ProbesRequested is what the selections asked for, ProbesScheduled
	// how many Atlas found, Participants how many took part.
	ProbesRequested, ProbesScheduled, Participants int
}

// StoppedByAtlas says why Atlas ended the measurement by itself, an error
// wrapping ErrStoppedByAtlas; nil while it runs or when it ended normally.
func (m *Measurement) StoppedByAtlas() error {
	if m.Status.Running() || m.Status == Stopped {
		return nil
	}
	var hint string
	switch m.Status {
	case NoSuitableProbes:
		hint = "no probe fits the selection: widen the area, country, asn, prefix or probes"
	case ForcedToStop:
		hint = "it ended before its time: check the account's credits and the measurement's page on Atlas"
	case Failed:
		hint = "Atlas could not run it: check the target and the definition"
	case Denied:
		hint = "Atlas refused it: check the measurement's page on Atlas"
	default:
		hint = "check the measurement's page on Atlas"
	}
	since := ""
	if !m.StatusSince.IsZero() {
		since = " since " + m.StatusSince.UTC().Format(time.RFC3339)
	}
	return fmt.Errorf("%w: measurement %d is %q%s: %s", ErrStoppedByAtlas, m.ID, m.StatusName, since, hint)
}

// Measurement fetches the status of measurement id.
func (c *Client) Measurement(ctx context.Context, id int64) (*Measurement, error) {
	op := "reading RIPE Atlas measurement " + idString(id)
	if id <= 0 {
		return nil, fmt.Errorf("%s: %w", op, errNoID)
	}
	b, err := c.call(ctx, op, http.MethodGet, c.endpoint("measurements", idString(id)), nil)
	if err != nil {
		return nil, err
	}
	m, err := decodeMeasurement(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%s: Atlas answered with measurement %d", op, m.ID)
	}
	return m, nil
}

type measurementJSON struct {
	ID          int64   `json:"id"`
	Type        string  `json:"type"`
	AF          int     `json:"af"`
	Target      string  `json:"target"`
	Description string  `json:"description"`
	IsOneoff    bool    `json:"is_oneoff"`
	Interval    int64   `json:"interval"`
	StartTime   apiTime `json:"start_time"`
	StopTime    apiTime `json:"stop_time"`
	Status      struct {
		ID   *int    `json:"id"`
		Name string  `json:"name"`
		When apiTime `json:"when"`
	} `json:"status"`
	ProbesRequested  int `json:"probes_requested"`
	ProbesScheduled  int `json:"probes_scheduled"`
	ParticipantCount int `json:"participant_count"`
}

func decodeMeasurement(b []byte) (*Measurement, error) {
	var v measurementJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("the answer is not a measurement: %w", err)
	}
	if v.ID <= 0 || v.Status.ID == nil {
		return nil, errors.New("the answer is not a measurement: it has no id or no status")
	}
	if v.Interval < 0 || v.Interval > int64(100*365*24*time.Hour/time.Second) {
		return nil, fmt.Errorf("the answer gives an interval of %d seconds", v.Interval)
	}
	st := Status(*v.Status.ID)
	return &Measurement{
		ID: v.ID, Type: v.Type, AF: v.AF, Target: v.Target, Description: v.Description,
		OneOff: v.IsOneoff, Interval: time.Duration(v.Interval) * time.Second,
		Start: time.Time(v.StartTime), Stop: time.Time(v.StopTime),
		Status: st, StatusName: cmp.Or(v.Status.Name, st.String()), StatusSince: time.Time(v.Status.When),
		ProbesRequested: v.ProbesRequested, ProbesScheduled: v.ProbesScheduled, Participants: v.ParticipantCount,
	}, nil
}

// apiTime reads Atlas's times: Unix seconds by default, ISO 8601 where the
// format asks for it (probes' status.since, for one), or null.
type apiTime time.Time

func (t *apiTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			return nil
		}
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("time %q: %w", s, err)
		}
		*t = apiTime(p.UTC())
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("time %s is neither Unix seconds nor ISO 8601", b)
	}
	if n < 0 || n > maxUnix {
		return fmt.Errorf("time %d is out of range", n)
	}
	*t = apiTime(time.Unix(n, 0).UTC())
	return nil
}

// maxUnix is the end of year 9999, the last a record time can hold.
const maxUnix = 253402300799
