package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
)

// NewStore returns a fresh, empty store; the suite closes it.
type NewStore func(t *testing.T) tam.Store

// Run runs the whole suite.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tam.Store)
	}{
		{"Components", testComponents},
		{"ComponentSequence", testComponentSequence},
		{"DeleteComponent", testDeleteComponent},
		{"Policies", testPolicies},
		{"TrustedKeys", testTrustedKeys},
		{"Devices", testDevices},
		{"DeleteDeviceCascades", testDeleteDeviceCascades},
		{"Installed", testInstalled},
		{"Failures", testFailures},
		{"Reports", testReports},
		{"Pending", testPending},
		{"PendingCap", testPendingCap},
		{"UseToken", testUseToken},
		{"PurgeExpired", testPurgeExpired},
		{"Personalization", testPersonalization},
		{"Rollback", testRollback},
		{"ViewIsReadOnly", testViewReadOnly},
		{"ConcurrentTokenUse", testConcurrentTokenUse},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"SequenceLimit", testSequenceLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// base is a fixed time with microsecond precision, the least a store keeps.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func cid(t *testing.T, segs ...string) tam.ComponentID {
	t.Helper()
	bs := make([][]byte, len(segs))
	for i, s := range segs {
		bs[i] = []byte(s)
	}
	id, err := tam.NewComponentID(bs)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func update(t *testing.T, s tam.Store, fn func(tx tam.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s tam.Store, fn func(tx tam.Tx) error) {
	t.Helper()
	if err := s.View(ctx, fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// equal compares after treating nil and empty slices alike, which SQL
// stores cannot tell apart.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(normalize(reflect.ValueOf(got)).Interface(), normalize(reflect.ValueOf(want)).Interface()) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func normalize(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			out.Index(i).Set(normalize(v.Index(i)))
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		for i := 0; i < v.NumField(); i++ {
			if out.Field(i).CanSet() {
				out.Field(i).Set(normalize(v.Field(i)))
			}
		}
		return out
	}
	return v
}

func device(kid byte) tam.Device {
	return tam.Device{
		KID:               bytes.Repeat([]byte{kid}, 32),
		Key:               []byte{0xa1, 0x01, 0x02, kid},
		Alg:               -9,
		Labels:            []string{"fleet-a", "beta"},
		UEID:              append([]byte{0x01}, bytes.Repeat([]byte{kid}, 16)...),
		OEMID:             []byte{0x01, 0x02, 0x03},
		HWModel:           []byte("model-x"),
		HWVersion:         "1.2.3",
		Preregistered:     kid%2 == 0,
		Attestation:       tam.AttestationAffirming,
		AttestedAt:        at(time.Minute),
		AttestationReason: "fine",
		NeedsAttestation:  kid%3 == 0,
		Status:            tam.StatusOK,
		LastError:         "none yet",
		LastErrorCode:     10,
		Numbering:         "draft-26",
		CreatedAt:         at(0),
		LastSeen:          at(2 * time.Minute),
	}
}

func version(t *testing.T, id tam.ComponentID, seq uint64) tam.ComponentVersion {
	return tam.ComponentVersion{
		ComponentID:    id,
		Sequence:       seq,
		Digest:         bytes.Repeat([]byte{byte(seq)}, 32),
		PayloadIDs:     []tam.ComponentID{cid(t, "payload", fmt.Sprint(seq))},
		PayloadDigests: [][]byte{bytes.Repeat([]byte{0xee, byte(seq)}, 16)},
		Dependencies:   []tam.ComponentID{cid(t, "dep")},
		SignerKID:      bytes.Repeat([]byte{0x5}, 32),
		Size:           int64(100 + seq),
		CreatedAt:      at(time.Duration(seq) * time.Second),
	}
}

func testComponents(t *testing.T, s tam.Store) {
	a, b := cid(t, "b-comp"), cid(t, "a-comp")
	update(t, s, func(tx tam.Tx) error {
		for _, v := range []tam.ComponentVersion{version(t, a, 1), version(t, a, 5), version(t, b, 2)} {
			if err := tx.AddComponentVersion(ctx, v, []byte(fmt.Sprintf("envelope-%s-%d", v.ComponentID, v.Sequence))); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx tam.Tx) error {
		cs, err := tx.Components(ctx)
		if err != nil {
			return err
		}
		ids := []tam.ComponentID{a, b}
		if b < a {
			ids = []tam.ComponentID{b, a}
		}
		if len(cs) != 2 || cs[0].ID != ids[0] || cs[1].ID != ids[1] {
			t.Fatalf("Components = %+v, want ids %v", cs, ids)
		}
		c, err := tx.Component(ctx, a)
		if err != nil {
			return err
		}
		want := tam.Component{ID: a, Latest: 5, Versions: 2, CreatedAt: at(time.Second), UpdatedAt: at(5 * time.Second)}
		equal(t, "Component", c, want)
		vs, err := tx.ComponentVersions(ctx, a)
		if err != nil {
			return err
		}
		equal(t, "ComponentVersions", vs, []tam.ComponentVersion{version(t, a, 1), version(t, a, 5)})
		all, err := tx.AllVersions(ctx)
		if err != nil {
			return err
		}
		wantAll := []tam.ComponentVersion{version(t, b, 2), version(t, a, 1), version(t, a, 5)}
		if a < b {
			wantAll = []tam.ComponentVersion{version(t, a, 1), version(t, a, 5), version(t, b, 2)}
		}
		equal(t, "AllVersions", all, wantAll)
		v, err := tx.ComponentVersion(ctx, a, 5)
		if err != nil {
			return err
		}
		equal(t, "ComponentVersion", v, version(t, a, 5))
		env, err := tx.Envelope(ctx, a, 1)
		if err != nil {
			return err
		}
		if string(env) != fmt.Sprintf("envelope-%s-1", a) {
			t.Fatalf("Envelope = %q", env)
		}
		_, err = tx.ComponentVersion(ctx, a, 2)
		wantErr(t, err, tam.ErrNotFound, "ComponentVersion of a missing sequence")
		_, err = tx.Envelope(ctx, a, 2)
		wantErr(t, err, tam.ErrNotFound, "Envelope of a missing sequence")
		_, err = tx.Component(ctx, cid(t, "nope"))
		wantErr(t, err, tam.ErrNotFound, "Component of a missing id")
		_, err = tx.ComponentVersions(ctx, cid(t, "nope"))
		wantErr(t, err, tam.ErrNotFound, "ComponentVersions of a missing id")
		return nil
	})
}

func testComponentSequence(t *testing.T, s tam.Store) {
	a := cid(t, "c")
	update(t, s, func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, 7), []byte("x")) })
	for _, seq := range []uint64{7, 3, 0} {
		err := s.Update(ctx, func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, seq), []byte("y")) })
		wantErr(t, err, tam.ErrSequence, fmt.Sprintf("adding sequence %d after 7", seq))
	}
	update(t, s, func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, 8), []byte("z")) })
	view(t, s, func(tx tam.Tx) error {
		vs, err := tx.ComponentVersions(ctx, a)
		if err != nil {
			return err
		}
		if len(vs) != 2 || vs[0].Sequence != 7 || vs[1].Sequence != 8 {
			t.Fatalf("versions = %+v", vs)
		}
		return nil
	})
}

