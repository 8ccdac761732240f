package softtee

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/teetest"
)

func openTEE(t *testing.T, dir string, o Options) *TEE {
	t.Helper()
	tt, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tt.Close() })
	return tt
}

func TestStoreRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	tt := openTEE(t, dir, Options{})
	teetest.Put(t, tt.Storage(), "a/1", "one", "a/2", "two", "b", "")
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error {
		if err := tx.SetCounter("seq", 7); err != nil {
			return err
		}
		return tx.Delete("a/2")
	})
	if err != nil {
		t.Fatal(err)
	}
	kid := tt.AgentPublicKey().KID()
	id := tt.Identity()
	tt.Close()

	tt2 := openTEE(t, dir, Options{})
	s := tt2.Storage()
	teetest.MustGet(t, s, "a/1", "one")
	teetest.MustGet(t, s, "b", "")
	if _, err := s.Get("a/2"); !errors.Is(err, tee.ErrNotFound) {
		t.Fatalf("deleted object: got %v, want ErrNotFound", err)
	}
	if got := s.List("a/"); len(got) != 1 || got[0] != "a/1" {
		t.Fatalf("List(a/) = %v", got)
	}
	if c := s.Counter("seq"); c != 7 {
		t.Fatalf("counter = %d, want 7", c)
	}
	if !bytes.Equal(tt2.AgentPublicKey().KID(), kid) {
		t.Fatal("Agent key changed across reopen")
	}
	if got := tt2.Identity(); !bytes.Equal(got.UEID, id.UEID) || got.VendorID != DefaultVendorID || got.ClassID != DefaultClassID {
		t.Fatalf("identity changed: %+v vs %+v", got, id)
	}
	if len(id.UEID) != 33 || id.UEID[0] != 0x01 {
		t.Fatalf("UEID %x is not an RFC 9711 RAND ueid", id.UEID)
	}
	// Only live objects remain on disk.
	files, _ := os.ReadDir(filepath.Join(dir, objectsDir))
	if want := len(tt2.st.List("")); len(files) != want {
		t.Fatalf("%d object files on disk, %d objects", len(files), want)
	}
}

func TestTransactionRollsBackOnError(t *testing.T) {
	dir := t.TempDir()
	tt := openTEE(t, dir, Options{})
	teetest.Put(t, tt.Storage(), "x", "old")
	gen := tt.st.Generation()
	boom := errors.New("boom")
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error {
		if err := tx.Put("x", []byte("new")); err != nil {
			return err
		}
		if err := tx.Put("y", []byte("new")); err != nil {
			return err
		}
		if got, _ := tx.Get("x"); string(got) != "new" {
			t.Errorf("tx does not see its own write: %q", got)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	teetest.MustGet(t, tt.Storage(), "x", "old")
	if _, err := tt.Storage().Get("y"); !errors.Is(err, tee.ErrNotFound) {
		t.Fatalf("y after aborted tx: %v", err)
	}
	if tt.st.Generation() != gen {
		t.Fatal("aborted transaction advanced the generation")
	}
	files, _ := os.ReadDir(filepath.Join(dir, objectsDir))
	if len(files) != len(tt.st.List("")) {
		t.Fatalf("aborted transaction left %d files for %d objects", len(files), len(tt.st.List("")))
	}
}

func TestCounterIsMonotonic(t *testing.T) {
	tt := openTEE(t, t.TempDir(), Options{})
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.SetCounter("c", 5) })
	if err != nil {
		t.Fatal(err)
	}
	err = tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.SetCounter("c", 4) })
	if !errors.Is(err, tee.ErrCounterBackwards) {
		t.Fatalf("lowering a counter: %v, want ErrCounterBackwards", err)
	}
	if c := tt.Storage().Counter("c"); c != 5 {
		t.Fatalf("counter = %d", c)
	}
}

func TestNameAndSizeLimits(t *testing.T) {
	tt := openTEE(t, t.TempDir(), Options{MaxObjectSize: 3 * ChunkSize})
	for _, name := range []string{"", strings.Repeat("n", MaxNameLen+1), "a\x00b"} {
		err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.Put(name, nil) })
		if err == nil {
			t.Errorf("Put(%q) accepted", name)
		}
	}
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.Put("big", make([]byte, 3*ChunkSize+1)) })
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversize object: %v", err)
	}
}

