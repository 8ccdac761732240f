package processor_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// TestBuilderRoundTrip is a property test: random manifest specs are built,
// signed, re-emitted, parsed, verified and processed; the store must then
// hold exactly the payloads, and uninstalling must empty it again.
func TestBuilderRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	ed, err := cosekey.Generate(cosekey.AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	p256 := loadKey(t, "example-p256-private.pem")
	device, err := loadKey(t, "device-p256-private.pem").ECDHPublic()
	if err != nil {
		t.Fatal(err)
	}
	kekKey := bytes.Repeat([]byte{0x42}, 16)
	vendor, class := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	randBytes := func(n int) []byte { b := make([]byte, n); rng.Read(b); return b }
	segment := func() []byte {
		if rng.Intn(2) == 0 {
			return []byte(fmt.Sprintf("seg%d", rng.Intn(1000)))
		}
		return randBytes(1 + rng.Intn(16))
	}
	for iter := 0; iter < 60; iter++ {
		e := newEnv(t, func(c *processor.Config) {
			c.Trust = []*cosekey.Key{p256.PublicKey(), ed.PublicKey()}
			c.DeviceKey = loadKey(t, "device-p256-private.pem")
			c.Decryption.KEKs = []suit.KEK{{Key: kekKey}}
			c.Identity = processor.Identity{VendorIDs: [][]byte{vendor}, ClassIDs: [][]byte{class}}
		})
		want := map[string][]byte{}
		var deps []suit.DependencySpec
		if rng.Intn(3) == 0 {
			dp := randBytes(rng.Intn(300))
			did := suit.ComponentID{[]byte("dep"), segment()}
			want[did.Key()] = dp
			de, err := suit.Build(suit.ManifestSpec{
				ManifestComponentID: suit.ComponentID{[]byte("dep.suit"), []byte(fmt.Sprint(iter))},
				SequenceNumber:      uint64(rng.Intn(10)),
				Components:          []suit.ComponentSpec{{ID: did, Payload: dp, Integrated: true}},
			})
			if err != nil {
				t.Fatal(err)
			}
			s, _ := cosekey.NewSigner(p256, 0)
			de.Sign(s)
			raw, _ := de.Marshal(suit.MarshalOptions{Tag: suit.TagMode(1 + rng.Intn(2))})
			ds := suit.DependencySpec{Envelope: raw}
			if rng.Intn(2) == 0 {
				ds.URI = fmt.Sprintf("https://example.org/dep%d.suit", iter)
				e.fetcher.Set(ds.URI, raw)
			}
			deps = append(deps, ds)
		}
		spec := suit.ManifestSpec{
			ManifestComponentID: suit.ComponentID{[]byte("root"), segment()},
			SequenceNumber:      uint64(rng.Intn(1 << 20)),
			Dependencies:        deps,
			Tagged:              rng.Intn(2) == 0,
			Description:         "round trip",
		}
		if rng.Intn(2) == 0 {
			spec.VendorID, spec.ClassID = vendor, class
		}
		if rng.Intn(3) == 0 {
			spec.Sever = []suit.Section{suit.SectionInstall}
		}
		n := 1 + rng.Intn(3)
		for i := 0; i < n; i++ {
			payload := randBytes(rng.Intn(5000))
			cs := suit.ComponentSpec{ID: suit.ComponentID{[]byte("c"), []byte{byte(i)}, segment()}, Payload: payload}
			switch rng.Intn(3) {
			case 0:
				cs.URI = fmt.Sprintf("https://example.org/%d/%d", iter, i)
			case 1:
				cs.Integrated = true
			default:
				cs.Inline = true
			}
			switch rng.Intn(3) {
			case 1:
				cs.Encrypt = &suit.EncryptOptions{RecipientKey: device, ContentAlg: []int64{suit.AlgA128GCM, suit.AlgA128CTR, suit.AlgA256GCM}[rng.Intn(3)]}
			case 2:
				cs.Encrypt = &suit.EncryptOptions{KEK: kekKey, ContentAlg: []int64{suit.AlgA128GCM, suit.AlgA128CTR}[rng.Intn(2)]}
			}
			if cs.URI != "" && cs.Encrypt == nil {
				e.fetcher.Set(cs.URI, payload)
			}
			want[cs.ID.Key()] = payload
			spec.Components = append(spec.Components, cs)
		}
		env, detached, err := suit.BuildDetached(spec)
		if err != nil {
			t.Fatalf("iteration %d: build: %v", iter, err)
		}
		for _, d := range detached {
			e.fetcher.Set(d.URI, d.Data)
		}
		signer := p256
		if rng.Intn(2) == 0 {
			signer = ed
		}
		s, _ := cosekey.NewSigner(signer, 0)
		if err := env.Sign(s); err != nil {
			t.Fatal(err)
		}
		raw, err := env.Marshal(suit.MarshalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := suit.ParseEnvelope(raw, suit.ParseOptions{})
		if err != nil {
			t.Fatalf("iteration %d: parse: %v", iter, err)
		}
		if _, err := parsed.Verify([]*cosekey.Key{signer.PublicKey()}); err != nil {
			t.Fatalf("iteration %d: verify: %v", iter, err)
		}
		res, err := e.p.Install(context.Background(), raw, processor.RunOptions{})
		if err != nil {
			t.Fatalf("iteration %d: install: %v", iter, err)
		}
		if len(res.Installed) != len(want) {
			t.Fatalf("iteration %d: installed %d, want %d", iter, len(res.Installed), len(want))
		}
		for _, c := range res.Installed {
			w := want[c.ID.Key()]
			if got := e.content(t, c.ID); !bytes.Equal(got, w) || !bytes.Equal(c.SHA256, sha(w)) {
				t.Fatalf("iteration %d: %s differs", iter, c.ID)
			}
		}
		if _, err := e.p.Uninstall(context.Background(), spec.ManifestComponentID, processor.RunOptions{}); err != nil {
			t.Fatalf("iteration %d: uninstall: %v", iter, err)
		}
		storeEmpty(t, e)
	}
}