func testDeleteComponent(t *testing.T, s tam.Store) {
	a, b := cid(t, "a"), cid(t, "b")
	update(t, s, func(tx tam.Tx) error {
		for _, id := range []tam.ComponentID{a, b} {
			if err := tx.AddComponentVersion(ctx, version(t, id, 1), []byte("e")); err != nil {
				return err
			}
			if _, err := tx.PutPolicy(ctx, tam.Policy{Component: id, Mode: tam.Required, Scope: tam.ScopeAll, CreatedAt: base}); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteComponent(ctx, a) })
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Component(ctx, a)
		wantErr(t, err, tam.ErrNotFound, "deleted component")
		_, err = tx.Envelope(ctx, a, 1)
		wantErr(t, err, tam.ErrNotFound, "envelope of deleted component")
		ps, err := tx.Policies(ctx)
		if err != nil {
			return err
		}
		if len(ps) != 1 || ps[0].Component != b {
			t.Fatalf("policies after delete = %+v, want only %s's", ps, b)
		}
		return nil
	})
	err := s.Update(ctx, func(tx tam.Tx) error { return tx.DeleteComponent(ctx, a) })
	wantErr(t, err, tam.ErrNotFound, "deleting twice")
	// A deleted component can be registered again from any sequence.
	update(t, s, func(tx tam.Tx) error { return tx.AddComponentVersion(ctx, version(t, a, 1), []byte("again")) })
}

