package conform

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/coapbind"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// MediaType is the TEEP media type (draft-ietf-teep-protocol-26 §11.1).
const MediaType = "application/teep+cbor"

// Limits of a run.
const (
	// MaxResponseSize bounds a response body the kit reads.
	MaxResponseSize = 64 << 20
	// OversizedBody is the body of the oversized-request check: larger than
	// any TEEP message a TAM should accept from an Agent.
	OversizedBody = 17 << 20
	// DefaultRequestTimeout bounds each request.
	DefaultRequestTimeout = 30 * time.Second
	// tokenSamples is how many sessions the token-uniqueness check opens.
	tokenSamples = 4
)

// NumberingAuto tries draft-26 first, then the numbering of drafts 18-25.
const NumberingAuto = -1

// TAMOptions configure RunTAM.
type TAMOptions struct {
	URL string
	// Numbering of the messages: teep.Draft26, teep.Legacy, or
	// NumberingAuto (decided from the TAM's first QueryRequest).
	Numbering teep.Numbering
	// AgentKey is a private Agent key the TAM trusts (registered in
	// advance); the session checks that need a known device are skipped
	// without it.
	AgentKey *cosekey.Key
	// TAMKey is the TAM's public key; without it signatures are checked for
	// form only.
	TAMKey *cosekey.Key
	// AllowRemote permits a URL that is not on a loopback address. The kit
	// sends malformed and oversized requests: point it only at a TAM you
	// are entitled to test.
	AllowRemote bool
	// Client replaces the HTTP client (custom TLS roots, tests).
	Client *http.Client
	// TLSConfig verifies a coaps+tcp TAM, and its RootCAs a coaps (DTLS)
	// TAM's certificate (nil: the system roots).
	TLSConfig *tls.Config
	// PSK and PSKIdentity, when PSK is set, reach a coaps TAM with a DTLS
	// pre-shared key (RFC 7925 §4.2) instead of its certificate.
	PSK         []byte
	PSKIdentity string
}

// ErrNotLoopback is returned for a remote URL without AllowRemote.
var ErrNotLoopback = errors.New("conform: the TAM URL is not on a loopback address (use --allow-remote to test a remote TAM)")

// check is one entry of the catalogue.
type check struct {
	id, group, title, section string
	required                  bool
	run                       func(*tamRun) (Status, string)
	// over names the one transport the check applies to (overHTTP,
	// overCoAP), with the reason it does not apply to the other; ""
	// applies to both.
	over, why string
}

