package fleettest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catchmap/catchmap/fleet/fleetutil"
)

// Fixture returns the file name in the testdata folder of the test's
// package.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Answer is a fake's answer to Send.
type Answer struct {
	Status int
	Header http.Header
	// JSON is the body, which must be a JSON object.
	JSON map[string]any
}

// Send sends a request to a fake, with auth as the Authorization header
// when not empty, and reads its JSON answer.
func Send(t testing.TB, method, url, auth, body string) Answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := Answer{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(b, &a.JSON); err != nil {
		t.Fatalf("%s %s: %v: %s", method, url, err, b)
	}
	return a
}

// CancelWhileWaiting checks that a client stops waiting to try again when
// its context ends. setSleep installs the client's sleep; call makes a
// request that fails and waits, and is cancelled once it waits; its error
// must wrap the cancellation's cause and say the failure it waited after
// (want).
func CancelWhileWaiting(t *testing.T, setSleep func(func(context.Context, time.Duration) error), call func(context.Context) error, want string) {
	t.Helper()
	waiting := make(chan struct{})
	setSleep(func(ctx context.Context, d time.Duration) error {
		close(waiting)
		return fleetutil.Sleep(ctx, d)
	})
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	cause := errors.New("the plan entry was removed")
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not start waiting after the failure")
	}
	cancel(cause)
	select {
	case err := <-done:
		if !errors.Is(err, cause) || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want the cause and %q", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not stop waiting when its context ended")
	}
}
