package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

const vectors = "../../testdata/teep"

func readHex(t testing.TB, name string) []byte {
	t.Helper()
	s, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorAgent is an Agent trusting the draft's Appendix E P-256 key as its
// TAM (the synthesized signed messages use it) and as TC signer.
func vectorAgent(t testing.TB) (*Agent, *softtee.TEE) {
	t.Helper()
	k, err := keyfile.Load(filepath.Join(vectors, "keys", "suit-signer-p256-public.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tt, err := softtee.Open(t.TempDir(), softtee.Options{Name: "vectors"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tt.Close() })
	for _, r := range []Role{RoleTAM, RoleSigner} {
		if err := AddTrustAnchor(tt.Storage(), r, k); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewSUIT(SUITConfig{TEE: tt})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{TEE: tt, Installer: s, TAMs: []string{"https://tam.example/tam"}})
	if err != nil {
		t.Fatal(err)
	}
	return a, tt
}

// TestSignedVectors feeds the synthesized signed Appendix D messages (the
// QueryRequest as COSE_Sign with ESP256 and Ed25519 signatures, and as
// COSE_Sign1; the Update as COSE_Sign1) to an Agent.
func TestSignedVectors(t *testing.T) {
	a, tt := vectorAgent(t)
	token, _ := hex.DecodeString("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
	for _, name := range []string{"query_request.cose_sign.hex", "query_request.cose_sign1_esp256.hex"} {
		r, err := a.ProcessTeepMessage(context.Background(), "https://tam.example/tam", readHex(t, "synthesized/"+name))
		if err != nil {
			t.Fatal(err)
		}
		op, err := teep.Open(r.Message, teep.OpenOptions{Keys: []*cosekey.Key{a.PublicKey()}})
		if err != nil {
			t.Fatal(err)
		}
		qr, ok := op.Message.(*teep.QueryResponse)
		if !ok {
			t.Fatalf("%s: answer %T %+v", name, op.Message, op.Message)
		}
		// D.1 asks for attestation and trusted components with a token and
		// no challenge: the passport model, eat_nonce = token.
		if !bytes.Equal(qr.Token, token) || qr.AttestationPayload == nil || qr.SelectedVersion == nil {
			t.Fatalf("%s: %+v", name, qr)
		}
		ev, err := eat.Parse(qr.AttestationPayload, eat.ParseOptions{})
		if err != nil || !bytes.Equal(ev.Claims.Nonce, token) {
			t.Fatalf("%s: Evidence nonce %x, %v", name, ev.Claims.Nonce, err)
		}
		if _, err := ev.Verify([]*cosekey.Key{tt.AttestationPublicKey()}); err != nil {
			t.Fatal(err)
		}
	}
	// D.4 Update: its embedded envelope predates the current SUIT draft
	// (the draft's errata); whatever the processor makes of it, the Agent
	// answers with the token and a SUIT report carrying it as nonce.
	r, err := a.ProcessTeepMessage(context.Background(), "https://tam.example/tam", readHex(t, "synthesized/update.cose_sign1_esp256.hex"))
	if err != nil {
		t.Fatal(err)
	}
	op, err := teep.Open(r.Message, teep.OpenOptions{Keys: []*cosekey.Key{a.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	var reports [][]byte
	switch m := op.Message.(type) {
	case *teep.Success:
		reports = m.SUITReports
		if !bytes.Equal(m.Token, token) {
			t.Fatal("token not echoed")
		}
	case *teep.Error:
		reports = m.SUITReports
		if !bytes.Equal(m.Token, token) || m.ErrCode != teep.ErrManifestProcessingFailed {
			t.Fatalf("Error %+v", m)
		}
		t.Logf("D.4 envelope refused: %s", m.ErrMsg)
	default:
		t.Fatalf("answer %T", m)
	}
	if len(reports) != 1 {
		t.Fatalf("%d SUIT reports", len(reports))
	}
	rep, err := suit.ParseReport(reports[0])
	if err != nil || !bytes.Equal(rep.Nonce, token) {
		t.Fatalf("report nonce %x, %v", rep.Nonce, err)
	}
}

// FuzzProcessTeepMessage: whatever arrives, the Agent never panics and
// answers with a signed, valid TEEP message (or nothing), never an error
// unless its own state is broken.
func FuzzProcessTeepMessage(f *testing.F) {
	for _, n := range []string{"synthesized/query_request.cose_sign.hex", "synthesized/query_request.cose_sign1_esp256.hex",
		"synthesized/update.cose_sign1_esp256.hex", "synthesized/success.cose_sign1_ed25519.hex",
		"draft-26/query_request.hex", "draft-26/update.hex", "pre-26-legacy/query_request.hex"} {
		f.Add(readHex(f, n))
	}
	a, _ := vectorAgent(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := a.ProcessTeepMessage(context.Background(), "https://tam.example/tam", data)
		if err != nil {
			t.Fatalf("error instead of a TEEP Error: %v", err)
		}
		if r.Message == nil {
			return
		}
		op, err := teep.Open(r.Message, teep.OpenOptions{Keys: []*cosekey.Key{a.PublicKey()}})
		if err != nil {
			t.Fatalf("the Agent's answer is invalid: %v", err)
		}
		switch op.Message.(type) {
		case *teep.QueryResponse, *teep.Success, *teep.Error:
		default:
			t.Fatalf("the Agent answered %T", op.Message)
		}
	})
}
