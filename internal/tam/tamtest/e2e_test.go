package tamtest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/tamtest"
	"github.com/teep-go/teep/teep"
)

var ctx = context.Background()

func sync(t *testing.T, a *tamtest.Agent, want ...string) *tamtest.Trace {
	t.Helper()
	tr, err := a.Sync(ctx)
	if err != nil {
		t.Fatalf("session: %v (trace %v)", err, tr.Types)
	}
	if len(want) > 0 && strings.Join(tr.Types, ",") != strings.Join(want, ",") {
		t.Fatalf("session went %v, want %v", tr.Types, want)
	}
	return tr
}

func has(t *testing.T, a *tamtest.Agent, name string) (uint64, bool) {
	t.Helper()
	seq, ok := a.Installed(ctx)[tamtest.ManifestID(name).String()]
	return seq, ok
}

// TestEndToEnd runs the whole life of a device against a TAM over a real
// loopback socket.
func TestEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts tamtest.Options
		n    teep.Numbering
	}{
		{"draft-26", tamtest.Options{}, teep.Draft26},
		{"legacy numbering", tamtest.Options{}, teep.Legacy},
		{"TLS", tamtest.Options{TLS: true}, teep.Draft26},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tamtest.Start(t, tc.opts)
			signer := tamtest.Signer(t)
			srv.TrustSigner(signer.PublicKey())
			app := srv.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("app v1")))
			srv.Require(app)
			opt := srv.Upload(tamtest.Envelope(t, signer, "opt", 3, []byte("optional")))
			srv.Offer(opt)
			a := srv.NewAgent(tamtest.AgentOptions{Numbering: tc.n, Trust: []*cosekey.Key{signer.PublicKey()}})

			// First contact with attestation, install.
			sync(t, a, "query-request", "query-response", "query-request", "query-response", "update", "success")
			if seq, ok := has(t, a, "app"); !ok || seq != 1 {
				t.Fatalf("app: %d %v", seq, ok)
			}
			d := srv.Device(a.KID())
			if d.Attestation != tam.AttestationAffirming || d.Status != tam.StatusOK || d.Numbering != tc.n.String() {
				t.Fatalf("device %+v", d.Device)
			}

			// Update to a higher sequence number.
			srv.Upload(tamtest.Envelope(t, signer, "app", 2, []byte("app v2")))
			sync(t, a, "query-request", "query-response", "update", "success")
			if seq, _ := has(t, a, "app"); seq != 2 {
				t.Fatalf("after update: app at %d", seq)
			}

			// Requested optional component.
			a.Request(tamtest.ManifestID("opt"), nil)
			sync(t, a, "query-request", "query-response", "update", "success")
			if seq, ok := has(t, a, "opt"); !ok || seq != 3 {
				t.Fatalf("requested: %d %v", seq, ok)
			}

			// Personalization data, encrypted to the Agent key.
			p := srv.Personalize(a.KID(), "config", []byte("per-device secret"))
			sync(t, a, "query-request", "query-response", "update", "success")
			if got, ok := a.Component(ctx, p.PayloadID); !ok || string(got) != "per-device secret" {
				t.Fatalf("personalization on the device: %q", got)
			}

			// Removal.
			srv.Unrequire(app)
			sync(t, a, "query-request", "query-response", "update", "success")
			if _, ok := has(t, a, "app"); ok {
				t.Fatal("app not removed")
			}
			if _, ok := has(t, a, "opt"); !ok {
				t.Fatal("the requested component went with the other one")
			}
			sync(t, a, "query-request", "query-response")
			d = srv.Device(a.KID())
			if len(d.Installed) != 2 || d.Status != tam.StatusOK {
				t.Fatalf("final inventory %+v status %s", d.Installed, d.Status)
			}
		})
	}
}

type httpCase struct {
	name        string
	method      string
	contentType string
	accept      string
	body        []byte
	status      int
	reason      string
}

