package tamtest

import (
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
)

// ManifestID is the manifest component id Envelope gives a TA named name:
// ['TEEP-Device', 'SecureFS', name, 'suit'] (the layout of
// draft-ietf-teep-protocol-26 Appendix E).
func ManifestID(name string) suit.ComponentID {
	return suit.NewComponentID("TEEP-Device", "SecureFS", name, "suit")
}

// PayloadID is the component Envelope installs the payload to.
func PayloadID(name string) suit.ComponentID {
	return suit.NewComponentID("TEEP-Device", "SecureFS", name, "ta")
}

// Envelope builds a Trusted Component: a SUIT envelope with the payload
// integrated, signed by signer, depending on the envelopes in deps.
func Envelope(t testing.TB, signer *cosekey.Signer, name string, seq uint64, payload []byte, deps ...[]byte) []byte {
	t.Helper()
	return EnvelopeAt(t, signer, ManifestID(name), PayloadID(name), seq, payload, deps...)
}

// EnvelopeAt is Envelope with the manifest and payload component ids
// chosen, e.g. to aim at another component's ids.
func EnvelopeAt(t testing.TB, signer *cosekey.Signer, manifest, payloadID suit.ComponentID, seq uint64, payload []byte, deps ...[]byte) []byte {
	t.Helper()
	spec := suit.ManifestSpec{
		ManifestComponentID: manifest,
		SequenceNumber:      seq,
		Components:          []suit.ComponentSpec{{ID: payloadID, Payload: payload, Integrated: true}},
	}
	for _, d := range deps {
		spec.Dependencies = append(spec.Dependencies, suit.DependencySpec{Envelope: d})
	}
	env, err := suit.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Sign(signer); err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal(suit.MarshalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Signer makes a fresh P-256 TC signer.
func Signer(t testing.TB) *cosekey.Signer {
	t.Helper()
	k, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cosekey.NewSigner(k, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
