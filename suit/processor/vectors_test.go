package processor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

const vectors = "../../testdata/suit"

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

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	teepVendor  = mustHex("c0ddd5f1524356608" + "7db4f5b0aa26c2f")
	teepClass   = mustHex("db42f7093d8c55baa8c5265fc5820f4e")
	specVendor  = mustHex("fa6b4a53d5ad5fdfbe9de663e4d41ffe")
	specClass   = mustHex("1492af1425695e48bf429b2d51f2ab45")
	hmacKey     = suit.MACKey{Key: bytes.Repeat([]byte{'a'}, 32)}
	kek         = suit.KEK{KID: []byte("kid-1"), Key: bytes.Repeat([]byte{'a'}, 16)}
	taURI       = "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.ta"
	taSuitURI   = "https://example.org/8d82573a-926d-4754-9353-32dc29997f74.suit"
	tcUUID      = mustHex("8d82573a926d4754935332dc29997f74")
	taID        = suit.ComponentID{[]byte("TEEP-Device"), []byte("SecureFS"), tcUUID, []byte("ta")}
	taManifest  = suit.ComponentID{[]byte("TEEP-Device"), []byte("SecureFS"), tcUUID, []byte("suit")}
	configID    = suit.NewComponentID("TEEP-Device", "SecureFS", "config.json")
	configSuit  = suit.NewComponentID("TEEP-Device", "SecureFS", "config.suit")
	firmware    = []byte("This is a real firmware image.")
	configPlain = []byte(`{"name":"FOO Bar","secret":"0123456789abfcdef0123456789abcd"}`)
)

type env struct {
	store   *processor.MemStore
	fetcher *processor.MemFetcher
	p       *processor.Processor
}

