package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

// NewStore returns a fresh, empty store; the suite closes it.
type NewStore func(t *testing.T) tam.Store

// test is one conformance test; it gets a fresh, empty store.
type test struct {
	name string
	fn   func(t *testing.T, s tam.Store)
}

// aggregates groups the suite by the interfaces tam.Tx embeds, in the
// order a new store is usually written, so `go test -run 'Store/Device/'`
// checks one aggregate while the others are still missing. "Transaction"
// checks Store.Update and View themselves: atomicity, read-only views and
// concurrent writers.
var aggregates = []struct {
	name  string // the tam.Tx interface under test, without "Tx"
	tests []test
}{
	{"Component", []test{
		{"Versions", testComponents},
		{"Sequence", testComponentSequence},
		{"SequenceLimit", testSequenceLimit},
		{"Delete", testDeleteComponent},
	}},
	{"Policy", []test{{"PutDelete", testPolicies}}},
	{"CatalogGeneration", []test{{"Bumps", testCatalogGeneration}}},
	{"TrustedKey", []test{{"PutDelete", testTrustedKeys}}},
	{"Device", []test{
		{"PutDelete", testDevices},
		{"DeleteCascades", testDeleteDeviceCascades},
		{"TenantLabels", testDeviceTenantLabels},
		{"Touch", testTouchDevice},
		{"RecordSession", testRecordSession},
		{"State", testDeviceState},
	}},
	{"Installed", []test{{"PutDelete", testInstalled}}},
	{"Failure", []test{{"PutClear", testFailures}}},
	{"Report", []test{{"AddKeep", testReports}}},
	{"Session", []test{
		{"Pending", testPending},
		{"PendingCap", testPendingCap},
		{"UseToken", testUseToken},
		{"PurgeExpired", testPurgeExpired},
		{"SteadyRound", testSteadyRound},
		{"PendingWithKey", testPendingWithKey},
	}},
	{"Personalization", []test{
		{"PutDelete", testPersonalization},
		{"Tenants", testPersonalizationTenants},
	}},
	{"Tenant", []test{{"AddList", testTenants}}},
	{"APIToken", []test{{"AddRevoke", testAPITokens}}},
	{"Audit", []test{{"AddFilter", testAudit}}},
	{"Owner", []test{{"SetGet", testOwners}}},
	{"Transaction", []test{
		{"Rollback", testRollback},
		{"ViewIsReadOnly", testViewReadOnly},
		{"ConcurrentTokenUse", testConcurrentTokenUse},
		{"ConcurrentUpdates", testConcurrentUpdates},
	}},
}

// Run runs the whole suite, one subtest per aggregate.
func Run(t *testing.T, newStore NewStore) {
	for _, ag := range aggregates {
		t.Run(ag.name, func(t *testing.T) {
			for _, tc := range ag.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := newStore(t)
					t.Cleanup(func() { s.Close() })
					tc.fn(t, s)
				})
			}
		})
	}
}

var ctx = context.Background()

// base is a fixed time with microsecond precision, the least a store keeps.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func cid(t *testing.T, segs ...string) suit.ComponentID {
	t.Helper()
	id := suit.NewComponentID(segs...)
	if err := id.Check(); err != nil {
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

func version(t *testing.T, id suit.ComponentID, seq uint64) tam.ComponentVersion {
	return tam.ComponentVersion{
		ComponentID:    id,
		Sequence:       seq,
		Digest:         bytes.Repeat([]byte{byte(seq)}, 32),
		PayloadIDs:     []suit.ComponentID{cid(t, "payload", fmt.Sprint(seq))},
		PayloadDigests: [][]byte{bytes.Repeat([]byte{0xee, byte(seq)}, 16)},
		Dependencies:   []suit.ComponentID{cid(t, "dep")},
		SignerKID:      bytes.Repeat([]byte{0x5}, 32),
		Size:           int64(100 + seq),
		CreatedAt:      at(time.Duration(seq) * time.Second),
	}
}
