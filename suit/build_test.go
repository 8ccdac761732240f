package suit

import (
	"bytes"
	"errors"
	"testing"

	"github.com/teep-go/teep/cosekey"
)

func testSigner(t testing.TB) (*cosekey.Signer, *cosekey.Key) {
	t.Helper()
	k := loadKey(t, "example-p256-private.pem")
	s, err := cosekey.NewSigner(k, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s, k.PublicKey()
}

func TestBuildSignParseVerify(t *testing.T) {
	signer, pub := testSigner(t)
	payload := []byte("Hello, Secure World!")
	spec := ManifestSpec{
		ManifestComponentID: NewComponentID("TEEP-Device", "SecureFS", "tc", "suit"),
		SequenceNumber:      7,
		VendorID:            bytes.Repeat([]byte{1}, 16),
		ClassID:             bytes.Repeat([]byte{2}, 16),
		Components: []ComponentSpec{{
			ID: NewComponentID("TEEP-Device", "SecureFS", "tc", "ta"), Payload: payload, Integrated: true, IntegratedKey: "#tc",
		}},
		Description: "test TA",
	}
	e, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Verify([]*cosekey.Key{pub}); !errors.Is(err, ErrUnauthorised) {
		t.Fatalf("unsigned envelope verified: %v", err)
	}
	if err := e.Sign(signer); err != nil {
		t.Fatal(err)
	}
	if err := e.SignMAC(hmacKey, 0); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []TagMode{TagNever, TagAlways} {
		raw, err := e.Marshal(MarshalOptions{Tag: tag})
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseEnvelope(raw, ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Tagged != (tag == TagAlways) {
			t.Errorf("tagged = %v", p.Tagged)
		}
		if _, err := p.Verify([]*cosekey.Key{pub}); err != nil {
			t.Fatal(err)
		}
		if v, err := p.Verify(nil, hmacKey); err != nil || v.Index != 1 {
			t.Fatalf("mac verify: %v %v", v, err)
		}
		m := p.Manifest()
		if m.SequenceNumber != 7 || !m.ComponentID.Equal(spec.ManifestComponentID) || len(m.Common.Components) != 1 {
			t.Fatalf("manifest: %+v", m)
		}
		if got, ok := p.IntegratedPayload("#tc"); !ok || !bytes.Equal(got, payload) {
			t.Fatalf("integrated payload: %q", got)
		}
		if m.Text == nil || !m.Text.Severed || !m.Text.Present || m.Text.Text.Languages[0].Manifest[1] != "test TA" {
			t.Fatalf("text: %+v", m.Text)
		}
		if m.Uninstall == nil || m.Install == nil || m.Validate == nil {
			t.Fatal("missing sections")
		}
	}
}
