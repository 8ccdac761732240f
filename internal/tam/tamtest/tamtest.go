package tamtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/httpd"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/internal/tam/admin"
	"github.com/teep-go/teep/internal/tam/appraiser"
	"github.com/teep-go/teep/internal/tam/sqlitestore"
	"github.com/teep-go/teep/internal/tam/tamserver"
	"github.com/teep-go/teep/internal/verifier"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/teep"
)

// Options configure the test TAM. The zero value is a TAM with attestation
// by a built-in Verifier that endorses AttestationKey (shared by the
// harness's scripted Agents) and the keys in Endorse.
type Options struct {
	// Endorse are further attestation keys the built-in Verifier trusts
	// (e.g. a software TEE's).
	Endorse []*cosekey.Key
	// Appraiser replaces the built-in Verifier.
	Appraiser tam.Appraiser
	// NoAttestation serves only pre-registered Agents.
	NoAttestation bool
	Attestation   tam.AttestationPolicy
	// VerifierKeys trusts these Verifier keys for Attestation Results
	// (passport model).
	VerifierKeys []*cosekey.Key
	// LegacyPath serves the legacy numbering there; default "/tam/legacy".
	LegacyPath string
	// TLS serves HTTPS with a certificate for 127.0.0.1 from a test CA
	// (CAFile, HTTPClient).
	TLS bool
	// Logger receives the TAM's logs; nil discards them.
	Logger        *slog.Logger
	TokenLifetime time.Duration
	Clock         func() time.Time
}

// TAM is a running test TAM.
type TAM struct {
	t         testing.TB
	URL       string // TEEP endpoint, draft-26 numbering
	LegacyURL string // TEEP endpoint, legacy numbering
	BaseURL   string // scheme://host:port, for the admin API and /metrics
	Token     string // admin bearer token
	DataDir   string
	// CAFile is the PEM CA certificate that signed the server certificate
	// (TLS only); HTTPClient trusts it.
	CAFile     string
	HTTPClient *http.Client
	Client     *admin.Client
	Engine     *tam.Engine
	Store      *sqlitestore.Store
	// AttestationKey signs the Evidence of the harness's scripted Agents
	// and is endorsed by the built-in Verifier.
	AttestationKey *cosekey.Key
}

// Start runs a TAM until the test ends.
func Start(t testing.TB, o Options) *TAM {
	t.Helper()
	x := &TAM{t: t, DataDir: t.TempDir(), HTTPClient: &http.Client{Timeout: 30 * time.Second}}
	var err error
	if x.AttestationKey, err = cosekey.Generate(cosekey.AlgESP256); err != nil {
		t.Fatal(err)
	}
	so := tamserver.Options{
		DataDir: x.DataDir, LegacyPath: o.LegacyPath, Logger: o.Logger, Version: "tamtest",
		Attestation: o.Attestation, VerifierKeys: o.VerifierKeys, TokenLifetime: o.TokenLifetime, Clock: o.Clock,
		Appraiser: o.Appraiser,
	}
	if so.LegacyPath == "" {
		so.LegacyPath = "/tam/legacy"
	}
	if o.NoAttestation {
		so.Attestation = tam.AttestNever
	} else if so.Appraiser == nil {
		ends := []verifier.Endorsement{{Name: "tamtest", Key: x.AttestationKey.PublicKey()}}
		for i, k := range o.Endorse {
			ends = append(ends, verifier.Endorsement{Name: fmt.Sprintf("endorsed-%d", i), Key: k.PublicKey()})
		}
		v, err := verifier.New(verifier.Config{Policy: &verifier.Policy{ID: "tamtest", Endorsements: ends}})
		if err != nil {
			t.Fatal(err)
		}
		so.Appraiser = &appraiser.Verifier{Local: v, ResultKeys: o.VerifierKeys}
	}
	scheme := "http"
	if o.TLS {
		scheme = "https"
		so.TLSCert, so.TLSKey, x.CAFile = x.certificates()
		pool, err := httpd.LoadCertPool(x.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		x.HTTPClient.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	srv, err := tamserver.Open(context.Background(), so)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tamtest: serve: %v", err)
		}
		srv.Close()
	})
	x.BaseURL = scheme + "://" + ln.Addr().String()
	x.URL = x.BaseURL + "/tam"
	x.LegacyURL = x.BaseURL + so.LegacyPath
	x.Token, x.Engine, x.Store = srv.Token, srv.Engine, srv.Store
	x.Client = &admin.Client{BaseURL: x.BaseURL, Token: x.Token, HTTP: x.HTTPClient}
	return x
}

// Keys are the TAM's public keys, P-256 first: the trust anchors a device
// needs (and the signers of personalization manifests).
func (x *TAM) Keys() []*cosekey.Key { return x.Engine.PublicKeys() }

// Key is the TAM's P-256 public key.
func (x *TAM) Key() *cosekey.Key { return x.Engine.PublicKeys()[0] }

var ctx = context.Background()

func (x *TAM) check(err error) {
	x.t.Helper()
	if err != nil {
		x.t.Fatal(err)
	}
}

// TrustSigner trusts a TC signer key.
func (x *TAM) TrustSigner(k *cosekey.Key) {
	x.t.Helper()
	_, err := x.Engine.AddTrustedKey(ctx, tam.RoleTCSigner, k.PublicKey(), "tamtest")
	x.check(err)
}

// AddAgent pre-registers an Agent key (trusted without attestation).
func (x *TAM) AddAgent(k *cosekey.Key, labels ...string) {
	x.t.Helper()
	_, err := x.Engine.AddAgent(ctx, k.PublicKey(), labels)
	x.check(err)
}

