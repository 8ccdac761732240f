package device

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// What the commands on a state directory do: ask the running daemon over
// its local socket, or, when none runs, work on the sealed state directly.

// offlineTAM stands in for the TAM URL when only the sealed state is read.
const offlineTAM = "http://unused.invalid/"

func localClient(state string) *broker.LocalClient {
	return broker.NewLocalClient(filepath.Join(state, FileSocket))
}

// Status lists every TEE's status. A TEE that fails to open (tampered,
// locked, gone) is reported in its entry rather than hiding the rest.
func Status(ctx context.Context, state string) ([]broker.TEEStatus, error) {
	sts, err := localClient(state).Status(ctx)
	if errors.Is(err, broker.ErrNotRunning) {
		return offlineStatus(ctx, state)
	}
	return sts, err
}

func offlineStatus(ctx context.Context, state string) ([]broker.TEEStatus, error) {
	cfg, err := LoadConfig(state)
	if err != nil {
		return nil, err
	}
	names := TEENames(state, cfg)
	if len(names) == 0 {
		if _, err := os.Stat(state); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	out := []broker.TEEStatus{}
	for _, n := range names {
		out = append(out, offlineTEEStatus(ctx, state, n))
	}
	return out, nil
}

func offlineTEEStatus(ctx context.Context, state, name string) broker.TEEStatus {
	failed := func(msg string) broker.TEEStatus {
		return broker.TEEStatus{Name: name, Components: []broker.Component{}, Error: msg}
	}
	dir := filepath.Join(state, DirTEE, name)
	if _, err := os.Stat(filepath.Join(dir, "index")); err != nil {
		// Listed but absent (deleted, or never got state): report it rather
		// than create an empty TEE as a side effect.
		return failed("no sealed state in " + dir)
	}
	t, err := openTEE(state, name, teeOptions{tams: []string{offlineTAM}})
	if err != nil {
		return failed(err.Error())
	}
	defer t.TEE.Close()
	st, err := t.Agent.Status(ctx)
	if err != nil {
		return failed(err.Error())
	}
	return *broker.StatusOf(name, st)
}

// RequestResult is the outcome of Request.
type RequestResult struct {
	TEE string
	// Daemon: the running daemon took the request and its TAM session
	// completed. Otherwise the request was recorded in the TEE for the
	// next session, unless Nothing says there was nothing to do (already
	// installed, or not installed for a release).
	Daemon  bool
	Nothing bool
	// TAM is the name of the TAM the request goes to.
	TAM string
}

// ErrUnknownTAM: a request names a TAM the device does not know.
var ErrUnknownTAM = errors.New("unknown TAM")

// Request asks for a Trusted Component (RFC 9397 RequestTA), or with
// want false says it is no longer needed (UnrequestTA), on TEE tee (""
// for the first). tam names the TAM the request goes to, by its name in
// device.json or its URL; "" is the default (first) TAM.
func Request(ctx context.Context, state, tee string, id suit.ComponentID, tam string, want bool) (RequestResult, error) {
	name, tamHint, err := resolveTAM(state, tam)
	if err != nil {
		return RequestResult{}, err
	}
	r, err := request(ctx, state, tee, id, tamHint, want)
	r.TAM = name
	return r, err
}

// resolveTAM finds a TAM of the state directory by name or URL.
func resolveTAM(state, tam string) (name, url string, err error) {
	cfg, err := LoadConfig(state)
	if err != nil {
		return "", "", err
	}
	var t *TAMConfig
	switch {
	case tam == "" && len(cfg.TAMs) > 0:
		t = &cfg.TAMs[0]
	case tam != "":
		if t = cfg.TAM(tam); t == nil {
			t = cfg.TAMByURL(tam)
		}
	}
	if t == nil {
		var known []string
		for _, c := range cfg.TAMs {
			known = append(known, c.Name)
		}
		return "", "", fmt.Errorf("%w %q (the device knows: %s)", ErrUnknownTAM, tam, strings.Join(known, ", "))
	}
	return t.Name, t.URL, nil
}

func request(ctx context.Context, state, tee string, id suit.ComponentID, tamHint string, want bool) (RequestResult, error) {
	c := localClient(state)
	call := c.Request
	if !want {
		call = c.Release
	}
	name, err := call(ctx, tee, id, tamHint)
	if err == nil {
		return RequestResult{TEE: name, Daemon: true}, nil
	}
	if !errors.Is(err, broker.ErrNotRunning) {
		return RequestResult{}, err
	}
	return requestOffline(ctx, state, tee, id, tamHint, want)
}

func requestOffline(ctx context.Context, state, tee string, id suit.ComponentID, tamHint string, want bool) (RequestResult, error) {
	name, err := FirstTEE(state, tee)
	if err != nil {
		return RequestResult{}, err
	}
	t, err := openOffline(state, name)
	if err != nil {
		return RequestResult{}, err
	}
	defer t.TEE.Close()
	call := t.Agent.RequestTA
	if !want {
		call = t.Agent.UnrequestTA
	}
	r, err := call(ctx, id, tamHint)
	if err != nil {
		return RequestResult{}, err
	}
	return RequestResult{TEE: name, Nothing: r.TAMURI == ""}, nil
}

// openOffline opens an existing TEE of the state directory for a command
// run while no daemon holds it.
func openOffline(state, name string) (*TEE, error) {
	cfg, err := LoadConfig(state)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(state, DirTEE, name)); err != nil {
		return nil, fmt.Errorf("no TEE %q in %s", name, state)
	}
	o := teeOptions{numbering: teep.Draft26}
	for _, t := range cfg.TAMs {
		o.tams = append(o.tams, t.URL)
	}
	if cfg.LegacyNumbering {
		o.numbering = teep.Legacy
	}
	t, err := openTEE(state, name, o)
	if err != nil {
		return nil, fmt.Errorf("TEE %s: %w", name, err)
	}
	return t, nil
}

// ErrNoDaemon: Sync needs the daemon, and none runs.
var ErrNoDaemon = errors.New("no daemon runs on the state directory")

// Sync makes the running daemon run a policy check now (RequestPolicyCheck)
// on TEE tee ("" for all) and waits for it; it returns the statuses after.
func Sync(ctx context.Context, state, tee string) ([]broker.TEEStatus, error) {
	c := localClient(state)
	if err := c.Sync(ctx, tee); err != nil {
		if errors.Is(err, broker.ErrNotRunning) {
			return nil, fmt.Errorf("%w: %s", ErrNoDaemon, state)
		}
		return nil, err
	}
	return c.Status(ctx)
}
