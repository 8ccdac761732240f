package fleetsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/attester"
	"github.com/teep-go/teep/internal/tam/teephttp"
	"github.com/teep-go/teep/internal/tee/softtee"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// MaxResponseBytes bounds a TAM answer a simulated device reads: TEEP
// messages carrying one component of the simulator's largest size.
const MaxResponseBytes = MaxSize + 64<<10

// installed is one component a light device holds.
type installed struct {
	id     suit.ComponentID
	size   uint64
	sha256 []byte
}

// lightDevice is a device of the light model: an Agent key and an
// in-memory inventory, no sealed storage.
type lightDevice struct {
	signer  *cosekey.Signer
	key     *cosekey.Key
	tamKeys []*cosekey.Key
	signers []*cosekey.Key // trusted Trusted Component signers
	payload suit.ComponentID
	inv     []installed
	// attester signs Evidence (scenario attest); nil for pre-registered
	// devices.
	attester *attester.Attester
	hwmodel  []byte
	ex       exchanger
}

// roundError is a failed round, classified for the errors-by-kind count.
type roundError struct {
	kind string
	err  error
}

func (e *roundError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *roundError) Unwrap() error { return e.err }

func fail(kind string, format string, args ...any) error {
	return &roundError{kind: kind, err: fmt.Errorf(format, args...)}
}

// Kind names the class of a round's failure: http-<status>,
// teep-error:<err-code name>, transport, protocol.
func Kind(err error) string {
	var re *roundError
	if errors.As(err, &re) {
		return re.kind
	}
	return "other"
}

// post sends one TEEP/HTTP message (empty to start a session) and returns the
// TAM's answer, nil for 204 (session over).
func post(ctx context.Context, c *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fail("transport", "%w", err)
	}
	req.Header.Set("Accept", teephttp.MediaType)
	req.Header.Set("Content-Type", teephttp.MediaType)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fail("transport", "%w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fail("transport", "read answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fail("http-"+strconv.Itoa(resp.StatusCode), "TAM answered %s", resp.Status)
	case len(b) > MaxResponseBytes:
		return nil, fail("protocol", "answer exceeds %d bytes", MaxResponseBytes)
	}
	return b, nil
}

// round runs one policy-check round and returns the number of messages
// it sent (POSTs).
func (d *lightDevice) round(ctx context.Context) (msgs int, err error) {
	in, err := d.ex.post(ctx, nil)
	msgs++
	for err == nil && in != nil {
		var out []byte
		var done bool
		out, done, err = d.answer(in)
		if err != nil || done {
			break
		}
		in, err = d.ex.post(ctx, out)
		msgs++
	}
	return msgs, err
}

func (d *lightDevice) close() error { return nil }

// answer is the Agent's reply to one TAM message. done: the round ends
// without a reply.
func (d *lightDevice) answer(in []byte) (out []byte, done bool, err error) {
	op, err := teep.Open(in, teep.OpenOptions{Keys: d.tamKeys})
	if err != nil {
		return nil, false, fail("protocol", "TAM message: %w", err)
	}
	switch m := op.Message.(type) {
	case *teep.QueryRequest:
		resp := &teep.QueryResponse{Token: m.Token}
		if m.DataItemRequested.Has(teep.DataItemAttestation) {
			if d.attester == nil {
				return nil, false, fail("protocol", "the TAM asks for attestation of a pre-registered light device")
			}
			nonce := m.Challenge
			if nonce == nil {
				nonce = m.Token
			}
			ev, err := d.attester.Evidence(attester.Request{Nonce: nonce, AgentKey: d.key, IncludeAgentKey: true})
			if err != nil {
				return nil, false, fail("protocol", "evidence: %w", err)
			}
			resp.AttestationPayload = ev
		}
		for _, c := range d.inv {
			size := c.size
			resp.TCList = append(resp.TCList, teep.SystemPropertyClaims{ComponentID: c.id, ImageSize: &size,
				ImageDigest: &teep.Digest{Alg: eat.AlgSHA256, Bytes: c.sha256},
				VendorID:    softtee.DefaultVendorID[:], ClassID: softtee.DefaultClassID[:]})
		}
		out, err = teep.Sign(resp, d.signer, teep.SignOptions{})
	case *teep.Update:
		if m.ErrCode != 0 {
			return nil, true, fail("teep-error:"+m.ErrCode.String(), "TAM: %s", m.ErrMsg)
		}
		for i, raw := range m.ManifestList {
			if err := d.install(raw); err != nil {
				return nil, false, fail("protocol", "manifest-list[%d]: %w", i, err)
			}
		}
		out, err = teep.Sign(&teep.Success{Token: m.Token}, d.signer, teep.SignOptions{})
	default:
		return nil, false, fail("protocol", "unexpected %s", op.Message.Type())
	}
	if err != nil {
		return nil, false, fail("protocol", "sign: %w", err)
	}
	return out, false, nil
}

// install authenticates a SUIT envelope (its signature, by a trusted
// signer) and records its integrated payload as installed.
func (d *lightDevice) install(raw []byte) error {
	env, err := suit.ParseEnvelope(raw, suit.ParseOptions{})
	if err != nil {
		return err
	}
	if _, err := env.Verify(d.signers); err != nil {
		return err
	}
	in := env.Integrated()
	if len(in) != 1 {
		return fmt.Errorf("want one integrated payload, found %d", len(in))
	}
	sum := sha256.Sum256(in[0].Data)
	c := installed{id: d.payload, size: uint64(len(in[0].Data)), sha256: sum[:]}
	for i := range d.inv {
		if d.inv[i].id.String() == c.id.String() {
			d.inv[i] = c
			return nil
		}
	}
	d.inv = append(d.inv, c)
	return nil
}
