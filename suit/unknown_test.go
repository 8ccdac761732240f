package suit

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// withUnknownMembers rebuilds the unsigned example 0 with member 14
// (suit-coswid, draft-ietf-suit-update-management) added to the manifest and
// to the envelope, and an authentication wrapper holding the new digest.
func withUnknownMembers(t *testing.T) []byte {
	t.Helper()
	var env map[any]cbor.RawMessage
	if err := cbor.Unmarshal(readVector(t, "manifest-spec/example0.unsigned.cbor"), &env); err != nil {
		t.Fatal(err)
	}
	var manifestBytes []byte
	if err := cbor.Unmarshal(env[uint64(3)], &manifestBytes); err != nil {
		t.Fatal(err)
	}
	var manifest map[int64]cbor.RawMessage
	if err := cbor.Unmarshal(manifestBytes, &manifest); err != nil {
		t.Fatal(err)
	}
	manifest[14], _ = cbor.Marshal([]byte("coswid digest stand-in"))
	manifestBytes, _ = cbor.Marshal(manifest)
	item, _ := cbor.Marshal(manifestBytes)
	sum := sha256.Sum256(item)
	digest, _ := cbor.Marshal([]any{AlgSHA256, sum[:]})
	auth, _ := cbor.Marshal([]any{digest})
	out, err := cbor.Marshal(map[int64]any{2: auth, 3: manifestBytes, 14: []byte("a severed coswid stand-in")})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An inspector can show an envelope with members it does not know; a
// processor refuses it, naming the member.
func TestUnknownMembers(t *testing.T) {
	data := withUnknownMembers(t)
	_, err := ParseEnvelope(data, ParseOptions{})
	if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "member 14") {
		t.Fatalf("strict parse: err = %v, want a refusal naming member 14", err)
	}
	e, err := ParseEnvelope(data, ParseOptions{KeepUnknownUnsafe: true})
	if err != nil {
		t.Fatal(err)
	}
	coswid, _ := cbor.Marshal([]byte("a severed coswid stand-in"))
	if len(e.Unknown) != 1 || e.Unknown[0] != (UnknownMember{Key: 14, Size: len(coswid)}) {
		t.Errorf("envelope unknown members %+v", e.Unknown)
	}
	inManifest, _ := cbor.Marshal([]byte("coswid digest stand-in"))
	if m := e.Manifest(); len(m.Unknown) != 1 || m.Unknown[0] != (UnknownMember{Key: 14, Size: len(inManifest)}) {
		t.Errorf("manifest unknown members %+v", m.Unknown)
	}
	if e.Manifest().SequenceNumber != 0 || e.Manifest().Validate == nil || len(e.Manifest().Common.Components) != 1 {
		t.Errorf("the known members were not all read: %+v", e.Manifest())
	}
}