func testPolicies(t *testing.T, s tam.Store) {
	a, b := cid(t, "a"), cid(t, "b")
	update(t, s, func(tx tam.Tx) error {
		for _, id := range []tam.ComponentID{a, b} {
			if err := tx.AddComponentVersion(ctx, version(t, id, 1), []byte("e")); err != nil {
				return err
			}
		}
		return nil
	})
	var p1, p2, p3 tam.Policy
	update(t, s, func(tx tam.Tx) (err error) {
		if p1, err = tx.PutPolicy(ctx, tam.Policy{Component: a, Mode: tam.Required, Scope: tam.ScopeAll, CreatedAt: base}); err != nil {
			return err
		}
		if p2, err = tx.PutPolicy(ctx, tam.Policy{Component: a, Mode: tam.Optional, Scope: tam.ScopeLabel, Value: "beta", CreatedAt: at(time.Second)}); err != nil {
			return err
		}
		p3, err = tx.PutPolicy(ctx, tam.Policy{Component: b, Mode: tam.Required, Scope: tam.ScopeDevice, Value: "abcd", CreatedAt: at(2 * time.Second)})
		return err
	})
	if p1.ID == 0 || p2.ID == 0 || p3.ID == 0 || p1.ID == p2.ID || p2.ID == p3.ID {
		t.Fatalf("policy ids %d %d %d: want distinct, non-zero", p1.ID, p2.ID, p3.ID)
	}
	equal(t, "PutPolicy result", p2, tam.Policy{ID: p2.ID, Component: a, Mode: tam.Optional, Scope: tam.ScopeLabel, Value: "beta", CreatedAt: at(time.Second)})
	// Same component and scope: the mode changes, the id and creation time stay.
	var p2b tam.Policy
	update(t, s, func(tx tam.Tx) (err error) {
		p2b, err = tx.PutPolicy(ctx, tam.Policy{Component: a, Mode: tam.Required, Scope: tam.ScopeLabel, Value: "beta", CreatedAt: at(time.Hour)})
		return err
	})
	equal(t, "upserted policy", p2b, tam.Policy{ID: p2.ID, Component: a, Mode: tam.Required, Scope: tam.ScopeLabel, Value: "beta", CreatedAt: at(time.Second)})
	view(t, s, func(tx tam.Tx) error {
		ps, err := tx.Policies(ctx)
		if err != nil {
			return err
		}
		equal(t, "Policies", ps, []tam.Policy{p1, p2b, p3})
		return nil
	})
	err := s.Update(ctx, func(tx tam.Tx) error {
		_, err := tx.PutPolicy(ctx, tam.Policy{Component: cid(t, "missing"), Mode: tam.Required, Scope: tam.ScopeAll})
		return err
	})
	wantErr(t, err, tam.ErrNotFound, "policy for an unknown component")

	var n int
	update(t, s, func(tx tam.Tx) (err error) {
		n, err = tx.DeletePolicies(ctx, tam.PolicyFilter{Component: a, Scope: tam.ScopeLabel, Value: "nope"})
		return err
	})
	if n != 0 {
		t.Fatalf("DeletePolicies with no match removed %d", n)
	}
	update(t, s, func(tx tam.Tx) (err error) {
		n, err = tx.DeletePolicies(ctx, tam.PolicyFilter{Component: a})
		return err
	})
	if n != 2 {
		t.Fatalf("DeletePolicies(component a) removed %d, want 2", n)
	}
	update(t, s, func(tx tam.Tx) (err error) {
		n, err = tx.DeletePolicies(ctx, tam.PolicyFilter{ID: p3.ID})
		return err
	})
	if n != 1 {
		t.Fatalf("DeletePolicies(id) removed %d, want 1", n)
	}
	view(t, s, func(tx tam.Tx) error {
		ps, err := tx.Policies(ctx)
		if len(ps) != 0 {
			t.Fatalf("policies left: %+v", ps)
		}
		return err
	})
}

