package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
	"github.com/teep-go/teep/teep"
)

// BenchmarkQueryRequest measures the Agent answering a QueryRequest against
// the baseline of the cryptography it cannot avoid: verifying the request
// and signing a response (teep.Open + teep.Sign). The "attestation" case
// adds Evidence (one more signature).
func BenchmarkQueryRequest(b *testing.B) {
	a, _ := vectorAgent(b)
	tamKey, _ := cosekey.Parse(mustRead(b, "keys/suit-signer-p256-private.pem"))
	tam, _ := cosekey.NewSigner(tamKey, 0)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		items teep.DataItem
	}{{"tc-list", teep.DataItemTrustedComponents}, {"attestation", teep.DataItemAttestation | teep.DataItemTrustedComponents}} {
		q := &teep.QueryRequest{Token: make([]byte, 16), Challenge: make([]byte, 32), DataItemRequested: c.items,
			SupportedCipherSuites: teep.MandatoryCipherSuites(), SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles()}
		if c.items&teep.DataItemAttestation == 0 {
			q.Challenge = nil
		}
		msg, err := teep.Sign(q, tam, teep.SignOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ak, err := cosekey.FromSigner(a.tee.AgentKey(), 0)
		if err != nil {
			b.Fatal(err)
		}
		agentSigner, _ := cosekey.NewSigner(ak, 0)
		b.Run(c.name+"/baseline-open-and-sign", func(b *testing.B) {
			for b.Loop() {
				if _, err := teep.Open(msg, teep.OpenOptions{Keys: []*cosekey.Key{tamKey.PublicKey()}}); err != nil {
					b.Fatal(err)
				}
				if _, err := teep.Sign(&teep.QueryResponse{Token: q.Token}, agentSigner, teep.SignOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/agent", func(b *testing.B) {
			for b.Loop() {
				if _, err := a.ProcessTeepMessage(ctx, "https://tam.example/tam", msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInstall measures installing a 64 KiB Trusted Component through
// the Agent (Update verified, SUIT processing, sealed and fsynced storage,
// signed Success) against the baseline of the SUIT processor alone on an
// in-memory store.
func BenchmarkInstall(b *testing.B) {
	signerKey, _ := cosekey.Generate(cosekey.AlgESP256)
	signer, _ := cosekey.NewSigner(signerKey, 0)
	payload := make([]byte, 64<<10)
	seq := uint64(0)
	envelope := func() []byte {
		seq++
		e, err := suit.Build(suit.ManifestSpec{ManifestComponentID: suit.NewComponentID("bench", "suit"), SequenceNumber: seq,
			Components: []suit.ComponentSpec{{ID: suit.NewComponentID("bench", "ta"), Payload: payload, Integrated: true}}})
		if err != nil {
			b.Fatal(err)
		}
		e.Sign(signer)
		out, _ := e.Marshal(suit.MarshalOptions{})
		return out
	}
	ctx := context.Background()
	b.Run("baseline-processor-memstore", func(b *testing.B) {
		p, err := processor.New(processor.Config{Trust: []*cosekey.Key{signerKey.PublicKey()}, Store: processor.NewMemStore()})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			b.StopTimer()
			env := envelope()
			b.StartTimer()
			if _, err := p.Install(ctx, env, processor.RunOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("agent-update-softtee", func(b *testing.B) {
		a, tt := vectorAgent(b)
		AddTrustAnchor(tt.Storage(), RoleSigner, signerKey.PublicKey())
		tamKey, _ := cosekey.Parse(mustRead(b, "keys/suit-signer-p256-private.pem"))
		tam, _ := cosekey.NewSigner(tamKey, 0)
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			b.StopTimer()
			msg, err := teep.Sign(&teep.Update{Token: make([]byte, 16), ManifestList: [][]byte{envelope()}}, tam, teep.SignOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := a.ProcessTeepMessage(ctx, "https://tam.example/tam", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func mustRead(b testing.TB, name string) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		b.Fatal(err)
	}
	return data
}