// flip changes one byte of a file in place.
func flip(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func objectFile(t *testing.T, tt *TEE, name string) string {
	t.Helper()
	ref, ok := tt.st.idx.Objects[name]
	if !ok {
		t.Fatalf("no object %q", name)
	}
	return filepath.Join(tt.dir, objectsDir, ref.File)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTamperingIsDetected changes the state on disk in every way an
// attacker with file access could, and checks Open refuses each one.
func TestTamperingIsDetected(t *testing.T) {
	type setup struct {
		dir        string
		a, b       string // object files of "a" and "b"
		oldIndex   []byte // index and counter before the last commit
		oldCounter []byte
		oldA       []byte // "a"'s sealed file before the last commit
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, s setup)
		want   error
	}{
		{"bit flip in object body", func(t *testing.T, s setup) { flip(t, s.a, -1) }, tee.ErrTampered},
		{"bit flip in object header", func(t *testing.T, s setup) { flip(t, s.a, 6) }, tee.ErrTampered},
		{"object deleted", func(t *testing.T, s setup) { os.Remove(s.a) }, tee.ErrTampered},
		{"objects swapped", func(t *testing.T, s setup) {
			a, _ := os.ReadFile(s.a)
			b, _ := os.ReadFile(s.b)
			os.WriteFile(s.a, b, 0o600)
			os.WriteFile(s.b, a, 0o600)
		}, tee.ErrTampered},
		{"object rolled back to older sealed version", func(t *testing.T, s setup) {
			os.WriteFile(s.a, s.oldA, 0o600)
		}, tee.ErrTampered},
		{"index rolled back", func(t *testing.T, s setup) {
			os.WriteFile(filepath.Join(s.dir, indexFile), s.oldIndex, 0o600)
		}, tee.ErrRollback},
		{"bit flip in index", func(t *testing.T, s setup) { flip(t, filepath.Join(s.dir, indexFile), 30) }, tee.ErrTampered},
		{"index truncated", func(t *testing.T, s setup) { os.WriteFile(filepath.Join(s.dir, indexFile), []byte("TSB1"), 0o600) }, tee.ErrTampered},
		{"counter deleted", func(t *testing.T, s setup) { os.Remove(filepath.Join(s.dir, counterFile)) }, tee.ErrTampered},
		{"index deleted", func(t *testing.T, s setup) { os.Remove(filepath.Join(s.dir, indexFile)) }, tee.ErrTampered},
		{"counter replaced by index", func(t *testing.T, s setup) {
			copyFile(t, filepath.Join(s.dir, indexFile), filepath.Join(s.dir, counterFile))
		}, tee.ErrTampered},
		{"root key replaced", func(t *testing.T, s setup) {
			k := make([]byte, rootKeySize)
			rand.Read(k)
			os.WriteFile(filepath.Join(s.dir, rootKeyFile), k, 0o600)
		}, tee.ErrTampered},
		{"root key deleted", func(t *testing.T, s setup) { os.Remove(filepath.Join(s.dir, rootKeyFile)) }, tee.ErrTampered},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tt := openTEE(t, dir, Options{})
			teetest.Put(t, tt.Storage(), "a", "version 1", "b", "other")
			s := setup{dir: dir}
			s.oldA, _ = os.ReadFile(objectFile(t, tt, "a"))
			s.oldIndex, _ = os.ReadFile(filepath.Join(dir, indexFile))
			s.oldCounter, _ = os.ReadFile(filepath.Join(dir, counterFile))
			teetest.Put(t, tt.Storage(), "a", "version 2")
			s.a, s.b = objectFile(t, tt, "a"), objectFile(t, tt, "b")
			tt.Close()
			if c.name == "object rolled back to older sealed version" {
				// The attacker keeps the current file name; only content rolls back.
				s.oldA = s.oldA[:len(s.oldA):len(s.oldA)]
			}
			c.tamper(t, s)
			_, err := Open(dir, Options{})
			if !errors.Is(err, c.want) {
				t.Fatalf("Open after tampering = %v, want %v", err, c.want)
			}
		})
	}
}