func testTrustedKeys(t *testing.T, s tam.Store) {
	k1 := tam.TrustedKey{Role: tam.RoleTCSigner, KID: []byte{2, 2}, Key: []byte{1}, Comment: "vendor", CreatedAt: base}
	k2 := tam.TrustedKey{Role: tam.RoleTCSigner, KID: []byte{1, 1}, Key: []byte{2}, CreatedAt: base}
	k3 := tam.TrustedKey{Role: tam.RoleVerifier, KID: []byte{1, 1}, Key: []byte{3}, CreatedAt: base}
	update(t, s, func(tx tam.Tx) error {
		for _, k := range []tam.TrustedKey{k1, k2, k3} {
			if err := tx.PutTrustedKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	k1.Comment = "vendor, renamed"
	update(t, s, func(tx tam.Tx) error { return tx.PutTrustedKey(ctx, k1) })
	view(t, s, func(tx tam.Tx) error {
		ks, err := tx.TrustedKeys(ctx, tam.RoleTCSigner)
		if err != nil {
			return err
		}
		equal(t, "signers", ks, []tam.TrustedKey{k2, k1})
		ks, err = tx.TrustedKeys(ctx, tam.RoleVerifier)
		equal(t, "verifiers", ks, []tam.TrustedKey{k3})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteTrustedKey(ctx, tam.RoleTCSigner, k2.KID) })
	err := s.Update(ctx, func(tx tam.Tx) error { return tx.DeleteTrustedKey(ctx, tam.RoleTCSigner, k2.KID) })
	wantErr(t, err, tam.ErrNotFound, "deleting a key twice")
	view(t, s, func(tx tam.Tx) error {
		ks, err := tx.TrustedKeys(ctx, tam.RoleVerifier)
		equal(t, "verifier untouched by signer delete", ks, []tam.TrustedKey{k3})
		return err
	})
}

func testDevices(t *testing.T, s tam.Store) {
	d1, d2 := device(2), device(1)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d1); err != nil {
			return err
		}
		return tx.PutDevice(ctx, d2)
	})
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Device(ctx, d1.KID)
		if err != nil {
			return err
		}
		equal(t, "Device", got, d1)
		all, err := tx.Devices(ctx)
		equal(t, "Devices (by kid)", all, []tam.Device{d2, d1})
		return err
	})
	d1.Labels, d1.Status, d1.LastSeen, d1.NeedsAttestation, d1.HWModel = nil, tam.StatusFailed, at(time.Hour), true, nil
	d1.AttestedAt = time.Time{}
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d1) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Device(ctx, d1.KID)
		equal(t, "replaced Device", got, d1)
		if !got.AttestedAt.IsZero() {
			t.Fatalf("zero AttestedAt came back as %v", got.AttestedAt)
		}
		_, err2 := tx.Device(ctx, []byte{9})
		wantErr(t, err2, tam.ErrNotFound, "unknown device")
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteDevice(ctx, d1.KID) })
	err := s.Update(ctx, func(tx tam.Tx) error { return tx.DeleteDevice(ctx, d1.KID) })
	wantErr(t, err, tam.ErrNotFound, "deleting a device twice")
}