// tamChecks is the catalogue, in report order.
var tamChecks = []check{
	{"http.empty-post", "transport", "an empty POST with only Accept starts a session", "otrp-over-http-15 §6.2", true, checkEmptyPOST, overHTTP, "coap.empty-post checks this over CoAP"},
	{"http.response-headers", "transport", "a response with content carries the four headers", "otrp-over-http-15 §4", true, checkResponseHeaders, overHTTP, "the headers are HTTP's; CoAP has no such options"},
	{"http.wrong-content-type", "transport", "a body of another media type gets 415", "otrp-over-http-15 §6.1", false, checkWrongContentType, overHTTP, "coap.wrong-content-format checks this over CoAP"},
	{"http.missing-content-type", "transport", "a body without Content-Type gets 415", "otrp-over-http-15 §6.1", false, checkMissingContentType, overHTTP, "coap.missing-content-format checks this over CoAP"},
	{"http.wrong-accept", "transport", "an incompatible Accept gets a 4xx", "otrp-over-http-15 §6.1", false, checkWrongAccept, overHTTP, "coap.wrong-accept checks this over CoAP"},
	{"http.only-post", "transport", "methods other than POST are refused", "otrp-over-http-15 §4", true, checkOnlyPOST, overHTTP, "coap.only-post checks this over CoAP"},
	{"http.oversized-body", "transport", "an oversized body is refused with a 4xx", "otrp-over-http-15 §6.4", true, checkOversized, overHTTP, "coap.oversized-body checks this over CoAP"},
	{"coap.empty-post", "transport", "an empty POST starts a session: 2.04 with Content-Format", "coap-binding §2", true, checkCoAPEmptyPOST, overCoAP, "http.empty-post checks this over HTTP"},
	{"coap.wrong-content-format", "transport", "a payload of another Content-Format gets 4.15", "coap-binding §2", true, checkCoAPWrongFormat, overCoAP, "http.wrong-content-type checks this over HTTP"},
	{"coap.missing-content-format", "transport", "a payload without Content-Format gets 4.15", "coap-binding §2", true, checkCoAPMissingFormat, overCoAP, "http.missing-content-type checks this over HTTP"},
	{"coap.wrong-accept", "transport", "an Accept without TEEP's Content-Format gets 4.06", "coap-binding §2", false, checkCoAPWrongAccept, overCoAP, "http.wrong-accept checks this over HTTP"},
	{"coap.only-post", "transport", "methods other than POST get 4.05", "coap-binding §2", true, checkCoAPOnlyPOST, overCoAP, "http.only-post checks this over HTTP"},
	{"coap.oversized-body", "transport", "a Block1 transfer announcing too large a Size1 gets 4.13 with Size1", "coap-binding §5, RFC 7959 §4", true, checkCoAPOversized, overCoAP, "http.oversized-body checks this over HTTP"},
	{"qr.signed", "query-request", "the QueryRequest is a COSE-signed TEEP message", "protocol-26 §4.1.2, §4.2", true, checkQRSigned, "", ""},
	{"qr.alg", "query-request", "every signature uses a TEEP algorithm", "protocol-26 §8", true, checkQRAlg, "", ""},
	{"qr.kid", "query-request", "every signature names its key (kid)", "protocol-26 §4.1", false, checkQRKID, "", ""},
	{"qr.token", "query-request", "token (or challenge) present, token 8-64 bytes", "protocol-26 §4.1.1, §4.2", true, checkQRToken, "", ""},
	{"qr.token-unique", "query-request", "each session gets a new token", "protocol-26 §4.1.1", true, checkQRTokenUnique, "", ""},
	{"qr.versions", "query-request", "versions absent or offering version 0", "protocol-26 §4.2", true, checkQRVersions, "", ""},
	{"qr.cipher-suites", "query-request", "a mandatory cipher suite is offered", "protocol-26 §8.2", true, checkQRSuites, "", ""},
	{"qr.data-item-requested", "query-request", "data-item-requested names only defined items", "protocol-26 §4.2", true, checkQRDataItems, "", ""},
	{"session.malformed-cbor", "sessions", "malformed CBOR is refused cleanly", "protocol-26 §4.1.2", true, checkMalformed, "", ""},
	{"session.unknown-agent", "sessions", "an unknown Agent is asked to attest or refused cleanly", "protocol-26 §4.3", true, checkUnknownAgent, "", ""},
	{"session.unknown-token", "sessions", "a QueryResponse with a token never issued is refused", "protocol-26 §4.1.1", true, checkUnknownToken, "", ""},
	{"session.success-unknown-token", "sessions", "a Success for a token never issued is refused", "protocol-26 §4.5", true, checkSuccessUnknownToken, "", ""},
	{"session.wrong-type", "sessions", "a message type only TAMs send is refused", "protocol-26 §4.1.2", true, checkWrongType, "", ""},
	{"session.empty-options", "sessions", "a QueryResponse with empty options is refused cleanly", "protocol-26 §4.3", true, checkEmptyOptions, "", ""},
	{"session.bad-signature", "sessions", "a QueryResponse whose signature fails is refused", "protocol-26 §4.1.2", true, checkBadSignature, "", ""},
	{"session.valid-response", "sessions", "a valid QueryResponse ends in 204 or an Update", "protocol-26 §4.3, otrp-over-http-15 §6.3", true, checkValidResponse, "", ""},
	{"session.replayed-token", "sessions", "a replayed QueryResponse is not processed again", "protocol-26 §4.1.1", true, checkReplay, "", ""},
	{"update.well-formed", "update", "the Update is signed, fresh and carries SUIT envelopes", "protocol-26 §4.4", true, checkUpdate, "", ""},
	{"update.success", "update", "a Success for the Update ends the session", "protocol-26 §4.5", true, checkUpdateSuccess, "", ""},
}