// TestSealedForAnotherTEE: a blob sealed by one TEE does not open in
// another, even with the same root key, because the TEE name is bound.
func TestSealedForAnotherTEE(t *testing.T) {
	key := make([]byte, rootKeySize)
	rand.Read(key)
	a, _ := newSealer("a", key)
	b, _ := newSealer("b", key)
	blob, err := a.seal(kindObject, 1, "x", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.open(kindObject, "x", blob); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("other TEE opened the blob: %v", err)
	}
	if _, _, err := a.open(kindObject, "y", blob); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("blob opened under another purpose: %v", err)
	}
	if _, _, err := a.open(kindIndex, "x", blob); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("blob opened as another kind: %v", err)
	}
	gen, plain, err := a.open(kindObject, "x", blob)
	if err != nil || gen != 1 || string(plain) != "secret" {
		t.Fatalf("open = %d %q %v", gen, plain, err)
	}
}

func TestRootKeyPermissions(t *testing.T) {
	dir := t.TempDir()
	openTEE(t, dir, Options{}).Close()
	fi, err := os.Stat(filepath.Join(dir, rootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key mode %04o", fi.Mode().Perm())
	}
	os.Chmod(filepath.Join(dir, rootKeyFile), 0o644)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose root key accepted: %v", err)
	}
}

func TestLockExcludesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	tt := openTEE(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, tee.ErrBusy) {
		t.Fatalf("second Open = %v, want ErrBusy", err)
	}
	tt.Close()
	openTEE(t, dir, Options{})
}

func TestAgentKeyImport(t *testing.T) {
	for _, alg := range []string{"esp256", "ed25519"} {
		t.Run(alg, func(t *testing.T) {
			a, _ := cosekey.ParseAlg(alg)
			k, err := cosekey.Generate(a)
			if err != nil {
				t.Fatal(err)
			}
			// Import from each file format, as the CLI does.
			for _, f := range []cosekey.Format{cosekey.FormatCOSE, cosekey.FormatPEM, cosekey.FormatJWK} {
				path := filepath.Join(t.TempDir(), "agent.key")
				if err := keyfile.Save(path, k, f, true); err != nil {
					t.Fatal(err)
				}
				loaded, err := keyfile.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				tt := openTEE(t, dir, Options{AgentKey: loaded})
				if !bytes.Equal(tt.AgentPublicKey().KID(), k.KID()) {
					t.Fatalf("%s: imported key kid %x, want %x", f, tt.AgentPublicKey().KID(), k.KID())
				}
				tt.Close()
				// Same key again: fine. Another key: refused.
				openTEE(t, dir, Options{AgentKey: loaded}).Close()
				other, _ := cosekey.Generate(a)
				if _, err := Open(dir, Options{AgentKey: other}); err == nil || !strings.Contains(err.Error(), "different Agent key") {
					t.Fatalf("%s: different key accepted: %v", f, err)
				}
			}
		})
	}
	pub, _ := cosekey.Generate(cosekey.AlgESP256)
	if _, err := Open(t.TempDir(), Options{AgentKey: pub.PublicKey()}); err == nil {
		t.Fatal("public-only Agent key accepted")
	}
}

