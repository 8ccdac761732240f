package suit

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
)

func deviceECDH(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	k, err := loadKey(t, "device-p256-private.pem").ECDHPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var testKEK = KEK{KID: []byte("kid-1"), Key: bytes.Repeat([]byte{'a'}, 16)}

// TestEncryptionInfoVectors decrypts the four firmware-encryption examples.
func TestEncryptionInfoVectors(t *testing.T) {
	keys := DecryptionKeys{ECDH: []ECDHRecipientKey{{Key: deviceECDH(t)}}, KEKs: []KEK{testKEK}}
	for _, name := range []string{"aes-kw-aes-ctr", "aes-kw-aes-gcm", "es-ecdh-aes-ctr", "es-ecdh-aes-gcm"} {
		t.Run(name, func(t *testing.T) {
			ei, err := ParseEncryptionInfo(readVector(t, "firmware-encryption/suit-encryption-info-"+name+".hex"))
			if err != nil {
				t.Fatal(err)
			}
			cek, err := ei.CEK(keys)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := ei.Decrypt(cek, readVector(t, "firmware-encryption/encrypted-payload-"+name+".hex"))
			if err != nil || string(pt) != "This is a real firmware image." {
				t.Fatalf("%q %v", pt, err)
			}
			if _, err := ei.CEK(DecryptionKeys{KEKs: []KEK{{Key: bytes.Repeat([]byte{'b'}, 16)}}}); !errors.Is(err, ErrUnauthorised) {
				t.Errorf("wrong key: %v", err)
			}
		})
	}
}

// TestTEEPPersonalizationCEK checks the CEK derived for the TEEP example 3
// (value listed in testdata/teep/keys/personalization-kek-p256.txt).
func TestTEEPPersonalizationCEK(t *testing.T) {
	e, err := ParseEnvelope(readVector(t, "teep-protocol/suit_personalization.hex"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ei *EncryptionInfo
	var ct []byte
	for _, c := range e.Manifest().Install.Sequence.Commands {
		for _, p := range c.Params {
			switch p.Key {
			case ParamEncryptionInfo:
				ei = p.Value.(*EncryptionInfo)
			case ParamContent:
				ct = p.Value.([]byte)
			}
		}
	}
	cek, err := ei.CEK(DecryptionKeys{ECDH: []ECDHRecipientKey{{Key: deviceECDH(t)}}})
	if err != nil || hex.EncodeToString(cek) != "b8b90bc75b79a81ddef35925bd062445" {
		t.Fatalf("CEK %x %v", cek, err)
	}
	pt, _ := ei.Decrypt(cek, ct)
	if string(pt) != `{"name":"FOO Bar","secret":"0123456789abfcdef0123456789abcd"}` {
		t.Fatalf("plaintext %q", pt)
	}
}

// TestAESKeyWrapRFC3394 uses RFC 3394 §4.1.
func TestAESKeyWrapRFC3394(t *testing.T) {
	kek := hexb("000102030405060708090A0B0C0D0E0F")
	key := hexb("00112233445566778899AABBCCDDEEFF")
	want := hexb("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")
	got, err := aesKeyWrap(kek, key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("wrap %x %v", got, err)
	}
	back, err := aesKeyUnwrap(kek, want)
	if err != nil || !bytes.Equal(back, key) {
		t.Fatalf("unwrap %x %v", back, err)
	}
	bad := bytes.Clone(want)
	bad[3] ^= 1
	if _, err := aesKeyUnwrap(kek, bad); err == nil {
		t.Fatal("tampered wrapped key accepted")
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	dev := deviceECDH(t)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	plain := bytes.Repeat([]byte("firmware "), 1000)
	for _, alg := range []int64{AlgA128GCM, AlgA192GCM, AlgA256GCM, AlgA128CTR, AlgA192CTR, AlgA256CTR, AlgChaCha20Poly1305} {
		for _, rcpt := range []struct {
			name string
			o    EncryptOptions
			keys DecryptionKeys
		}{
			{"ecdh-p256", EncryptOptions{RecipientKey: dev.PublicKey(), KID: []byte("dev")}, DecryptionKeys{ECDH: []ECDHRecipientKey{{KID: []byte("dev"), Key: dev}}}},
			{"ecdh-a256kw", EncryptOptions{RecipientKey: dev.PublicKey(), KeyWrapAlg: AlgECDHESA256KW}, DecryptionKeys{ECDH: []ECDHRecipientKey{{Key: dev}}}},
			{"ecdh-x25519", EncryptOptions{RecipientKey: x.PublicKey()}, DecryptionKeys{ECDH: []ECDHRecipientKey{{Key: dev}, {Key: x}}}},
			{"a128kw", EncryptOptions{KEK: testKEK.Key, KID: testKEK.KID}, DecryptionKeys{KEKs: []KEK{testKEK}}},
			{"a256kw", EncryptOptions{KEK: bytes.Repeat([]byte{7}, 32)}, DecryptionKeys{KEKs: []KEK{{Key: bytes.Repeat([]byte{7}, 32)}}}},
		} {
			o := rcpt.o
			o.ContentAlg = alg
			ct, info, err := Encrypt(plain, o)
			if err != nil {
				t.Fatalf("%s/%s: %v", EncryptionAlgName(alg), rcpt.name, err)
			}
			ei, err := ParseEncryptionInfo(info)
			if err != nil {
				t.Fatalf("%s/%s: parse: %v", EncryptionAlgName(alg), rcpt.name, err)
			}
			cek, err := ei.CEK(rcpt.keys)
			if err != nil {
				t.Fatalf("%s/%s: cek: %v", EncryptionAlgName(alg), rcpt.name, err)
			}
			pt, err := ei.Decrypt(cek, ct)
			if err != nil || !bytes.Equal(pt, plain) {
				t.Fatalf("%s/%s: decrypt: %v", EncryptionAlgName(alg), rcpt.name, err)
			}
			if ei.Streamable() {
				r, _ := ei.DecryptReader(cek, bytes.NewReader(ct))
				var buf bytes.Buffer
				buf.ReadFrom(r)
				if !bytes.Equal(buf.Bytes(), plain) {
					t.Fatalf("%s: stream decrypt differs", EncryptionAlgName(alg))
				}
			} else {
				ct[10] ^= 1
				if _, err := ei.Decrypt(cek, ct); !errors.Is(err, ErrUnauthorised) {
					t.Fatalf("%s: tampered ciphertext: %v", EncryptionAlgName(alg), err)
				}
			}
		}
	}
}

func TestEncryptionInfoStrict(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want error
	}{
		{"not tagged", "84 40 a0 f6 80", ErrCOSEUnsupported},
		{"attached ciphertext", "d8 60 84 40 a1 01 01 41 00 80", ErrMalformed},
		{"no recipients", "d8 60 84 40 a0 f6 80", ErrMalformed},
		{"ctr with protected", "d8 60 84 43 a1 01 01 a1 05 50 00000000000000000000000000000000 f6 81 83 40 a1 01 22 40", ErrMalformed},
		{"unknown content alg", "d8 60 84 40 a2 01 18 63 05 4c 000000000000000000000000 f6 81 83 40 a1 01 22 40", ErrAlgUnsupported},
		{"unknown kw alg", "d8 60 84 40 a2 01 01 05 4c 000000000000000000000000 f6 81 83 40 a1 01 38 63 40", ErrAlgUnsupported},
		{"critical header", "d8 60 84 40 a3 01 01 02 81 01 05 4c 000000000000000000000000 f6 81 83 40 a1 01 22 40", ErrCOSEUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseEncryptionInfo(hexb(tc.hex)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