func newEnv(t testing.TB, mod func(*processor.Config)) *env {
	t.Helper()
	e := &env{store: processor.NewMemStore(), fetcher: processor.NewMemFetcher(nil)}
	cfg := processor.Config{
		Trust:    []*cosekey.Key{loadKey(t, "example-p256-public.pem")},
		MACKeys:  []suit.MACKey{hmacKey},
		Store:    e.store,
		Fetcher:  e.fetcher,
		Identity: processor.Identity{VendorIDs: [][]byte{teepVendor, specVendor}, ClassIDs: [][]byte{teepClass, specClass}},
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

func trustExample(t testing.TB) []*cosekey.Key {
	return []*cosekey.Key{loadKey(t, "example-p256-public.pem")}
}

func (e *env) content(t testing.TB, id suit.ComponentID) []byte {
	t.Helper()
	rc, _, err := e.store.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// checkInstalled compares the result and the store with the expected contents.
func checkInstalled(t *testing.T, e *env, res *processor.Result, want map[string][]byte, ids ...suit.ComponentID) {
	t.Helper()
	if len(res.Installed) != len(ids) {
		t.Errorf("installed %d components, want %d: %+v", len(res.Installed), len(ids), res.Installed)
	}
	for _, id := range ids {
		w := want[id.Key()]
		if got := e.content(t, id); !bytes.Equal(got, w) {
			t.Errorf("%s = %q, want %q", id, got, w)
		}
		found := false
		for _, c := range res.Installed {
			if c.ID.Equal(id) {
				found = true
				if !bytes.Equal(c.SHA256, sha(w)) || c.Size != int64(len(w)) {
					t.Errorf("%s: result sha256 %x size %d", id, c.SHA256, c.Size)
				}
			}
		}
		if !found {
			t.Errorf("%s not in result", id)
		}
	}
	if res.Report == nil || !res.Report.Success() {
		t.Errorf("report: %+v", res.Report)
	}
	rep, err := suit.ParseReport(res.ReportBytes)
	if err != nil || !rep.Success() {
		t.Errorf("report bytes: %v %+v", err, rep)
	}
}

func TestTEEPExamples(t *testing.T) {
	ta := readVector(t, "teep-protocol/8d82573a-926d-4754-9353-32dc29997f74.ta")
	suitURI := readVector(t, "teep-protocol/suit_uri.hex")
	want := map[string][]byte{taID.Key(): ta, configID.Key(): configPlain}

	t.Run("uri", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fetcher.Set(taURI, ta)
		res, err := e.p.Install(context.Background(), suitURI, processor.RunOptions{Nonce: []byte("token")})
		if err != nil {
			t.Fatal(err)
		}
		checkInstalled(t, e, res, want, taID)
		if !res.ManifestID.Equal(taManifest) || res.SequenceNumber != 3 {
			t.Errorf("manifest %s seq %d", res.ManifestID, res.SequenceNumber)
		}
		if !bytes.Equal(res.Report.Nonce, []byte("token")) || hex.EncodeToString(res.Report.Reference.Digest.Bytes)[:8] != "b39b52b0" {
			t.Errorf("report reference/nonce: %+v", res.Report)
		}
	})
	t.Run("integrated", func(t *testing.T) {
		e := newEnv(t, nil)
		res, err := e.p.Install(context.Background(), readVector(t, "teep-protocol/suit_integrated.hex"), processor.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInstalled(t, e, res, want, taID)
		if e.fetcher.Calls != 0 {
			t.Errorf("fetcher called %d times for an integrated payload", e.fetcher.Calls)
		}
		rec, err := e.store.Manifest(context.Background(), taManifest)
		if err != nil || bytes.Contains(rec.Envelope, ta) {
			t.Errorf("stored envelope should drop the integrated payload: %v", err)
		}
	})
	t.Run("personalization", func(t *testing.T) {
		e := newEnv(t, func(c *processor.Config) { c.DeviceKey = loadKey(t, "device-p256-private.pem") })
		e.fetcher.Set(taURI, ta)
		e.fetcher.Set(taSuitURI, suitURI)
		res, err := e.p.Install(context.Background(), readVector(t, "teep-protocol/suit_personalization.hex"), processor.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInstalled(t, e, res, want, taID, configID)
		if len(res.Manifests) != 2 {
			t.Errorf("manifests written: %v", res.Manifests)
		}
		ta, err := e.store.Manifest(context.Background(), taManifest)
		if err != nil || ta.Root || len(ta.Dependents) != 1 || !ta.Dependents[0].Equal(configSuit) {
			t.Fatalf("TA record: %+v %v", ta, err)
		}
		// Uninstalling the personalization data cascades to the TA, which
		// nothing else references (the example's uninstall sequence).
		res, err = e.p.Uninstall(context.Background(), configSuit, processor.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Removed) != 2 || len(res.RemovedManifests) != 2 {
			t.Errorf("removed %+v manifests %v", res.Removed, res.RemovedManifests)
		}
		if comps, _ := e.store.Components(context.Background()); len(comps) != 0 {
			t.Errorf("components left: %+v", comps)
		}
		if recs, _ := e.store.Manifests(context.Background()); len(recs) != 0 {
			t.Errorf("manifests left: %+v", recs)
		}
	})
	t.Run("personalization-without-device-key", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fetcher.Set(taURI, ta)
		e.fetcher.Set(taSuitURI, suitURI)
		res, err := e.p.Install(context.Background(), readVector(t, "teep-protocol/suit_personalization.hex"), processor.RunOptions{})
		if err == nil || res.Report.Failure == nil || res.Report.Failure.Reason != suit.ReasonUnauthorised {
			t.Fatalf("want unauthorised failure, got %v %+v", err, res.Report)
		}
		if comps, _ := e.store.Components(context.Background()); len(comps) != 0 {
			t.Errorf("failed run left components: %+v", comps)
		}
	})
	t.Run("shared-TA-survives", func(t *testing.T) {
		// The TA installed on its own, then personalized: removing the
		// personalization keeps the TA (still a root).
		e := newEnv(t, func(c *processor.Config) { c.DeviceKey = loadKey(t, "device-p256-private.pem") })
		e.fetcher.Set(taURI, ta)
		e.fetcher.Set(taSuitURI, suitURI)
		ctx := context.Background()
		if _, err := e.p.Install(ctx, suitURI, processor.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.p.Install(ctx, readVector(t, "teep-protocol/suit_personalization.hex"), processor.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := e.p.Uninstall(ctx, configSuit, processor.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Removed) != 1 || !res.Removed[0].ID.Equal(configID) {
			t.Errorf("removed %+v", res.Removed)
		}
		if got := e.content(t, taID); !bytes.Equal(got, ta) {
			t.Errorf("TA removed although still a root")
		}
		if _, err := e.p.Uninstall(ctx, taManifest, processor.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		if comps, _ := e.store.Components(ctx); len(comps) != 0 {
			t.Errorf("components left: %+v", comps)
		}
	})
	t.Run("stale-draft", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fetcher.Set(taURI, ta)
		_, err := e.p.Install(context.Background(), readVector(t, "teep-protocol/messages/update_manifest0_extracted.hex"), processor.RunOptions{})
		if !errors.Is(err, suit.ErrOperationFailed) {
			t.Fatalf("stale manifest: %v", err)
		}
	})
}

func TestTrustDomainsExamples(t *testing.T) {
	dependent := readVector(t, "trust-domains/example0_dependent.hex")
	id00, id10 := suit.NewComponentID("00"), suit.NewComponentID("10")
	want := map[string][]byte{id00.Key(): []byte("hello world"), id10.Key(): []byte(" in multiple trust domains")}
	for _, name := range []string{"example1_process.hex", "example2_integrated.hex"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.fetcher.Set("http://example.com/dependent.suit", dependent)
			res, err := e.p.Install(context.Background(), readVector(t, "trust-domains/"+name), processor.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkInstalled(t, e, res, want, id00, id10)
		})
	}
}

func TestFirmwareEncryptionExamples(t *testing.T) {
	gcm := readVector(t, "firmware-encryption/encrypted-payload-aes-kw-aes-gcm.hex")
	for _, tc := range []struct {
		file  string
		comp  suit.ComponentID
		trust string
	}{
		{"suit-manifest-aes-kw-content.hex", suit.NewComponentID("plaintext-firmware"), ""},
		{"suit-manifest-aes-kw.hex", suit.NewComponentID("plaintext-firmware"), ""},
		{"suit-manifest-aes-kw-slot.hex", suit.ComponentID{{0x00}}, ""},
		{"suit-manifest-es-ecdh-content.hex", suit.NewComponentID("decrypted-firmware"), "example-p256-public.pem"},
		{"suit-manifest-es-ecdh-dependency.hex", suit.NewComponentID("decrypted-firmware"), "tam-p256-public.pem"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			e := newEnv(t, func(c *processor.Config) {
				c.DeviceKey = loadKey(t, "device-p256-private.pem")
				c.Decryption.KEKs = []suit.KEK{kek}
				if tc.trust != "" {
					c.Trust = append(c.Trust, loadKey(t, tc.trust))
				}
			})
			e.fetcher.Set("coaps://example.com/encrypted-firmware", gcm)
			res, err := e.p.Install(context.Background(), readVector(t, "firmware-encryption/"+tc.file), processor.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.content(t, tc.comp); !bytes.Equal(got, firmware) {
				t.Fatalf("%s = %q", tc.comp, got)
			}
			if !res.Success {
				t.Fatal("not successful")
			}
		})
	}
}