// Upload registers a signed SUIT envelope and returns the component id.
func (x *TAM) Upload(envelope []byte) suit.ComponentID {
	x.t.Helper()
	v, err := x.Engine.AddComponent(ctx, envelope)
	x.check(err)
	return v.ComponentID
}

// Require makes a component required on every device.
func (x *TAM) Require(id suit.ComponentID) {
	x.Policy(tam.Policy{Component: id, Mode: tam.Required, Scope: tam.ScopeAll})
}

// RequireLabel makes a component required on devices with a label.
func (x *TAM) RequireLabel(id suit.ComponentID, label string) {
	x.Policy(tam.Policy{Component: id, Mode: tam.Required, Scope: tam.ScopeLabel, Value: label})
}

// RequireDevice makes a component required on one device.
func (x *TAM) RequireDevice(id suit.ComponentID, kid []byte) {
	x.Policy(tam.Policy{Component: id, Mode: tam.Required, Scope: tam.ScopeDevice, Value: fmt.Sprintf("%x", kid)})
}

// Offer makes a component available to every device that requests it.
func (x *TAM) Offer(id suit.ComponentID) {
	x.Policy(tam.Policy{Component: id, Mode: tam.Optional, Scope: tam.ScopeAll})
}

// Policy sets any policy.
func (x *TAM) Policy(p tam.Policy) {
	x.t.Helper()
	_, err := x.Engine.SetPolicy(ctx, p)
	x.check(err)
}

// Unrequire removes every policy of a component (devices then get it
// removed).
func (x *TAM) Unrequire(id suit.ComponentID) {
	x.t.Helper()
	_, err := x.Engine.RemovePolicies(ctx, tam.PolicyFilter{Component: id})
	x.check(err)
}

// Personalize stores personalization data for a device (which must be
// registered, with a P-256 Agent key).
func (x *TAM) Personalize(kid []byte, name string, data []byte, dependsOn ...suit.ComponentID) tam.Personalization {
	x.t.Helper()
	p, err := x.Engine.SetPersonalization(ctx, kid, name, data, tam.PersonalizationOptions{DependsOn: dependsOn})
	x.check(err)
	return p
}

// Device returns what the TAM knows about a device.
func (x *TAM) Device(kid []byte) tam.DeviceInfo {
	x.t.Helper()
	d, err := x.Engine.DeviceInfo(ctx, kid, 20)
	x.check(err)
	return d
}

// Dump renders the whole database, to compare before and after.
func (x *TAM) Dump() string {
	x.t.Helper()
	d, err := x.Store.Dump(ctx)
	x.check(err)
	return d
}

// HTTPStatusError is a non-2xx answer of the TEEP endpoint.
type HTTPStatusError struct {
	Status int
	Body   string
}

func (e *HTTPStatusError) Error() string { return fmt.Sprintf("TAM answered %d: %s", e.Status, e.Body) }

// Transport posts messages to the TEEP endpoint of the numbering.
func (x *TAM) Transport(n teep.Numbering) Transport {
	url := x.URL
	if n == teep.Legacy {
		url = x.LegacyURL
	}
	return HTTPTransport(x.HTTPClient, url)
}

// HTTPTransport posts TEEP messages to url the way a Broker does
// (draft-ietf-teep-otrp-over-http-15 §4).
func HTTPTransport(c *http.Client, url string) Transport {
	return func(ctx context.Context, msg []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(msg))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/teep+cbor")
		if len(msg) > 0 {
			req.Header.Set("Content-Type", "application/teep+cbor")
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			if ct := resp.Header.Get("Content-Type"); ct != "application/teep+cbor" {
				return nil, fmt.Errorf("answer with Content-Type %q", ct)
			}
			return body, nil
		case http.StatusNoContent:
			return nil, nil
		}
		return nil, &HTTPStatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
}

// NewAgent makes a scripted Agent talking to this TAM over HTTP, trusting
// its keys, with Evidence signed by AttestationKey (unless o says otherwise).
func (x *TAM) NewAgent(o AgentOptions) *Agent {
	x.t.Helper()
	if o.TAMKeys == nil {
		o.TAMKeys = x.Keys()
	}
	if o.AttestationKey == nil {
		o.AttestationKey = x.AttestationKey
	}
	if o.Transport == nil {
		o.Transport = x.Transport(o.Numbering)
	}
	return NewAgent(x.t, o)
}

// certificates writes a test CA and a server certificate for 127.0.0.1.
func (x *TAM) certificates() (certFile, keyFile, caFile string) {
	t := x.t
	dir := t.TempDir()
	cert, _, caDER := LoopbackCert(t)
	kder, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	x.check(err)
	certFile, keyFile, caFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.pem")
	x.check(os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644))
	x.check(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	x.check(os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644))
	return certFile, keyFile, caFile
}

// LoopbackCert makes a CA and an ECDSA P-256 server certificate for
// 127.0.0.1 signed by it (the RFC 7925 §4.4.2 profile, so it serves DTLS
// as well as TLS), valid for a day; roots holds the CA, caDER encodes it.
func LoopbackCert(t testing.TB) (cert *tls.Certificate, roots *x509.CertPool, caDER []byte) {
	t.Helper()
	check := func(err error) {
		if err != nil {
			t.Fatalf("tamtest: certificate: %v", err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tamtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err = x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	check(err)
	ca, err := x509.ParseCertificate(caDER)
	check(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	check(err)
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, roots, caDER
}