func testDeleteDeviceCascades(t *testing.T, s tam.Store) {
	d, other := device(1), device(2)
	id := cid(t, "x")
	fill := func(tx tam.Tx, dev tam.Device) error {
		if err := tx.PutDevice(ctx, dev); err != nil {
			return err
		}
		if err := tx.PutInstalled(ctx, dev.KID, tam.Installed{ComponentID: id, Sequence: 1, UpdatedAt: base}); err != nil {
			return err
		}
		if err := tx.PutFailure(ctx, tam.InstallFailure{DeviceKID: dev.KID, ComponentID: id, Sequence: 1, Attempts: 1, LastAt: base}); err != nil {
			return err
		}
		if _, err := tx.AddReport(ctx, tam.Report{DeviceKID: dev.KID, At: base, Kind: "success"}, 0); err != nil {
			return err
		}
		if err := tx.PutPending(ctx, tam.PendingUpdate{Token: append([]byte("token-"), dev.KID[0]), DeviceKID: dev.KID, CreatedAt: base, ExpiresAt: at(time.Hour)}, 0); err != nil {
			return err
		}
		return tx.PutPersonalization(ctx, tam.Personalization{DeviceKID: dev.KID, Name: "cfg", ComponentID: id, Sequence: 1, Envelope: []byte{1}, CreatedAt: base})
	}
	update(t, s, func(tx tam.Tx) error {
		if err := fill(tx, d); err != nil {
			return err
		}
		return fill(tx, other)
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteDevice(ctx, d.KID) })
	view(t, s, func(tx tam.Tx) error {
		for _, c := range []struct {
			kid  []byte
			want int
		}{{d.KID, 0}, {other.KID, 1}} {
			in, _ := tx.Installed(ctx, c.kid)
			fs, _ := tx.Failures(ctx, c.kid)
			rs, _ := tx.Reports(ctx, c.kid, 0)
			ps, _ := tx.PendingFor(ctx, c.kid)
			pz, _ := tx.Personalizations(ctx, c.kid)
			if len(in) != c.want || len(fs) != c.want || len(rs) != c.want || len(ps) != c.want || len(pz) != c.want {
				t.Fatalf("device %x after delete: installed %d failures %d reports %d pending %d personalization %d, want %d each",
					c.kid[:1], len(in), len(fs), len(rs), len(ps), len(pz), c.want)
			}
		}
		return nil
	})
}

func testInstalled(t *testing.T, s tam.Store) {
	d := device(1)
	a, b := cid(t, "b"), cid(t, "a")
	err := s.Update(ctx, func(tx tam.Tx) error {
		return tx.PutInstalled(ctx, d.KID, tam.Installed{ComponentID: a, Sequence: 1})
	})
	wantErr(t, err, tam.ErrNotFound, "installed on an unknown device")
	ia := tam.Installed{ComponentID: a, Sequence: 3, Managed: true, Requested: true, UpdatedAt: base}
	ib := tam.Installed{ComponentID: b, Sequence: 0, UpdatedAt: at(time.Second)}
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutInstalled(ctx, d.KID, ia); err != nil {
			return err
		}
		return tx.PutInstalled(ctx, d.KID, ib)
	})
	ia.Sequence, ia.Requested = 4, false
	update(t, s, func(tx tam.Tx) error { return tx.PutInstalled(ctx, d.KID, ia) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Installed(ctx, d.KID)
		want := []tam.Installed{ia, ib}
		if b < a {
			want = []tam.Installed{ib, ia}
		}
		equal(t, "Installed", got, want)
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeleteInstalled(ctx, d.KID, a) })
	err = s.Update(ctx, func(tx tam.Tx) error { return tx.DeleteInstalled(ctx, d.KID, a) })
	wantErr(t, err, tam.ErrNotFound, "deleting an installed component twice")
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Installed(ctx, d.KID)
		equal(t, "Installed after delete", got, []tam.Installed{ib})
		return err
	})
}

func testFailures(t *testing.T, s tam.Store) {
	d := device(1)
	id := cid(t, "f")
	f := tam.InstallFailure{DeviceKID: d.KID, ComponentID: id, Sequence: 2, Attempts: 1, LastError: "disk full", LastAt: base}
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutFailure(ctx, f) }), tam.ErrNotFound, "failure for an unknown device")
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		return tx.PutFailure(ctx, f)
	})
	f.Attempts, f.LastError = 2, "again"
	f2 := tam.InstallFailure{DeviceKID: d.KID, ComponentID: id, Sequence: 3, Attempts: 1, LastAt: base}
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutFailure(ctx, f); err != nil {
			return err
		}
		return tx.PutFailure(ctx, f2)
	})
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Failures(ctx, d.KID)
		equal(t, "Failures", got, []tam.InstallFailure{f, f2})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.ClearFailures(ctx, d.KID) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Failures(ctx, d.KID)
		if len(got) != 0 {
			t.Fatalf("failures after clear: %+v", got)
		}
		return err
	})
}

