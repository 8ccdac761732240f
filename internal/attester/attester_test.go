package attester

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
)

func key(t *testing.T, alg string) *cosekey.Key {
	t.Helper()
	a, _ := cosekey.ParseAlg(alg)
	k, err := cosekey.Generate(a)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newAttester(t *testing.T) (*Attester, *cosekey.Key) {
	t.Helper()
	ak := key(t, "esp256")
	s, err := cosekey.NewSigner(ak, 0)
	if err != nil {
		t.Fatal(err)
	}
	ueid, err := NewUEID()
	if err != nil {
		t.Fatal(err)
	}
	ref := eat.SUITReference{URI: "https://tam.example/agent.suit", DigestAlg: eat.AlgSHA256, Digest: bytes.Repeat([]byte{1}, 32)}
	return &Attester{
		Key: s,
		Identity: Identity{
			UEID: ueid, OEMID: eat.OEMIDBytes([]byte{0x89, 0x48, 0x23}), HWModel: []byte("softtee"),
			HWVersion: eat.Version{Version: "1.2.0", Scheme: eat.SchemeSemVer},
			SWName:    "teep-go", SWVersion: eat.Version{Version: "0.1.0"},
			Manifests: []eat.Manifest{ref.Manifest(eat.ContentFormatCBOR)},
		},
		Clock: func() time.Time { return time.Unix(1767225600, 123456789) },
	}, ak
}

func TestEvidence(t *testing.T) {
	a, ak := newAttester(t)
	agent := key(t, "ed25519")
	ds := eat.DebugDisabledPermanently
	tc := eat.SUITReference{URI: "https://tam.example/tc.suit", DigestAlg: eat.AlgSHA256, Digest: bytes.Repeat([]byte{2}, 32)}
	nonce := []byte("challenge-0001")
	ev, err := a.Evidence(Request{
		Nonce: nonce, Timestamp: true, AgentKey: agent, DebugStatus: &ds,
		Manifests: []eat.Manifest{tc.Manifest(eat.ContentFormatCBOR)},
		Extra:     map[int64]cbor.RawMessage{-70000: {0xf5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := eat.Parse(ev, eat.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify([]*cosekey.Key{ak.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	c := tok.Claims
	if !bytes.Equal(c.Nonce, nonce) || c.IssuedAt.Unix() != 1767225600 || c.IssuedAt.Nanosecond() != 0 {
		t.Errorf("nonce %q iat %v", c.Nonce, c.IssuedAt)
	}
	if err := c.CNF.Binds(agent); err != nil {
		t.Error(err)
	}
	if c.CNF.Key != nil {
		t.Error("cnf carries the key though IncludeAgentKey is false")
	}
	if len(c.Manifests) != 2 {
		t.Fatalf("%d manifests, want the Agent's and the TC's", len(c.Manifests))
	}
	if r, err := c.Manifests[1].SUITReference(); err != nil || r.URI != tc.URI {
		t.Errorf("TC reference %+v %v", r, err)
	}
	if p := c.ProfileProblems(); len(p) != 0 {
		t.Errorf("Evidence does not meet the TEEP profile: %v", p)
	}
	if *c.DbgStat != ds || c.Unknown[-70000] == nil || c.SWVersion.Version != "0.1.0" {
		t.Errorf("claims %+v", c)
	}
	// the Identity's manifest slice must not be appended to in place
	if len(a.Identity.Manifests) != 1 {
		t.Error("Evidence changed the Identity")
	}
}

func TestEvidenceWithKeyAndNoTimestamp(t *testing.T) {
	a, _ := newAttester(t)
	agent := key(t, "esp256")
	c, err := a.Claims(Request{Nonce: bytes.Repeat([]byte{9}, 8), AgentKey: agent, IncludeAgentKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.IssuedAt != nil || !c.CNF.Key.Equal(agent) || c.CNF.Key.IsPrivate() {
		t.Errorf("iat %v cnf %+v", c.IssuedAt, c.CNF)
	}
}

func TestEvidenceErrors(t *testing.T) {
	a, _ := newAttester(t)
	agent := key(t, "ed25519")
	cases := []struct {
		name string
		a    *Attester
		req  Request
		want error
	}{
		{"no freshness", a, Request{AgentKey: agent}, ErrNoFreshness},
		{"no agent key", a, Request{Nonce: []byte("12345678")}, ErrNoAgentKey},
		{"no attestation key", &Attester{Identity: a.Identity}, Request{Nonce: []byte("12345678"), AgentKey: agent}, ErrNoKey},
		{"short nonce", a, Request{Nonce: []byte("1234"), AgentKey: agent}, eat.ErrMalformed},
	}
	for _, tc := range cases {
		if _, err := tc.a.Evidence(tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestNewUEID(t *testing.T) {
	u, err := NewUEID()
	if err != nil || len(u) != 33 || u[0] != 0x01 {
		t.Fatalf("%x %v", u, err)
	}
	v, _ := NewUEID()
	if bytes.Equal(u, v) {
		t.Error("two UEIDs are equal")
	}
	if _, err := NewUEIDFrom(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("UEID from a failing reader")
	}
}