func TestAgentKeySigns(t *testing.T) {
	tt := openTEE(t, t.TempDir(), Options{})
	k, err := cosekey.FromSigner(tt.AgentKey(), 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cosekey.NewSigner(k, cosekey.AlgESP256)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cosekey.Sign1([]byte("payload"), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cosekey.Verify(msg, cosekey.VerifyOptions{Keys: []*cosekey.Key{tt.AgentPublicKey()}}); err != nil {
		t.Fatalf("signature by the TEE's Agent key does not verify: %v", err)
	}
	if _, ok := tt.AgentKey().(interface{ ECDH() }); ok {
		t.Fatal("Agent signer exposes the private key type")
	}
}

func TestDecrypters(t *testing.T) {
	// A P-256 Agent key does ECDH; a provisioned decryption key is added.
	extra, _ := cosekey.Generate(cosekey.AlgESP256)
	dir := t.TempDir()
	tt := openTEE(t, dir, Options{DecryptionKey: extra})
	ds := tt.Decrypters()
	if len(ds) != 2 {
		t.Fatalf("%d decrypters, want 2", len(ds))
	}
	agentPub, _ := tt.AgentPublicKey().ECDHPublic()
	extraPub, _ := extra.ECDHPublic()
	if !ds[0].PublicKey().Equal(agentPub) || !ds[1].PublicKey().Equal(extraPub) {
		t.Fatal("decrypters are not the Agent key and the provisioned key")
	}
	for _, d := range ds {
		peer, _ := ecdh.P256().GenerateKey(rand.Reader)
		z1, err := d.ECDH(peer.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		z2, _ := peer.ECDH(d.PublicKey())
		if !bytes.Equal(z1, z2) {
			t.Fatal("ECDH secrets differ")
		}
		x, _ := ecdh.X25519().GenerateKey(rand.Reader)
		if _, err := d.ECDH(x.PublicKey()); err == nil {
			t.Fatal("X25519 peer accepted")
		}
	}
	tt.Close()
	// The provisioned key persists.
	if n := len(openTEE(t, dir, Options{}).Decrypters()); n != 2 {
		t.Fatalf("after reopen: %d decrypters", n)
	}
	// An Ed25519 Agent key cannot do ECDH.
	ed := openTEE(t, t.TempDir(), Options{AgentAlg: cosekey.AlgEd25519})
	if n := len(ed.Decrypters()); n != 0 {
		t.Fatalf("Ed25519 TEE has %d decrypters", n)
	}
}

func TestIdentityOverride(t *testing.T) {
	dir := t.TempDir()
	v := [16]byte{1, 2, 3}
	c := [16]byte{4, 5, 6}
	openTEE(t, dir, Options{VendorID: &v, ClassID: &c}).Close()
	tt := openTEE(t, dir, Options{}) // persisted
	if id := tt.Identity(); id.VendorID != v || id.ClassID != c {
		t.Fatalf("identity %x/%x", id.VendorID, id.ClassID)
	}
}

func TestDefaultIDsAreRFC9562Version5(t *testing.T) {
	for _, u := range [][16]byte{DefaultVendorID, DefaultClassID} {
		if u[6]>>4 != 5 || u[8]>>6 != 2 {
			t.Fatalf("%x is not a version-5 RFC 9562 UUID", u)
		}
	}
	// RFC 9562 Appendix A.4 style check: uuid5(DNS, "www.example.com").
	got := uuid5(uuidNamespaceDNS, "www.example.com")
	want := "2ed6657de927568b95e12665a8aea6a2"
	if fmt.Sprintf("%x", got) != want {
		t.Fatalf("uuid5 = %x, want %s", got, want)
	}
}

func TestFaultBeforeCommitKeepsOldState(t *testing.T) {
	dir := t.TempDir()
	stop := errors.New("injected fault")
	armed := false
	tt := openTEE(t, dir, Options{FaultHook: func(p string, _ []string) error {
		if armed && p == FaultStaged {
			return stop
		}
		return nil
	}})
	teetest.Put(t, tt.Storage(), "c", "v1")
	armed = true
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.Put("c", []byte("v2")) })
	if !errors.Is(err, stop) {
		t.Fatalf("Update = %v", err)
	}
	teetest.MustGet(t, tt.Storage(), "c", "v1")
}

func TestFaultAfterIndexCompletesOnReopen(t *testing.T) {
	dir := t.TempDir()
	armed := false
	tt := openTEE(t, dir, Options{FaultHook: func(p string, _ []string) error {
		if armed && p == FaultIndexWritten {
			return errors.New("crash")
		}
		return nil
	}})
	teetest.Put(t, tt.Storage(), "c", "v1")
	armed = true
	teetest.Put(t, tt.Storage(), "c", "v2") // committed; counter lags
	tt.Close()
	tt2 := openTEE(t, dir, Options{})
	teetest.MustGet(t, tt2.Storage(), "c", "v2")
	teetest.Put(t, tt2.Storage(), "c", "v3")
	tt2.Close()
	openTEE(t, dir, Options{})
}

// TestCrashBetweenStagingAndCommit kills a real process (os.Exit, no
// cleanup) after it has staged a new version of an object, then checks the
// store reopens with the old version and no leftover files.
func TestCrashBetweenStagingAndCommit(t *testing.T) {
	if dir := os.Getenv("SOFTTEE_CRASH_DIR"); dir != "" {
		tt, err := Open(dir, Options{FaultHook: func(p string, _ []string) error {
			if p == FaultStaged {
				os.Exit(3)
			}
			return nil
		}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.Put("c", bytes.Repeat([]byte("v2"), 1000)) })
		os.Exit(0)
	}
	dir := t.TempDir()
	tt := openTEE(t, dir, Options{})
	teetest.Put(t, tt.Storage(), "c", "v1")
	tt.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashBetweenStagingAndCommit$")
	cmd.Env = append(os.Environ(), "SOFTTEE_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child did not crash at the fault point: %v\n%s", err, out)
	}
	files, _ := os.ReadDir(filepath.Join(dir, objectsDir))
	tt2 := openTEE(t, dir, Options{})
	teetest.MustGet(t, tt2.Storage(), "c", "v1")
	after, _ := os.ReadDir(filepath.Join(dir, objectsDir))
	if len(after) != len(tt2.st.List("")) || len(files) <= len(after) {
		t.Fatalf("orphans: %d files before reopen, %d after, %d objects", len(files), len(after), len(tt2.st.List("")))
	}
}