func testReports(t *testing.T, s tam.Store) {
	d, other := device(1), device(2)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		return tx.PutDevice(ctx, other)
	})
	var ids []int64
	for i := 0; i < 5; i++ {
		r := tam.Report{DeviceKID: d.KID, At: at(time.Duration(i) * time.Second), Kind: "error", ErrCode: 11, Message: fmt.Sprint("m", i),
			SUITReports: [][]byte{{0xa1, byte(i)}, {0xa2}}}
		update(t, s, func(tx tam.Tx) error {
			id, err := tx.AddReport(ctx, r, 3)
			ids = append(ids, id)
			return err
		})
	}
	update(t, s, func(tx tam.Tx) error {
		_, err := tx.AddReport(ctx, tam.Report{DeviceKID: other.KID, At: base, Kind: "success"}, 3)
		return err
	})
	view(t, s, func(tx tam.Tx) error {
		rs, err := tx.Reports(ctx, d.KID, 0)
		if err != nil {
			return err
		}
		if len(rs) != 3 {
			t.Fatalf("kept %d reports, want 3", len(rs))
		}
		for i, r := range rs {
			n := 4 - i
			want := tam.Report{ID: ids[n], DeviceKID: d.KID, At: at(time.Duration(n) * time.Second), Kind: "error", ErrCode: 11,
				Message: fmt.Sprint("m", n), SUITReports: [][]byte{{0xa1, byte(n)}, {0xa2}}}
			equal(t, fmt.Sprintf("report %d", i), r, want)
		}
		rs, err = tx.Reports(ctx, d.KID, 1)
		if len(rs) != 1 || rs[0].ID != ids[4] {
			t.Fatalf("Reports(limit 1) = %+v", rs)
		}
		rs, _ = tx.Reports(ctx, other.KID, 0)
		if len(rs) != 1 {
			t.Fatalf("other device lost its report to the cap: %d", len(rs))
		}
		return err
	})
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error {
		_, err := tx.AddReport(ctx, tam.Report{DeviceKID: []byte{7}, At: base, Kind: "success"}, 0)
		return err
	}), tam.ErrNotFound, "report for an unknown device")
}

func pending(kid []byte, token string, created time.Duration, t *testing.T) tam.PendingUpdate {
	return tam.PendingUpdate{
		Token:     []byte(token),
		DeviceKID: kid,
		Numbering: "draft-26",
		Install: []tam.SentManifest{
			{ComponentID: cid(t, "a"), Sequence: 2, Requested: true},
			{ComponentID: cid(t, "p"), Sequence: 9, Personalization: true},
		},
		Remove:    []tam.ComponentID{cid(t, "old")},
		CreatedAt: at(created),
		ExpiresAt: at(created + time.Hour),
	}
}

func testPending(t *testing.T, s tam.Store) {
	d := device(1)
	p := pending(d.KID, "token-one-123456", 0, t)
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutPending(ctx, p, 0) }), tam.ErrNotFound, "pending for an unknown device")
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		return tx.PutPending(ctx, p, 0)
	})
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutPending(ctx, p, 0) }), tam.ErrExists, "same token twice")
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Pending(ctx, p.Token)
		equal(t, "Pending", got, p)
		_, err2 := tx.Pending(ctx, []byte("unknown-token-12"))
		wantErr(t, err2, tam.ErrNotFound, "unknown token")
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeletePending(ctx, p.Token) })
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.DeletePending(ctx, p.Token) }), tam.ErrNotFound, "consuming twice")
}

