package device_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

// fakeTerminal is a buffer that says it is a terminal, as a tty would.
type fakeTerminal struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (f *fakeTerminal) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.Write(p)
}
func (f *fakeTerminal) IsTerminal() bool { return true }
func (f *fakeTerminal) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.String()
}

// A large Update shows a progress bar on a terminal, and nothing when the
// output is not one (a pipe, a file, a buffer).
func TestProgressOfALargeUpdate(t *testing.T) {
	signer := tamtest.Signer(t)
	tamKey, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := cosekey.NewSigner(tamKey, cosekey.AlgESP256)
	payload := bytes.Repeat([]byte("large trusted component "), (3<<20)/24)
	peer := &resendingTAM{key: s, envelope: tamtest.Envelope(t, signer, "big", 1, payload)}
	srv := httptest.NewServer(peer)
	defer srv.Close()

	run := func(out interface {
		Write([]byte) (int, error)
		String() string
	}) string {
		o := device.Options{StateDir: filepath.Join(t.TempDir(), "state"), TAM: srv.URL + "/tam", TEEs: []string{"a"},
			TAMKeys: []*cosekey.Key{tamKey.PublicKey()}, SignerKeys: []*cosekey.Key{signer.PublicKey()}, Retry: fastRetry, Once: true,
			Progress: out}
		d, err := device.Open(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	tty := run(&fakeTerminal{})
	// The peer streams its answer chunked (no Content-Length): the bar is
	// an open-ended byte counter, drawn once a MiB has arrived.
	if !strings.HasPrefix(tty, "\rreceiving from TAM 1.") || !strings.Contains(tty, "receiving from TAM 3.0 MiB\n") {
		t.Fatalf("no progress bar on a terminal: %q", tty)
	}
	if quiet := run(&lockedBuffer{}); quiet != "" {
		t.Fatalf("progress written to a non-terminal: %q", quiet)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
