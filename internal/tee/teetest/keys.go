package teetest

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/teep-go/teep/internal/tee"
)

// privateKeyTypes are the standard library's private-key types; none may
// be reachable from what tee.TEE returns.
var privateKeyTypes = []reflect.Type{
	reflect.TypeFor[*ecdsa.PrivateKey](),
	reflect.TypeFor[ecdsa.PrivateKey](),
	reflect.TypeFor[ed25519.PrivateKey](),
	reflect.TypeFor[*ecdh.PrivateKey](),
	reflect.TypeFor[ecdh.PrivateKey](),
	reflect.TypeFor[*rsa.PrivateKey](),
	reflect.TypeFor[rsa.PrivateKey](),
}

// exposes reports the path to a private-key type reachable from typ
// through exported struct fields, pointers, slices, arrays, maps and the
// results of interface methods, or "" if there is none.
func exposes(typ reflect.Type, path string, seen map[reflect.Type]bool) string {
	for _, k := range privateKeyTypes {
		if typ == k {
			return path
		}
	}
	if seen[typ] {
		return ""
	}
	seen[typ] = true
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return exposes(typ.Elem(), path+"[]", seen)
	case reflect.Map:
		if p := exposes(typ.Key(), path+"{key}", seen); p != "" {
			return p
		}
		return exposes(typ.Elem(), path+"{}", seen)
	case reflect.Struct:
		for i := 0; i < typ.NumField(); i++ {
			if f := typ.Field(i); f.IsExported() {
				if p := exposes(f.Type, path+"."+f.Name, seen); p != "" {
					return p
				}
			}
		}
	case reflect.Interface:
		for i := 0; i < typ.NumMethod(); i++ {
			m := typ.Method(i)
			for j := 0; j < m.Type.NumOut(); j++ {
				if p := exposes(m.Type.Out(j), path+"."+m.Name+"()", seen); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func testKeyTypes(t *testing.T, _ *harness) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[tee.TEE](), reflect.TypeFor[tee.Storage](),
		reflect.TypeFor[tee.Txn](), reflect.TypeFor[tee.Decrypter](),
	} {
		if p := exposes(typ, typ.String(), map[reflect.Type]bool{}); p != "" {
			t.Errorf("%s returns a private key type", p)
		}
	}
}

// testKeyMethods checks the concrete key handles: a caller holding one can
// type-assert or reflect on it, so it must offer nothing but the operation.
func testKeyMethods(t *testing.T, h *harness) {
	check := func(what string, v any, allowed ...string) {
		typ := reflect.TypeOf(v)
		if typ == nil {
			t.Errorf("%s is nil", what)
			return
		}
		if p := exposes(typ, what, map[reflect.Type]bool{}); p != "" {
			t.Errorf("%s (%s) is or exposes a private key: %s", what, typ, p)
		}
		for i := 0; i < typ.NumMethod(); i++ {
			m := typ.Method(i)
			ok := false
			for _, a := range allowed {
				ok = ok || m.Name == a
			}
			if !ok {
				t.Errorf("%s (%s) has method %s; a key handle offers only %v", what, typ, m.Name, allowed)
			}
		}
	}
	check("AgentKey()", h.tt.AgentKey(), "Public", "Sign")
	for i, d := range h.tt.Decrypters() {
		check(fmt.Sprintf("Decrypters()[%d]", i), d, "PublicKey", "ECDH")
	}
}

// testKeyValues exercises every operation and searches what comes back for
// the private key material.
func testKeyValues(t *testing.T, h *harness) {
	secrets := h.b.Secrets(t, h.tt)
	if len(secrets) == 0 {
		t.Fatal("Secrets returned no key material to look for")
	}
	var out [][]byte
	add := func(b ...[]byte) { out = append(out, b...) }

	signer := h.tt.AgentKey()
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatalf("Agent public key: %v", err)
	}
	add(pub)
	digest := sha256.Sum256([]byte("teetest"))
	var opts crypto.SignerOpts = crypto.SHA256
	msg := digest[:]
	if _, ok := signer.Public().(ed25519.PublicKey); ok {
		opts, msg = crypto.Hash(0), []byte("teetest")
	}
	sig, err := signer.Sign(rand.Reader, msg, opts)
	if err != nil {
		t.Fatalf("AgentKey().Sign: %v", err)
	}
	add(sig)
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range h.tt.Decrypters() {
		add(d.PublicKey().Bytes())
		if d.PublicKey().Curve() == ecdh.P256() {
			z, err := d.ECDH(peer.PublicKey())
			if err != nil {
				t.Fatalf("ECDH: %v", err)
			}
			add(z)
		}
	}
	id := h.tt.Identity()
	add(id.VendorID[:], id.ClassID[:], id.UEID, id.OEMID, id.HWModel, []byte(id.HWVersion))
	ev, err := h.tt.Evidence(ctx, tee.EvidenceRequest{Nonce: bytes.Repeat([]byte{0x42}, 32), Timestamp: true})
	if err != nil {
		t.Fatalf("Evidence: %v", err)
	}
	add(ev.Payload)
	st := h.st()
	for _, name := range st.List("") {
		r, _, err := st.Open(name)
		if err != nil {
			t.Fatalf("Open(%q): %v", name, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("reading %q: %v", name, err)
		}
		add(b)
	}

	for i, s := range secrets {
		if len(s) < 16 {
			t.Fatalf("secret %d has %d bytes; give whole scalars or seeds", i, len(s))
		}
		hx := []byte(hex.EncodeToString(s))
		for _, b := range out {
			if bytes.Contains(b, s) || bytes.Contains(bytes.ToLower(b), hx) {
				t.Errorf("secret %d appears in a value the TEE returned (%d bytes)", i, len(b))
			}
		}
	}
}