// RunTAM runs every check against the TAM at o.URL.
func RunTAM(ctx context.Context, o TAMOptions) (*Report, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && !isCoAPScheme(u.Scheme)) {
		return nil, fmt.Errorf("conform: TAM URL %q: want an absolute http, https, coap, coaps, coap+tcp or coaps+tcp URL", o.URL)
	}
	if !o.AllowRemote && !isLoopback(u.Hostname()) {
		return nil, ErrNotLoopback
	}
	r := &tamRun{ctx: ctx, o: o, client: o.Client}
	over := overHTTP
	if isCoAPScheme(u.Scheme) {
		over = overCoAP
		if r.coap, err = dialCoAP(ctx, u, o.TLSConfig, coapbind.DTLSClient{PSK: o.PSK, PSKIdentity: o.PSKIdentity}); err != nil {
			return nil, err
		}
		defer r.coap.close()
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: DefaultRequestTimeout}
	}
	// Redirects are never followed (otrp-over-http-15 §4).
	c := *r.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r.client = &c
	if r.stranger, err = newSigner(); err != nil {
		return nil, err
	}
	if o.AgentKey != nil {
		if r.agent, err = cosekey.NewSigner(o.AgentKey, o.AgentKey.Alg()); err != nil {
			return nil, fmt.Errorf("conform: agent key: %w", err)
		}
	}
	r.num = o.Numbering
	r.detectNumbering()
	rep := &Report{Target: o.URL, Numbering: r.num.String()}
	for _, c := range tamChecks {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if c.over != "" && c.over != over {
			rep.add(Result{ID: c.id, Group: c.group, Title: c.title, Section: c.section, Required: c.required,
				Status: NotApplicable, Detail: "not applicable over " + strings.ToUpper(over) + ": " + c.why})
			continue
		}
		st, detail := c.run(r)
		rep.add(Result{ID: c.id, Group: c.group, Title: c.title, Section: c.section, Required: c.required, Status: st, Detail: detail})
	}
	return rep, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newSigner() (*cosekey.Signer, error) {
	k, err := cosekey.Generate(cosekey.AlgESP256)
	if err != nil {
		return nil, err
	}
	return cosekey.NewSigner(k, cosekey.AlgESP256)
}

// tamRun is the state of one run.
type tamRun struct {
	ctx      context.Context
	o        TAMOptions
	client   *http.Client
	coap     *coapTransport // nil over HTTP
	num      teep.Numbering
	stranger *cosekey.Signer // an Agent key no TAM knows
	agent    *cosekey.Signer // the trusted Agent key; nil without one

	// Shared by the session and update checks.
	validQR     []byte       // the trusted Agent's QueryResponse, as sent
	validAnswer *exchange    // what the TAM answered to it
	update      *teep.Update // the Update in that answer, if any
}

// exchange is one request and its response. Over CoAP, status is the
// code as the binding mirrors HTTP (coapTransport.do) and the CoAP fields
// are set too.
type exchange struct {
	status int
	header http.Header
	body   []byte

	coap      codes.Code
	format    message.MediaType
	hasFormat bool
	size1     uint32
	hasSize1  bool
}