func testPendingCap(t *testing.T, s tam.Store) {
	d, other := device(1), device(2)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutDevice(ctx, other); err != nil {
			return err
		}
		return tx.PutPending(ctx, pending(other.KID, "other-device-tok", 0, t), 2)
	})
	for i := 0; i < 5; i++ {
		update(t, s, func(tx tam.Tx) error {
			return tx.PutPending(ctx, pending(d.KID, fmt.Sprintf("token-%010d", i), time.Duration(i)*time.Second, t), 2)
		})
	}
	view(t, s, func(tx tam.Tx) error {
		ps, err := tx.PendingFor(ctx, d.KID)
		if err != nil {
			return err
		}
		if len(ps) != 2 || string(ps[0].Token) != "token-0000000003" || string(ps[1].Token) != "token-0000000004" {
			t.Fatalf("after cap 2: %d pending, first %q", len(ps), ps[0].Token)
		}
		ps, _ = tx.PendingFor(ctx, other.KID)
		if len(ps) != 1 {
			t.Fatalf("other device's pending update was evicted")
		}
		return nil
	})
}

func testUseToken(t *testing.T, s tam.Store) {
	tok := []byte("query-token-0001")
	update(t, s, func(tx tam.Tx) error { return tx.UseToken(ctx, tok, at(time.Hour)) })
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, tok, at(time.Hour)) }), tam.ErrTokenUsed, "token reuse")
	update(t, s, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("query-token-0002"), at(time.Hour)) })
}

func testPurgeExpired(t *testing.T, s tam.Store) {
	d := device(1)
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutPending(ctx, pending(d.KID, "expires-at-1h-00", 0, t), 0); err != nil {
			return err
		}
		if err := tx.PutPending(ctx, pending(d.KID, "expires-at-3h-00", 2*time.Hour, t), 0); err != nil {
			return err
		}
		if err := tx.UseToken(ctx, []byte("used-expires-1h0"), at(time.Hour)); err != nil {
			return err
		}
		return tx.UseToken(ctx, []byte("used-expires-5h0"), at(5*time.Hour))
	})
	var n int
	update(t, s, func(tx tam.Tx) (err error) { n, err = tx.PurgeExpired(ctx, at(time.Hour)); return err })
	if n != 2 {
		t.Fatalf("PurgeExpired removed %d rows, want 2", n)
	}
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Pending(ctx, []byte("expires-at-1h-00"))
		wantErr(t, err, tam.ErrNotFound, "expired pending")
		_, err = tx.Pending(ctx, []byte("expires-at-3h-00"))
		return err
	})
	// An expired used token is forgotten (it is rejected by its expiry instead).
	update(t, s, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("used-expires-1h0"), at(time.Hour)) })
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("used-expires-5h0"), at(time.Hour)) }), tam.ErrTokenUsed, "unexpired token")
}

func testPersonalization(t *testing.T, s tam.Store) {
	d := device(1)
	p := tam.Personalization{DeviceKID: d.KID, Name: "config", ComponentID: cid(t, "pz", "config", "suit"), PayloadID: cid(t, "pz", "config"), Sequence: 1,
		Envelope: []byte{0xd8, 0x6b}, Digest: []byte{1, 2}, DependsOn: []tam.ComponentID{cid(t, "ta")}, Size: 42, CreatedAt: base}
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.PutPersonalization(ctx, p) }), tam.ErrNotFound, "personalization for an unknown device")
	q := p
	q.Name, q.DependsOn = "a-key", nil
	update(t, s, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.PutPersonalization(ctx, p); err != nil {
			return err
		}
		return tx.PutPersonalization(ctx, q)
	})
	p.Sequence, p.Envelope = 2, []byte{3}
	update(t, s, func(tx tam.Tx) error { return tx.PutPersonalization(ctx, p) })
	view(t, s, func(tx tam.Tx) error {
		got, err := tx.Personalization(ctx, d.KID, "config")
		equal(t, "Personalization", got, p)
		all, _ := tx.Personalizations(ctx, d.KID)
		equal(t, "Personalizations", all, []tam.Personalization{q, p})
		return err
	})
	update(t, s, func(tx tam.Tx) error { return tx.DeletePersonalization(ctx, d.KID, "config") })
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Personalization(ctx, d.KID, "config")
		wantErr(t, err, tam.ErrNotFound, "deleted personalization")
		return nil
	})
	wantErr(t, s.Update(ctx, func(tx tam.Tx) error { return tx.DeletePersonalization(ctx, d.KID, "config") }), tam.ErrNotFound, "deleting twice")
}

