package tam_test

import (
	"errors"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/tamtest"
)

func bulkKeys(t *testing.T, n int) []*cosekey.Key {
	t.Helper()
	out := make([]*cosekey.Key, n)
	for i := range out {
		out[i] = mustKey(t, -9)
	}
	return out
}

// TestAddAgents: keys registered in bulk (more than one batch) are
// pre-registered devices with their labels, and one of them then runs a
// real session that installs a component required by label.
func TestAddAgents(t *testing.T) {
	f := newFixture(t)
	keys := bulkKeys(t, tam.BulkBatch+3)
	n, err := f.eng.AddAgents(ctx, keys, []string{"fleet"})
	if err != nil || n != len(keys) {
		t.Fatalf("AddAgents: %d, %v", n, err)
	}
	devs, err := f.eng.Devices(ctx)
	if err != nil || len(devs) != len(keys) {
		t.Fatalf("devices: %d, %v", len(devs), err)
	}
	for _, d := range devs {
		if !d.Preregistered || len(d.Labels) != 1 || d.Labels[0] != "fleet" || d.Status != tam.StatusRegistered {
			t.Fatalf("device %x: %+v", d.KID, d)
		}
	}
	id := f.add(f.tc("bulk-app", 1, []byte("payload")))
	f.require(id, tam.Required, tam.ScopeLabel, "fleet")
	last := keys[len(keys)-1]
	a := f.agent(tamtest.AgentOptions{Key: last})
	if _, err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := f.eng.DeviceInfo(ctx, last.KID(), 0)
	if err != nil || len(info.Installed) != 1 || info.Installed[0].Sequence != 1 {
		t.Fatalf("installed: %+v %v", info.Installed, err)
	}
	// Again: re-labelled, not duplicated.
	if _, err := f.eng.AddAgents(ctx, keys[:2], []string{"other"}); err != nil {
		t.Fatal(err)
	}
	if devs, _ := f.eng.Devices(ctx); len(devs) != len(keys) {
		t.Fatalf("re-registration duplicated devices: %d", len(devs))
	}
}

// TestAddAgentsRefused: a bad label or a missing key fails before anything
// is written.
func TestAddAgentsRefused(t *testing.T) {
	f := newFixture(t)
	keys := bulkKeys(t, 3)
	for name, c := range map[string]struct {
		keys   []*cosekey.Key
		labels []string
	}{
		"bad label":   {keys, []string{"bad label with spaces\x00"}},
		"missing key": {append(keys[:2:2], nil), nil},
	} {
		if _, err := f.eng.AddAgents(ctx, c.keys, c.labels); !errors.Is(err, tam.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if devs, _ := f.eng.Devices(ctx); len(devs) != 0 {
		t.Fatalf("a refused call wrote %d devices", len(devs))
	}
}

// TestFillHistory: the rows of N rounds are written through the store:
// each device has its reports (bounded by KeepReports) and a last-seen
// time, and still runs a real session after; an unknown device fails its
// batch atomically.
func TestFillHistory(t *testing.T) {
	f := newFixture(t, func(c *tam.Config) { c.KeepReports = 5 })
	keys := bulkKeys(t, 3)
	if _, err := f.eng.AddAgents(ctx, keys, nil); err != nil {
		t.Fatal(err)
	}
	kids := [][]byte{keys[0].KID(), keys[1].KID(), keys[2].KID()}
	n, err := f.eng.FillHistory(ctx, kids, 10)
	if err != nil || n != 10 {
		t.Fatalf("FillHistory: %d, %v", n, err)
	}
	for i, k := range keys {
		info, err := f.eng.DeviceInfo(ctx, k.KID(), 100)
		if err != nil {
			t.Fatal(err)
		}
		want := 3 // rounds 0..9 over 3 devices: 4, 3, 3
		if i == 0 {
			want = 4
		}
		if len(info.Reports) != want || info.LastSeen.IsZero() {
			t.Errorf("device %d: %d reports, last seen %v; want %d", i, len(info.Reports), info.LastSeen, want)
		}
	}
	if _, err := f.eng.FillHistory(ctx, kids, 20); err != nil {
		t.Fatal(err)
	}
	if info, _ := f.eng.DeviceInfo(ctx, keys[0].KID(), 100); len(info.Reports) != 5 {
		t.Errorf("KeepReports 5: %d reports kept", len(info.Reports))
	}
	id := f.add(f.tc("history-app", 1, []byte("payload")))
	f.require(id, tam.Required, tam.ScopeAll, "")
	if _, err := f.agent(tamtest.AgentOptions{Key: keys[1]}).Sync(ctx); err != nil {
		t.Fatalf("a session after the history: %v", err)
	}

	before := f.dump()
	unknown := mustKey(t, -9).KID()
	if _, err := f.eng.FillHistory(ctx, [][]byte{kids[2], unknown}, 4); !errors.Is(err, tam.ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
	if after := f.dump(); after != before {
		t.Error("a failed history batch changed the store")
	}
	for _, r := range []int{-1, tam.MaxHistoryRounds + 1} {
		if _, err := f.eng.FillHistory(ctx, kids, r); !errors.Is(err, tam.ErrInvalid) {
			t.Errorf("rounds %d: %v", r, err)
		}
	}
	if _, err := f.eng.FillHistory(ctx, nil, 1); !errors.Is(err, tam.ErrInvalid) {
		t.Errorf("no devices: %v", err)
	}
}
