package suit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
)

const vectors = "../testdata/suit"

// readVector reads a .hex (one line of hex) or raw file from testdata/suit.
func readVector(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".hex") {
		data, err = hex.DecodeString(strings.Join(strings.Fields(string(data)), ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return data
}

func loadKey(t testing.TB, name string) *cosekey.Key {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectors, "keys", name))
	if err != nil {
		t.Fatal(err)
	}
	k, err := cosekey.Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

var hmacKey = MACKey{Key: bytes.Repeat([]byte{'a'}, 32)}

// signedVectors lists every authenticated envelope in testdata/suit with the
// key that verifies it and its manifest digest (hex prefix from the README /
// the diagnostic files).
var signedVectors = []struct {
	file   string
	key    string // "" = HMAC 'a'x32
	digest string // expected manifest digest prefix
	tagged bool
}{
	{"manifest-spec/example0.signed.cbor", "example-p256-public.pem", "6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af", true},
	{"manifest-spec/example1.signed.cbor", "example-p256-public.pem", "", true},
	{"manifest-spec/example2.signed.cbor", "example-p256-public.pem", "6a5197ed", true},
	{"manifest-spec/example2.severed-signed.cbor", "example-p256-public.pem", "6a5197ed", true},
	{"manifest-spec/example3.signed.cbor", "example-p256-public.pem", "", true},
	{"manifest-spec/example4.signed.cbor", "example-p256-public.pem", "", true},
	{"manifest-spec/example5.signed.cbor", "example-p256-public.pem", "", true},
	{"trust-domains/example0_dependent.hex", "example-p256-public.pem", "0f02caf6d3e61920d36bf3cea7f862a13bb8fb1f09c3f4c29b121feab78ef3d8", true},
	{"trust-domains/example1_process.hex", "example-p256-public.pem", "aeba316a9a1e38253b29e6c99b60538368b8ac8b5e6b9ace1d239970830bbe62", true},
	{"trust-domains/example2_integrated.hex", "example-p256-public.pem", "", true},
	{"teep-protocol/suit_uri.hex", "example-p256-public.pem", "b39b52b0b747ea79588c190f567bfc2c8437ba8a73f7ea983182e79f0148d59b", false},
	{"teep-protocol/suit_integrated.hex", "example-p256-public.pem", "", false},
	{"teep-protocol/suit_personalization.hex", "example-p256-public.pem", "506d4796d65ae599ee0a3f7d123ed6819e0fa1a324a5de547f6d7f50d465508a", false},
	{"teep-protocol/messages/update_manifest0_extracted.hex", "example-p256-public.pem", "", false},
	{"firmware-encryption/suit-manifest-aes-kw-content.hex", "", "", true},
	{"firmware-encryption/suit-manifest-aes-kw.hex", "", "3c92aeceaa7225ddd5129a83b2842bf28cc53b2c9467c5bf256e7108f2da7c9c", true},
	{"firmware-encryption/suit-manifest-aes-kw-slot.hex", "", "", true},
	{"firmware-encryption/suit-manifest-es-ecdh-content.hex", "example-p256-public.pem", "", true},
	{"firmware-encryption/suit-manifest-es-ecdh-dependency.hex", "tam-p256-public.pem", "a00cb6c85515c1ef471b50b542facdd88b71b3c7ea2a43de13d32c4a99056fe9", true},
}

func TestVectorsVerify(t *testing.T) {
	for _, v := range signedVectors {
		t.Run(v.file, func(t *testing.T) {
			data := readVector(t, v.file)
			e, err := ParseEnvelope(data, ParseOptions{})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if e.Tagged != v.tagged {
				t.Errorf("tagged = %v, want %v", e.Tagged, v.tagged)
			}
			if got := hex.EncodeToString(e.Digest().Bytes); !strings.HasPrefix(got, v.digest) {
				t.Errorf("digest %s, want prefix %s", got, v.digest)
			}
			var keys []*cosekey.Key
			var macs []MACKey
			if v.key == "" {
				macs = []MACKey{hmacKey}
			} else {
				keys = []*cosekey.Key{loadKey(t, v.key)}
			}
			if _, err := e.Verify(keys, macs...); err != nil {
				t.Fatalf("verify: %v", err)
			}
			// A different key must not verify.
			other := loadKey(t, "device-p256-public.pem")
			if _, err := e.Verify([]*cosekey.Key{other}, MACKey{Key: bytes.Repeat([]byte{'b'}, 32)}); !errors.Is(err, ErrUnauthorised) {
				t.Fatalf("verify with a wrong key: %v, want ErrUnauthorised", err)
			}
		})
	}
}