func testRollback(t *testing.T, s tam.Store) {
	d := device(1)
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx tam.Tx) error {
		if err := tx.PutDevice(ctx, d); err != nil {
			return err
		}
		if err := tx.AddComponentVersion(ctx, version(t, cid(t, "r"), 1), []byte("e")); err != nil {
			return err
		}
		if err := tx.UseToken(ctx, []byte("rolled-back-tok1"), at(time.Hour)); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom, "Update returning an error")
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Device(ctx, d.KID)
		wantErr(t, err, tam.ErrNotFound, "device written by a failed Update")
		cs, _ := tx.Components(ctx)
		if len(cs) != 0 {
			t.Fatalf("component written by a failed Update survived")
		}
		return nil
	})
	update(t, s, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("rolled-back-tok1"), at(time.Hour)) })
}

func testViewReadOnly(t *testing.T, s tam.Store) {
	err := s.View(ctx, func(tx tam.Tx) error { return tx.PutDevice(ctx, device(1)) })
	if err == nil {
		t.Fatal("PutDevice inside View succeeded")
	}
	view(t, s, func(tx tam.Tx) error {
		_, err := tx.Device(ctx, device(1).KID)
		wantErr(t, err, tam.ErrNotFound, "device written inside View")
		return nil
	})
}

func testConcurrentTokenUse(t *testing.T, s tam.Store) {
	const n = 16
	var wins, used atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(ctx, func(tx tam.Tx) error { return tx.UseToken(ctx, []byte("raced-token-0001"), at(time.Hour)) })
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, tam.ErrTokenUsed):
				used.Add(1)
			default:
				t.Errorf("UseToken: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || used.Load() != n-1 {
		t.Fatalf("%d goroutines consumed the token, %d saw it used; want 1 and %d", wins.Load(), used.Load(), n-1)
	}
}

func testConcurrentUpdates(t *testing.T, s tam.Store) {
	d := device(1)
	update(t, s, func(tx tam.Tx) error { return tx.PutDevice(ctx, d) })
	const n = 20
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Read-modify-write: lost updates would show as a count below n.
			err := s.Update(ctx, func(tx tam.Tx) error {
				dev, err := tx.Device(ctx, d.KID)
				if err != nil {
					return err
				}
				dev.LastErrorCode++
				return tx.PutDevice(ctx, dev)
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.View(ctx, func(tx tam.Tx) error { _, err := tx.Devices(ctx); return err }); err != nil {
				t.Errorf("View: %v", err)
			}
		}()
	}
	wg.Wait()
	view(t, s, func(tx tam.Tx) error {
		dev, err := tx.Device(ctx, d.KID)
		if dev.LastErrorCode != d.LastErrorCode+n {
			t.Fatalf("counter = %d, want %d (lost updates)", dev.LastErrorCode, d.LastErrorCode+n)
		}
		return err
	})
}

func testSequenceLimit(t *testing.T, s tam.Store) {
	err := s.Update(ctx, func(tx tam.Tx) error {
		return tx.AddComponentVersion(ctx, version(t, cid(t, "big"), math.MaxInt64+1), []byte("e"))
	})
	if err == nil {
		t.Fatal("a sequence number above MaxInt64 was accepted")
	}
	update(t, s, func(tx tam.Tx) error {
		return tx.AddComponentVersion(ctx, version(t, cid(t, "big"), math.MaxInt64), []byte("e"))
	})
	view(t, s, func(tx tam.Tx) error {
		c, err := tx.Component(ctx, cid(t, "big"))
		if c.Latest != math.MaxInt64 {
			t.Fatalf("Latest = %d", c.Latest)
		}
		return err
	})
}