func FuzzOpenSealed(f *testing.F) {
	key := bytes.Repeat([]byte{7}, rootKeySize)
	s, _ := newSealer("fuzz", key)
	good, _ := s.seal(kindObject, 3, "obj", []byte("hello"))
	f.Add(good)
	idx, _ := s.seal(kindIndex, 1, "index", []byte{0xa0})
	f.Add(idx)
	f.Add([]byte("TSB1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, k := range []byte{kindObject, kindIndex, kindCounter} {
			gen, plain, err := s.open(k, "obj", blob)
			if err == nil {
				// Only our own seal can produce a valid blob.
				if k != kindObject || gen != 3 || string(plain) != "hello" {
					t.Fatalf("forged blob opened: kind %d gen %d %q", k, gen, plain)
				}
			} else if !errors.Is(err, tee.ErrTampered) {
				t.Fatalf("error is not ErrTampered: %v", err)
			}
		}
		var idx index
		if err := cborDec.Unmarshal(blob, &idx); err == nil {
			// A decodable index re-encodes without error.
			if _, err := cborEnc.Marshal(idx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// BenchmarkCommit measures a one-object transaction against the baseline
// of writing the same bytes with an fsynced atomic rename.
func BenchmarkCommit(b *testing.B) {
	data := make([]byte, 64<<10)
	rand.Read(data)
	b.Run("baseline-atomic-write", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := keyfile.WriteAtomic(filepath.Join(dir, "f"), data, 0o600); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sealed-commit", func(b *testing.B) {
		tt, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer tt.Close()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.Put("f", data) }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	data := make([]byte, 1<<20)
	rand.Read(data)
	dir := b.TempDir()
	tt, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tt.Close()
	tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.Put("f", data) })
	os.WriteFile(filepath.Join(dir, "plain"), data, 0o600)
	b.Run("baseline-read-sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			d, _ := os.ReadFile(filepath.Join(dir, "plain"))
			sha256.Sum256(d)
		}
	})
	b.Run("sealed-get", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := tt.Storage().Get("f"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestEvidence(t *testing.T) {
	tt := openTEE(t, t.TempDir(), Options{})
	nonce := []byte("0123456789abcdef")
	ev, err := tt.Evidence(context.Background(), tee.EvidenceRequest{Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Format != "" {
		t.Fatalf("format %q, want the default TEEP EAT profile", ev.Format)
	}
	tok, err := eat.Parse(ev.Payload, eat.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify([]*cosekey.Key{tt.AttestationPublicKey()}); err != nil {
		t.Fatalf("Evidence does not verify with the attestation key: %v", err)
	}
	if _, err := tok.Verify([]*cosekey.Key{tt.AgentPublicKey()}); err == nil {
		t.Fatal("Evidence verifies with the Agent key: attestation and Agent keys must differ")
	}
	c := tok.Claims
	if !bytes.Equal(c.Nonce, nonce) || !bytes.Equal(c.UEID, tt.Identity().UEID) {
		t.Fatalf("nonce %x ueid %x", c.Nonce, c.UEID)
	}
	if err := c.CNF.Binds(tt.AgentPublicKey()); err != nil {
		t.Fatalf("cnf does not name the Agent key: %v", err)
	}
	if c.CNF.Key == nil || !c.CNF.Key.Equal(tt.AgentPublicKey()) {
		t.Fatal("cnf does not carry the Agent key itself (a TAM could not register an unknown device)")
	}
	// With nothing installed the TEEP profile's required manifests claim
	// still describes the TEE's own code, and debug is honestly reported.
	if missing := c.ProfileProblems(); len(missing) != 0 {
		t.Fatalf("Evidence breaks the TEEP profile: %v", missing)
	}
	if len(c.Manifests) != 1 {
		t.Fatalf("%d manifests, want the TEE's own", len(c.Manifests))
	}
	self, err := c.Manifests[0].SUITReference()
	if err != nil || self.URI != SelfManifestURI || len(self.Digest) != 32 {
		t.Fatalf("self manifest %+v: %v", self, err)
	}
	if c.DbgStat == nil || *c.DbgStat != eat.DebugEnabled {
		t.Fatalf("dbgstat %v, want enabled for a software TEE", c.DbgStat)
	}
	ts, err := tt.Evidence(context.Background(), tee.EvidenceRequest{Timestamp: true})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := eat.Parse(ts.Payload, eat.ParseOptions{}); err != nil || tok.Claims.IssuedAt == nil {
		t.Fatalf("timestamp Evidence without iat: %v", err)
	}
	if _, err := tt.Evidence(context.Background(), tee.EvidenceRequest{}); err == nil {
		t.Fatal("Evidence without freshness")
	}
}

func TestStreamingObjects(t *testing.T) {
	tt := openTEE(t, t.TempDir(), Options{})
	sizes := []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 7}
	data := make([]byte, 3*ChunkSize+7)
	rand.Read(data)
	err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error {
		for _, n := range sizes {
			w, err := tx.Create(fmt.Sprintf("s/%d", n))
			if err != nil {
				return err
			}
			// Odd write sizes cross chunk boundaries at every offset.
			for off := 0; off < n; off += 1000 {
				if _, err := w.Write(data[off:min(off+1000, n)]); err != nil {
					return err
				}
			}
			if err := w.Close(); err != nil {
				return err
			}
		}
		// Read-your-writes inside the transaction.
		r, size, err := tx.Open(fmt.Sprintf("s/%d", ChunkSize+1))
		if err != nil {
			return err
		}
		defer r.Close()
		got, _ := io.ReadAll(r)
		if size != ChunkSize+1 || !bytes.Equal(got, data[:ChunkSize+1]) {
			t.Errorf("tx.Open: %d bytes, size %d", len(got), size)
		}
		// Writers never closed are not part of the transaction, and each
		// one's staged file goes, however many there are.
		for _, name := range []string{"unclosed", "unclosed2", "unclosed3"} {
			w, err := tx.Create(name)
			if err != nil {
				return err
			}
			w.Write([]byte("lost"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sizes {
		r, size, err := tt.Storage().Open(fmt.Sprintf("s/%d", n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || size != int64(n) || !bytes.Equal(got, data[:n]) {
			t.Fatalf("size %d: read %d bytes (size %d), %v", n, len(got), size, err)
		}
		if fi, _ := os.Stat(objectFile(t, tt, fmt.Sprintf("s/%d", n))); fi.Size() != sealedSize(int64(n)) {
			t.Fatalf("size %d: file is %d bytes, want %d", n, fi.Size(), sealedSize(int64(n)))
		}
	}
	for _, name := range []string{"unclosed", "unclosed2", "unclosed3"} {
		if _, err := tt.Storage().Get(name); !errors.Is(err, tee.ErrNotFound) {
			t.Fatalf("unclosed writer %s committed: %v", name, err)
		}
	}
	files, _ := os.ReadDir(filepath.Join(tt.dir, objectsDir))
	if len(files) != len(tt.st.List("")) {
		t.Fatalf("%d files for %d objects", len(files), len(tt.st.List("")))
	}
}

// TestStreamTampering: chunk-level attacks on a multi-chunk object.
func TestStreamTampering(t *testing.T) {
	data := make([]byte, 3*ChunkSize+5)
	rand.Read(data)
	chunk := ChunkSize + tagSize
	cases := map[string]func(b []byte) []byte{
		"truncated at a chunk boundary": func(b []byte) []byte { return b[:streamHeaderSize+2*chunk] },
		"chunks swapped": func(b []byte) []byte {
			c := bytes.Clone(b)
			a, d := c[streamHeaderSize:streamHeaderSize+chunk], c[streamHeaderSize+chunk:streamHeaderSize+2*chunk]
			tmp := bytes.Clone(a)
			copy(a, d)
			copy(d, tmp)
			return c
		},
		"last chunk dropped, earlier one marked final by size": func(b []byte) []byte {
			return b[:len(b)-(5+tagSize)]
		},
		"bit flip in third chunk": func(b []byte) []byte {
			c := bytes.Clone(b)
			c[streamHeaderSize+2*chunk+10] ^= 0x80
			return c
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tt := openTEE(t, dir, Options{})
			teetest.Put(t, tt.Storage(), "big", string(data))
			path := objectFile(t, tt, "big")
			b, _ := os.ReadFile(path)
			os.WriteFile(path, mutate(b), 0o600)
			// Detected on read, even before a reopen...
			if _, err := tt.Storage().Get("big"); !errors.Is(err, tee.ErrTampered) {
				t.Fatalf("Get = %v, want ErrTampered", err)
			}
			tt.Close()
			// ...and at open.
			if _, err := Open(dir, Options{}); !errors.Is(err, tee.ErrTampered) {
				t.Fatalf("Open = %v, want ErrTampered", err)
			}
		})
	}
}

// TestReadersDoNotBlockOnWriters: a transaction held open (a long install)
// does not stop reads of the committed state, and commits racing with
// reads never look like tampering.
func TestReadersDoNotBlockOnWriters(t *testing.T) {
	tt := openTEE(t, t.TempDir(), Options{})
	teetest.Put(t, tt.Storage(), "x", "v0")
	txn, err := tt.Storage().Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Put("x", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	teetest.MustGet(t, tt.Storage(), "x", "v0") // does not block, sees committed state
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := tt.Storage().Begin(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Begin while one is open: %v", err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	txn.Abort() // no-op after Commit
	teetest.MustGet(t, tt.Storage(), "x", "v1")

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.Put("x", []byte(fmt.Sprint(i))) }); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 200; i++ {
		if _, err := tt.Storage().Get("x"); err != nil {
			t.Fatalf("read during commits: %v", err)
		}
	}
	close(stop)
	wg.Wait()
}

// FuzzOpenObject feeds arbitrary object files to the streaming reader.
func FuzzOpenObject(f *testing.F) {
	dir := f.TempDir()
	tt, err := Open(dir, Options{Name: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	defer tt.Close()
	for _, n := range []int{0, 5, ChunkSize + 3} {
		name := fmt.Sprintf("o%d", n)
		if err := tee.Update(context.Background(), tt.Storage(), func(tx tee.Tx) error { return tx.Put(name, make([]byte, n)) }); err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, objectsDir, tt.st.idx.Objects[name].File))
		f.Add(b)
	}
	f.Add([]byte("TSO1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Find the plaintext size this file length implies, if any.
		var n int64 = -1
		for c := int64(1); c <= int64(len(data))/tagSize+1; c++ {
			if m := int64(len(data)) - streamHeaderSize - c*tagSize; m >= 0 && m/ChunkSize+1 == c {
				n = m
				break
			}
		}
		if n < 0 {
			return
		}
		path := filepath.Join(t.TempDir(), "obj")
		os.WriteFile(path, data, 0o600)
		sum := sha256.Sum256(data)
		st := tt.st
		for _, name := range []string{"o0", "o5", fmt.Sprintf("o%d", ChunkSize+3)} {
			ref := objectRef{File: st.idx.Objects[name].File, Size: n, Sum: sum[:]}
			// Point the reader at the fuzzed bytes under the real file name.
			orig := filepath.Join(dir, objectsDir, ref.File)
			saved, _ := os.ReadFile(orig)
			os.WriteFile(orig, data, 0o600)
			rd, err := st.openObject(name, ref)
			if err == nil {
				_, err = io.Copy(io.Discard, rd)
				rd.Close()
			}
			os.WriteFile(orig, saved, 0o600)
			if err != nil && !errors.Is(err, tee.ErrTampered) {
				t.Fatalf("%s: error is not ErrTampered: %v", name, err)
			}
			if err == nil && !bytes.Equal(data, saved) {
				t.Fatalf("%s: forged object accepted", name)
			}
		}
	})
}
