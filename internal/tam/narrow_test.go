package tam_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

// requiredOnly hides every optional interface of a store and of its Tx
// (DeviceStateStore, SteadyRoundStore, NoSyncStore, DeviceSeenTx,
// DeviceSessionTx, ...): the engine then takes its general paths.
type requiredOnly struct{ s tam.Store }

type requiredOnlyTx struct{ tam.Tx }

func (r requiredOnly) Update(ctx context.Context, fn func(tam.Tx) error) error {
	return r.s.Update(ctx, func(tx tam.Tx) error { return fn(requiredOnlyTx{tx}) })
}

func (r requiredOnly) View(ctx context.Context, fn func(tam.Tx) error) error {
	return r.s.View(ctx, func(tx tam.Tx) error { return fn(requiredOnlyTx{tx}) })
}

func (r requiredOnly) Close() error { return r.s.Close() }

// The narrow writes of the optional interfaces (one UPDATE of the device
// row, one statement per steady round) leave the device as the general
// path does, which reads the row and rewrites it: the same script of
// installs, steady rounds, an Agent's errors and an update runs against
// both, on one clock, and the device rows agree after every step.
func TestNarrowDeviceWritesEndAsRewrites(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func(c *tam.Config) { c.Clock = func() time.Time { return now } }
	full := newFixture(t, clock)
	general := newFixture(t, clock, func(c *tam.Config) { c.Store = requiredOnly{c.Store} })
	type side struct {
		f *fixture
		a *tamtest.Agent
	}
	sides := []*side{{f: full}, {f: general}}
	for _, s := range sides {
		id := s.f.add(s.f.tc("app", 1, []byte("x")))
		s.f.require(id, tam.Required, tam.ScopeAll, "")
		s.a = s.f.agent(tamtest.AgentOptions{})
	}
	step := func(what string, fail teep.ErrCode, publish uint64) {
		t.Helper()
		now = now.Add(time.Minute)
		var rows []tam.DeviceInfo
		for _, s := range sides {
			if publish != 0 {
				s.f.add(s.f.tc("app", publish, []byte{byte(publish)}))
			}
			s.a.FailUpdates = fail
			runSession(t, s.a)
			d := s.f.device(s.a.KID())
			// Each side has its own Agent key, UEID and TC signer.
			d.KID, d.Key, d.UEID, d.Reports = nil, nil, nil, nil
			d.Installed, d.Failures, d.Pending = len2(d.Installed), len2(d.Failures), len2(d.Pending)
			rows = append(rows, d)
		}
		if !reflect.DeepEqual(rows[0], rows[1]) {
			t.Fatalf("%s: the devices differ:\n narrow  %+v\n general %+v", what, rows[0], rows[1])
		}
		if rows[0].Device.LastSeen != now {
			t.Fatalf("%s: last_seen %v, want %v", what, rows[0].Device.LastSeen, now)
		}
	}
	step("first install", 0, 0)
	step("steady round", 0, 0)
	step("steady round", 0, 0)
	step("a temporary error", teep.ErrTemporaryError, 2)
	step("retried install", 0, 0)
	for i := 0; i < tam.DefaultMaxInstallAttempts; i++ {
		step("manifest processing failed", teep.ErrManifestProcessingFailed, uint64(3+i))
	}
	step("steady round of a failed device", 0, 0)
	step("an update after the failures", 0, 9)
	step("steady round", 0, 0)
	if d := full.device(sides[0].a.KID()); d.Status != tam.StatusOK {
		t.Fatalf("the script ends with status %s, want ok", d.Status)
	}
}

// len2 keeps only how many items a list has, as a list of zero values, so
// that lists naming each side's own components compare by length.
func len2[T any](l []T) []T { return make([]T, len(l)) }