func (r *tamRun) do(method string, body []byte, header map[string]string) (*exchange, error) {
	if r.coap != nil {
		return r.coap.do(r.ctx, method, body, header)
	}
	req, err := http.NewRequestWithContext(r.ctx, method, r.o.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("User-Agent", "teep-conform")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(b) > MaxResponseSize {
		return nil, fmt.Errorf("response larger than %d bytes", MaxResponseSize)
	}
	return &exchange{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// post sends a TEEP message (or an empty POST) the way a Broker does.
func (r *tamRun) post(msg []byte) (*exchange, error) {
	h := map[string]string{"Accept": MediaType}
	if len(msg) > 0 {
		h["Content-Type"] = MediaType
	}
	return r.do(http.MethodPost, msg, h)
}

// session opens a session: an empty POST and the QueryRequest it returns.
func (r *tamRun) session() (*teep.Opened, *teep.QueryRequest, *exchange, error) {
	ex, err := r.post(nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if ex.status != http.StatusOK || len(ex.body) == 0 {
		return nil, nil, ex, fmt.Errorf("empty POST answered %d with %d bytes", ex.status, len(ex.body))
	}
	op, err := r.open(ex.body)
	if err != nil {
		return nil, nil, ex, err
	}
	q, ok := op.Message.(*teep.QueryRequest)
	if !ok {
		return op, nil, ex, fmt.Errorf("the TAM started with %s, not a QueryRequest", op.Message.Type())
	}
	return op, q, ex, nil
}

// open verifies a TAM message with TAMKey when given, and decodes it.
func (r *tamRun) open(b []byte) (*teep.Opened, error) {
	o := teep.OpenOptions{Numbering: r.num, SkipVerifyUnsafe: r.o.TAMKey == nil}
	if r.o.TAMKey != nil {
		o.Keys = []*cosekey.Key{r.o.TAMKey}
	}
	return teep.Open(b, o)
}

// detectNumbering settles NumberingAuto from the first QueryRequest.
func (r *tamRun) detectNumbering() {
	if r.num != NumberingAuto {
		return
	}
	r.num = teep.Draft26
	ex, err := r.post(nil)
	if err != nil || len(ex.body) == 0 {
		return
	}
	for _, n := range []teep.Numbering{teep.Draft26, teep.Legacy} {
		if op, err := teep.Open(ex.body, teep.OpenOptions{Numbering: n, SkipVerifyUnsafe: true}); err == nil {
			if _, ok := op.Message.(*teep.QueryRequest); ok {
				r.num = n
				return
			}
		}
	}
}

func (r *tamRun) sign(m teep.Message, s *cosekey.Signer) ([]byte, error) {
	return teep.Sign(m, s, teep.SignOptions{Encode: teep.EncodeOptions{Numbering: r.num}})
}

func failf(format string, a ...any) (Status, string) { return Fail, fmt.Sprintf(format, a...) }
func skipf(format string, a ...any) (Status, string) { return Skip, fmt.Sprintf(format, a...) }
func passf(format string, a ...any) (Status, string) { return Pass, fmt.Sprintf(format, a...) }

// refusedCleanly judges the answer to a message the TAM must not accept: a
// 4xx, or a 2xx without content (the message ignored). Never a 5xx, never
// an HTML page, never a TEEP message that carries on as if it were valid.
func refusedCleanly(ex *exchange, err error) (Status, string) {
	if err != nil {
		return failf("request failed: %v", err)
	}
	ct := ex.header.Get("Content-Type")
	switch {
	case ex.status >= 500:
		return failf("answered %d", ex.status)
	case strings.Contains(strings.ToLower(ct), "html"):
		return failf("answered %d with an HTML body", ex.status)
	case ex.status >= 400:
		return passf("%d", ex.status)
	case ex.status >= 200 && ex.status < 300 && len(ex.body) == 0:
		return passf("%d without content (ignored)", ex.status)
	}
	return failf("answered %d with %d bytes of %q: the message was not refused", ex.status, len(ex.body), ct)
}

// ---- transport ----

func checkEmptyPOST(r *tamRun) (Status, string) {
	ex, err := r.do(http.MethodPost, nil, map[string]string{"Accept": MediaType})
	if err != nil {
		return failf("%v", err)
	}
	if ex.status != http.StatusOK || len(ex.body) == 0 {
		return failf("answered %d with %d bytes; want 200 with a TEEP message", ex.status, len(ex.body))
	}
	return passf("200, %d bytes", len(ex.body))
}

func checkResponseHeaders(r *tamRun) (Status, string) {
	ex, err := r.post(nil)
	if err != nil {
		return failf("%v", err)
	}
	if len(ex.body) == 0 {
		return failf("the empty POST got no content to check")
	}
	want := map[string]string{
		"Content-Type":            MediaType,
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'",
		"Referrer-Policy":         "no-referrer",
	}
	var bad []string
	for _, k := range []string{"Content-Type", "X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy"} {
		got := ex.header.Get(k)
		if k == "Content-Type" {
			got, _, _ = strings.Cut(got, ";")
		}
		if !strings.EqualFold(strings.TrimSpace(got), want[k]) {
			bad = append(bad, fmt.Sprintf("%s: %q, want %q", k, ex.header.Get(k), want[k]))
		}
	}
	if len(bad) > 0 {
		return failf("%s", strings.Join(bad, "; "))
	}
	return passf("")
}

func wantStatus(ex *exchange, err error, codes ...int) (Status, string) {
	if err != nil {
		return failf("%v", err)
	}
	for _, c := range codes {
		if ex.status == c {
			return passf("%d", ex.status)
		}
	}
	return failf("answered %d, want %v", ex.status, codes)
}

func checkWrongContentType(r *tamRun) (Status, string) {
	ex, err := r.do(http.MethodPost, []byte{0xa0}, map[string]string{"Accept": MediaType, "Content-Type": "text/plain"})
	return wantStatus(ex, err, http.StatusUnsupportedMediaType)
}

func checkMissingContentType(r *tamRun) (Status, string) {
	ex, err := r.do(http.MethodPost, []byte{0xa0}, map[string]string{"Accept": MediaType})
	return wantStatus(ex, err, http.StatusUnsupportedMediaType)
}

func checkWrongAccept(r *tamRun) (Status, string) {
	ex, err := r.do(http.MethodPost, nil, map[string]string{"Accept": "text/html"})
	if err != nil {
		return failf("%v", err)
	}
	if ex.status >= 400 && ex.status < 500 {
		return passf("%d", ex.status)
	}
	return failf("answered %d to Accept: text/html", ex.status)
}

func checkOnlyPOST(r *tamRun) (Status, string) {
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		ex, err := r.do(m, nil, map[string]string{"Accept": MediaType})
		if err != nil {
			return failf("%s: %v", m, err)
		}
		if ex.status < 400 || ex.status >= 500 {
			return failf("%s answered %d, want a 4xx (405)", m, ex.status)
		}
	}
	return passf("")
}

func checkOversized(r *tamRun) (Status, string) {
	body := make([]byte, OversizedBody)
	body[0] = 0xd2 // a COSE_Sign1 tag, then zeros
	ex, err := r.post(body)
	if err != nil {
		// A TAM may close the connection once it has read enough: that is a
		// refusal too, as long as it says nothing worse.
		return passf("connection closed: %v", err)
	}
	return refusedCleanly(ex, nil)
}

// ---- QueryRequest ----

func checkQRSigned(r *tamRun) (Status, string) {
	_, _, _, err := r.session()
	if err != nil {
		return failf("%v", err)
	}
	if r.o.TAMKey == nil {
		return passf("signature form only: no --tam-key given")
	}
	return passf("verified with the TAM key")
}

func checkQRAlg(r *tamRun) (Status, string) {
	op, _, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	for _, s := range op.Signatures {
		switch s.Alg {
		case cosekey.AlgESP256, cosekey.AlgEd25519, cosekey.AlgES256, cosekey.AlgEdDSA:
		default:
			return failf("a signature uses algorithm %d", s.Alg)
		}
	}
	return passf("%d signature(s)", len(op.Signatures))
}

func checkQRKID(r *tamRun) (Status, string) {
	op, _, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	for i, s := range op.Signatures {
		if len(s.KID) == 0 {
			return failf("signature %d has no kid", i)
		}
	}
	return passf("")
}

func checkQRToken(r *tamRun) (Status, string) {
	_, q, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	switch {
	case q.Token == nil && q.Challenge == nil:
		return failf("neither token nor challenge: the response cannot be matched")
	case q.Token != nil && (len(q.Token) < 8 || len(q.Token) > 64):
		return failf("token of %d bytes", len(q.Token))
	}
	return passf("token %d bytes, challenge %d bytes", len(q.Token), len(q.Challenge))
}

func checkQRTokenUnique(r *tamRun) (Status, string) {
	seen := map[string]bool{}
	for i := 0; i < tokenSamples; i++ {
		_, q, _, err := r.session()
		if err != nil {
			return skipf("no QueryRequest: %v", err)
		}
		id := string(q.Token) + "\x00" + string(q.Challenge)
		if seen[id] {
			return failf("session %d got the token (or challenge) of an earlier one", i+1)
		}
		seen[id] = true
	}
	return passf("%d sessions, %d distinct tokens", tokenSamples, len(seen))
}

func checkQRVersions(r *tamRun) (Status, string) {
	_, q, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	if q.Versions == nil {
		return passf("absent (version 0)")
	}
	for _, v := range q.Versions {
		if v == 0 {
			return passf("%v", q.Versions)
		}
	}
	return failf("versions %v do not include 0", q.Versions)
}

func checkQRSuites(r *tamRun) (Status, string) {
	_, q, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	for _, s := range q.SupportedCipherSuites {
		if s.Equal(teep.CipherSuiteESP256) || s.Equal(teep.CipherSuiteEd25519) {
			return passf("%d suite(s)", len(q.SupportedCipherSuites))
		}
	}
	return failf("no mandatory suite among %d", len(q.SupportedCipherSuites))
}

func checkQRDataItems(r *tamRun) (Status, string) {
	_, q, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	const defined = teep.DataItemAttestation | teep.DataItemTrustedComponents | teep.DataItemExtensions | teep.DataItemSUITReports
	if q.DataItemRequested&^defined != 0 {
		return failf("undefined bits %#x", uint64(q.DataItemRequested&^defined))
	}
	return passf("%#x", uint64(q.DataItemRequested))
}

// ---- sessions ----

func checkMalformed(r *tamRun) (Status, string) {
	return refusedCleanly(r.post([]byte{0xd2, 0x84, 0xff, 0x00, 0x13}))
}

func checkUnknownAgent(r *tamRun) (Status, string) {
	_, q, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	msg, err := r.sign(&teep.QueryResponse{Token: q.Token}, r.stranger)
	if err != nil {
		return failf("%v", err)
	}
	ex, err := r.post(msg)
	if err != nil {
		return failf("%v", err)
	}
	if ex.status == http.StatusOK && len(ex.body) > 0 {
		op, err := r.open(ex.body)
		if err != nil {
			return failf("answered with something that is not a TEEP message: %v", err)
		}
		if q2, ok := op.Message.(*teep.QueryRequest); ok && q2.DataItemRequested.Has(teep.DataItemAttestation) {
			return passf("asked to attest")
		}
		return failf("answered an unknown Agent with %s", op.Message.Type())
	}
	return refusedCleanly(ex, nil)
}

func checkUnknownToken(r *tamRun) (Status, string) {
	msg, err := r.sign(&teep.QueryResponse{Token: randomToken()}, r.stranger)
	if err != nil {
		return failf("%v", err)
	}
	return refusedCleanly(r.post(msg))
}

func checkSuccessUnknownToken(r *tamRun) (Status, string) {
	s := r.stranger
	if r.agent != nil {
		s = r.agent // a known device, so only the token is wrong
	}
	msg, err := r.sign(&teep.Success{Token: randomToken()}, s)
	if err != nil {
		return failf("%v", err)
	}
	return refusedCleanly(r.post(msg))
}

func checkWrongType(r *tamRun) (Status, string) {
	msg, err := r.sign(&teep.QueryRequest{Token: randomToken(), SupportedCipherSuites: teep.MandatoryCipherSuites(),
		SupportedSUITCOSEProfiles: teep.MandatorySUITCOSEProfiles(), DataItemRequested: teep.DataItemTrustedComponents}, r.stranger)
	if err != nil {
		return failf("%v", err)
	}
	return refusedCleanly(r.post(msg))
}

func checkEmptyOptions(r *tamRun) (Status, string) {
	msg, err := r.sign(&teep.QueryResponse{}, r.stranger)
	if err != nil {
		return failf("%v", err)
	}
	return refusedCleanly(r.post(msg))
}

func checkBadSignature(r *tamRun) (Status, string) {
	if r.agent == nil {
		return skipf("needs --agent-key: only a known Agent's bad signature tests the signature check")
	}
	_, q, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	msg, err := r.sign(&teep.QueryResponse{Token: q.Token}, r.agent)
	if err != nil {
		return failf("%v", err)
	}
	msg[len(msg)-1] ^= 0x01
	return refusedCleanly(r.post(msg))
}

// answerAsAgent answers q as the trusted Agent with nothing installed.
func (r *tamRun) answerAsAgent(q *teep.QueryRequest) ([]byte, error) {
	return r.sign(&teep.QueryResponse{Token: q.Token}, r.agent)
}

func checkValidResponse(r *tamRun) (Status, string) {
	if r.agent == nil {
		return skipf("needs --agent-key (an Agent key the TAM trusts)")
	}
	_, q, _, err := r.session()
	if err != nil {
		return skipf("no QueryRequest: %v", err)
	}
	if r.validQR, err = r.answerAsAgent(q); err != nil {
		return failf("%v", err)
	}
	ex, err := r.post(r.validQR)
	if err != nil {
		return failf("%v", err)
	}
	r.validAnswer = ex
	switch {
	case ex.status == http.StatusNoContent || (ex.status/100 == 2 && len(ex.body) == 0):
		return passf("%d: nothing to do for this device", ex.status)
	case ex.status == http.StatusOK:
		op, err := r.open(ex.body)
		if err != nil {
			return failf("answer is not a TEEP message: %v", err)
		}
		switch m := op.Message.(type) {
		case *teep.Update:
			r.update = m
			return passf("an Update with %d manifest(s), %d unneeded", len(m.ManifestList), len(m.UnneededManifestList))
		case *teep.QueryRequest:
			return passf("another QueryRequest (data-item-requested %#x)", uint64(m.DataItemRequested))
		}
		return failf("answered with %s", op.Message.Type())
	}
	return failf("answered %d", ex.status)
}

func checkReplay(r *tamRun) (Status, string) {
	if r.validQR == nil {
		return skipf("needs a valid QueryResponse (session.valid-response)")
	}
	ex, err := r.post(r.validQR)
	if err != nil {
		return failf("%v", err)
	}
	if ex.status == http.StatusOK && len(ex.body) > 0 {
		if op, err := r.open(ex.body); err == nil {
			if _, ok := op.Message.(*teep.Update); ok {
				return failf("the replay got an Update: the token was accepted twice")
			}
		}
	}
	return refusedCleanly(ex, nil)
}

func checkUpdate(r *tamRun) (Status, string) {
	if r.update == nil {
		return skipf("the TAM sent no Update to the test Agent (give it a component to install for that Agent)")
	}
	u := r.update
	q := &teep.QueryResponse{}
	if op, err := teep.Open(r.validQR, teep.OpenOptions{Numbering: r.num, SkipVerifyUnsafe: true}); err == nil {
		q = op.Message.(*teep.QueryResponse)
	}
	switch {
	case u.Token == nil:
		return failf("the Update has no token")
	case bytes.Equal(u.Token, q.Token):
		return failf("the Update reuses the QueryRequest's token")
	case len(u.ManifestList) == 0 && len(u.UnneededManifestList) == 0:
		return failf("the Update carries no manifest and no unneeded manifest")
	}
	for i, env := range u.ManifestList {
		if _, err := suit.ParseEnvelope(env, suit.ParseOptions{}); err != nil {
			return failf("manifest-list[%d]: %v", i, err)
		}
	}
	return passf("%d SUIT envelope(s)", len(u.ManifestList))
}

func checkUpdateSuccess(r *tamRun) (Status, string) {
	if r.update == nil {
		return skipf("no Update (update.well-formed)")
	}
	msg, err := r.sign(&teep.Success{Token: r.update.Token}, r.agent)
	if err != nil {
		return failf("%v", err)
	}
	ex, err := r.post(msg)
	if err != nil {
		return failf("%v", err)
	}
	if ex.status/100 == 2 && len(ex.body) == 0 {
		return passf("%d", ex.status)
	}
	if ex.status == http.StatusOK {
		if op, err := r.open(ex.body); err == nil {
			return passf("answered with %s", op.Message.Type())
		}
	}
	return failf("answered %d with %d bytes", ex.status, len(ex.body))
}

func randomToken() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}