// TestNegativeOverHTTP: each bad request gets the transport's answer (with
// a short plain-text reason) and leaves the database as it was.
func TestNegativeOverHTTP(t *testing.T) {
	srv := tamtest.Start(t, tamtest.Options{})
	signer := tamtest.Signer(t)
	srv.TrustSigner(signer.PublicKey())
	srv.Require(srv.Upload(tamtest.Envelope(t, signer, "app", 1, []byte("v1"))))
	a := srv.NewAgent(tamtest.AgentOptions{Trust: []*cosekey.Key{signer.PublicKey()}})
	sync(t, a)
	srv.Upload(tamtest.Envelope(t, signer, "app", 2, []byte("v2")))
	post := srv.Transport(teep.Draft26)

	q, err := post(ctx, nil)
	if err != nil || q == nil {
		t.Fatalf("empty POST: %v", err)
	}
	resp, err := a.Answer(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	badSig := bytes.Clone(resp)
	badSig[len(badSig)-2] ^= 0x55
	emptyOpts, _ := a.Sign(&teep.QueryResponse{})

	// Unknown Agent without evidence: ask it to attest, then strip the evidence.
	stranger := srv.NewAgent(tamtest.AgentOptions{Trust: []*cosekey.Key{signer.PublicKey()}})
	q1, _ := post(ctx, nil)
	r1, _ := stranger.Answer(ctx, q1)
	q2, err := post(ctx, r1)
	if err != nil || q2 == nil {
		t.Fatalf("unknown Agent's first QueryResponse: %v", err)
	}
	stranger.Tamper = func(m teep.Message) { m.(*teep.QueryResponse).AttestationPayload = nil }
	noEvidence, _ := stranger.Answer(ctx, q2)

	cases := []httpCase{
		{"garbage bytes", "POST", "application/teep+cbor", "", []byte{0xff, 0x00, 0x13, 0x37}, 400, "not a signed TEEP message"},
		{"bad signature", "POST", "application/teep+cbor", "", badSig, 400, "signature does not verify"},
		{"query response with empty options", "POST", "application/teep+cbor", "", emptyOpts, 400, "without token"},
		{"unknown agent without evidence", "POST", "application/teep+cbor", "", noEvidence, 400, "no attestation evidence"},
		{"wrong media type", "POST", "application/json", "", resp, 415, "Content-Type must be application/teep+cbor"},
		{"missing media type on a body", "POST", "", "", resp, 415, "Content-Type"},
		{"unacceptable Accept", "POST", "application/teep+cbor", "text/html", resp, 406, "application/teep+cbor"},
		{"oversize body", "POST", "application/teep+cbor", "", make([]byte, 5<<20), 413, "body larger than"},
		{"GET", "GET", "", "", nil, 405, "only POST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkHTTP(t, srv, c) })
	}

	// The genuine response, then its replay.
	u, err := post(ctx, resp)
	if err != nil || u == nil {
		t.Fatalf("genuine QueryResponse: %v", err)
	}
	t.Run("replayed token", func(t *testing.T) {
		checkHTTP(t, srv, httpCase{"", "POST", "application/teep+cbor", "", resp, 400, "token already used"})
	})
	success, err := a.Answer(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := post(ctx, success); err != nil || out != nil {
		t.Fatalf("genuine Success: %v", err)
	}
	t.Run("replayed Success", func(t *testing.T) {
		checkHTTP(t, srv, httpCase{"", "POST", "application/teep+cbor", "", success, 400, "unknown or already answered token"})
	})
	if seq, _ := has(t, a, "app"); seq != 2 {
		t.Fatalf("the genuine exchange did not install v2 (%d)", seq)
	}
}

func checkHTTP(t *testing.T, srv *tamtest.TAM, c httpCase) {
	t.Helper()
	before := srv.Dump()
	req, err := http.NewRequestWithContext(ctx, c.method, srv.URL, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	resp, err := srv.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != c.status {
		t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, c.status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != httpd.MediaTypeProblem {
		t.Fatalf("error Content-Type %q", ct)
	}
	if !strings.Contains(string(body), c.reason) || len(body) > 300 || bytes.Contains(body, []byte("<")) {
		t.Fatalf("reason %q, want a short text containing %q", body, c.reason)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'",
		"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(h); got != want {
			t.Fatalf("%s: %q, want %q", h, got, want)
		}
	}
	if after := srv.Dump(); after != before {
		t.Fatalf("database changed:\n%s\n---\n%s", before, after)
	}
}

// TestSuccessHeaders checks 200/204 answers.
func TestSuccessHeaders(t *testing.T) {
	srv := tamtest.Start(t, tamtest.Options{})
	for _, ct := range []string{"", "application/teep+cbor"} {
		req, _ := http.NewRequest("POST", srv.URL, nil)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		req.Header.Set("Accept", "application/teep+cbor")
		resp, err := srv.HTTPClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/teep+cbor" || len(body) == 0 {
			t.Fatalf("empty POST (Content-Type %q): %d %q", ct, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'",
			"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
			if got := resp.Header.Get(h); got != want {
				t.Fatalf("%s: %q, want %q", h, got, want)
			}
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Fatal("a cookie was set")
		}
		op, err := teep.Open(body, teep.OpenOptions{Keys: srv.Keys()})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := op.Message.(*teep.QueryRequest); !ok || len(op.Signatures) != 2 {
			t.Fatalf("session start answered %T with %d signatures", op.Message, len(op.Signatures))
		}
	}
	// A known device with nothing to do ends the session with 204.
	signer := tamtest.Signer(t)
	a := srv.NewAgent(tamtest.AgentOptions{Trust: []*cosekey.Key{signer.PublicKey()}})
	sync(t, a)
	q, err := a.Transport()(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Answer(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(r))
	req.Header.Set("Content-Type", "application/teep+cbor")
	resp, err := srv.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 || resp.Header.Get("Content-Type") != "" {
		t.Fatalf("nothing to do: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}
