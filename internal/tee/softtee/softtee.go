package softtee

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/veraison/go-cose"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
	"github.com/teep-go/teep/internal/attester"
	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/internal/tee/wasmta"
)

// Names of the sealed objects the TEE itself keeps.
const (
	objAgentKey       = keyPrefix + "agent"
	objAttestationKey = keyPrefix + "attestation"
	objDecryptionKey  = keyPrefix + "decryption"
	objIdentity       = "identity"
	rootKeyFile       = "root.key"
	lockFile          = "lock"
)

// Default SUIT identity of a software TEE. The vendor id is the RFC 9562
// name-based (SHA-1) UUID of "softtee.teep-go.invalid" in the DNS namespace;
// the class id is the UUID of "softtee" under the vendor id, as
// draft-ietf-suit-manifest recommends for class ids.
var (
	DefaultVendorID = uuid5(uuidNamespaceDNS, "softtee.teep-go.invalid")
	DefaultClassID  = uuid5(DefaultVendorID, "softtee")
)

var uuidNamespaceDNS = [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

func uuid5(ns [16]byte, name string) [16]byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

// ValidName is the syntax of a TEE name: it becomes a directory name.
var ValidName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Options configure Open.
type Options struct {
	// Name of the TEE (ValidName); defaults to the directory's base name.
	Name string
	// AgentKey is imported on first use (so a device can be registered with
	// a TAM in advance). A TEE that already has a different Agent key
	// refuses to open rather than silently change identity.
	AgentKey *cosekey.Key
	// AgentAlg is the algorithm of a generated Agent key (default ESP256).
	AgentAlg cose.Algorithm
	// DecryptionKey (P-256) is an extra key-agreement key, imported on
	// first use like AgentKey, for payloads a TC Signer encrypts to a key
	// provisioned outside TEEP. A P-256 Agent key serves for ECDH as well.
	DecryptionKey *cosekey.Key
	// VendorID and ClassID replace the stored SUIT identity when set.
	VendorID, ClassID *[16]byte
	// FaultHook, when set, is called at each commit point of the sealed
	// store (FaultStaged, FaultIndexWritten) with the names of the objects
	// the transaction wrote. Tests use it to simulate a crash between
	// staging and commit; an error at FaultStaged aborts the commit.
	FaultHook func(point string, staged []string) error
	// MaxObjectSize bounds one stored object, e.g. a component image
	// (0: MaxObjectSize).
	MaxObjectSize int64
	// TALimits bound the Trusted Applications this TEE runs (zero
	// fields: wasmta.DefaultLimits); TALog receives their log lines.
	TALimits wasmta.Limits
	TALog    *slog.Logger
}

// TEE is a software TEE whose state lives in one directory.
type TEE struct {
	name   string
	dir    string
	st     *store
	unlock func() error

	agent  *cosekey.Key
	attest *cosekey.Key
	dkeys  []*cosekey.Key // key-agreement keys: the Agent key (P-256), then the provisioned one
	id     tee.Identity

	taLimits wasmta.Limits
	taLog    *slog.Logger
	run      runner
}

var _ tee.TEE = (*TEE)(nil)

// Open opens (creating on first use) the software TEE in dir. It takes an
// exclusive lock on dir for as long as the TEE is open, authenticates the
// whole sealed store and fails with tee.ErrTampered or tee.ErrRollback when
// anything on disk was changed behind its back.
func Open(dir string, o Options) (_ *TEE, err error) {
	name := o.Name
	if name == "" {
		name = filepath.Base(dir)
	}
	if !ValidName.MatchString(name) {
		return nil, fmt.Errorf("softtee: invalid TEE name %q (want %s)", name, ValidName)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("softtee: %w", err)
	}
	unlock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("softtee %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	root, err := loadRootKey(filepath.Join(dir, rootKeyFile))
	if err != nil {
		return nil, fmt.Errorf("softtee %s: %w", name, err)
	}
	st, err := openStore(dir, name, root, o.FaultHook, o.MaxObjectSize)
	if err != nil {
		return nil, fmt.Errorf("softtee %s: %w", name, err)
	}
	if err := st.Verify(); err != nil {
		return nil, fmt.Errorf("softtee %s: %w", name, err)
	}
	t := &TEE{name: name, dir: dir, st: st, unlock: unlock, taLimits: o.TALimits, taLog: o.TALog}
	if err := t.provision(o); err != nil {
		return nil, fmt.Errorf("softtee %s: %w", name, err)
	}
	return t, nil
}

// loadRootKey reads the device root key, creating it on first use. A key
// file others can read is refused, as ssh refuses loose private keys.
func loadRootKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, ierr := os.Stat(filepath.Join(filepath.Dir(path), indexFile)); ierr == nil {
			return nil, fmt.Errorf("%w: root key %s is missing but sealed state exists", tee.ErrTampered, path)
		}
		key := make([]byte, rootKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := writeSynced(path, key); err != nil {
			return nil, fmt.Errorf("create root key: %w", err)
		}
		return key, syncDir(filepath.Dir(path))
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("root key %s has mode %04o; it must be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	key, err := readLimited(path, rootKeySize)
	if err != nil {
		return nil, err
	}
	if len(key) != rootKeySize {
		return nil, fmt.Errorf("%w: root key %s is %d bytes, want %d", tee.ErrTampered, path, len(key), rootKeySize)
	}
	return key, nil
}

type identityRecord struct {
	VendorID  []byte `cbor:"1,keyasint"`
	ClassID   []byte `cbor:"2,keyasint"`
	UEID      []byte `cbor:"3,keyasint"`
	OEMID     []byte `cbor:"4,keyasint"`
	HWModel   []byte `cbor:"5,keyasint"`
	HWVersion string `cbor:"6,keyasint"`
}

// provision loads the TEE's keys and identity, creating or importing what
// is missing, in one transaction.
func (t *TEE) provision(o Options) error {
	return tee.Update(context.Background(), t.st, func(tx tee.Tx) error {
		var err error
		alg := o.AgentAlg
		if alg == 0 {
			alg = cosekey.AlgESP256
		}
		if t.agent, err = loadOrImportKey(tx, objAgentKey, "Agent", o.AgentKey, alg); err != nil {
			return err
		}
		if t.attest, err = loadOrImportKey(tx, objAttestationKey, "attestation", nil, cosekey.AlgESP256); err != nil {
			return err
		}
		if t.agent.Type() == cosekey.KeyTypeP256 {
			t.dkeys = append(t.dkeys, t.agent)
		}
		if o.DecryptionKey != nil && o.DecryptionKey.Type() != cosekey.KeyTypeP256 {
			return errors.New("decryption key must be a P-256 key")
		}
		if _, err := tx.Get(objDecryptionKey); err == nil || o.DecryptionKey != nil {
			dk, err := loadOrImportKey(tx, objDecryptionKey, "decryption", o.DecryptionKey, cosekey.AlgESP256)
			if err != nil {
				return err
			}
			t.dkeys = append(t.dkeys, dk)
		}
		return t.loadIdentity(tx, o)
	})
}

func loadOrImportKey(tx tee.Tx, obj, what string, imported *cosekey.Key, alg cose.Algorithm) (*cosekey.Key, error) {
	data, err := tx.Get(obj)
	switch {
	case err == nil:
		k, err := cosekey.ParseCOSEKey(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s key: %v", tee.ErrTampered, what, err)
		}
		if imported != nil && !k.PublicKey().Equal(imported.PublicKey()) {
			return nil, fmt.Errorf("this TEE already has a different %s key (kid %x); use a fresh state directory to change it",
				what, k.KID())
		}
		return k, nil
	case !errors.Is(err, tee.ErrNotFound):
		return nil, err
	}
	k := imported
	if k == nil {
		if k, err = cosekey.Generate(alg); err != nil {
			return nil, err
		}
	} else if !k.IsPrivate() {
		return nil, fmt.Errorf("%s key to import has no private part", what)
	}
	enc, err := k.MarshalCOSEKey(true)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", what, err)
	}
	if err := tx.Put(obj, enc); err != nil {
		return nil, err
	}
	return k, nil
}

func (t *TEE) loadIdentity(tx tee.Tx, o Options) error {
	var rec identityRecord
	data, err := tx.Get(objIdentity)
	switch {
	case err == nil:
		if err := cborDec.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("%w: identity: %v", tee.ErrTampered, err)
		}
		if len(rec.VendorID) != 16 || len(rec.ClassID) != 16 {
			return fmt.Errorf("%w: identity: bad vendor or class id length", tee.ErrTampered)
		}
	case errors.Is(err, tee.ErrNotFound):
		ueid := make([]byte, 33)
		ueid[0] = 0x01 // RFC 9711 §4.2.1 RAND type
		oemid := make([]byte, 16)
		if _, err := rand.Read(ueid[1:]); err != nil {
			return err
		}
		if _, err := rand.Read(oemid); err != nil {
			return err
		}
		rec = identityRecord{
			VendorID: DefaultVendorID[:], ClassID: DefaultClassID[:],
			UEID: ueid, OEMID: oemid, HWModel: []byte("teep-go softtee"), HWVersion: "1.0",
		}
	default:
		return err
	}
	before := rec
	if o.VendorID != nil {
		rec.VendorID = o.VendorID[:]
	}
	if o.ClassID != nil {
		rec.ClassID = o.ClassID[:]
	}
	if err != nil || !bytes.Equal(before.VendorID, rec.VendorID) || !bytes.Equal(before.ClassID, rec.ClassID) {
		enc, err := cborEnc.Marshal(rec)
		if err != nil {
			return err
		}
		if err := tx.Put(objIdentity, enc); err != nil {
			return err
		}
	}
	t.id = tee.Identity{UEID: rec.UEID, OEMID: rec.OEMID, HWModel: rec.HWModel, HWVersion: rec.HWVersion}
	copy(t.id.VendorID[:], rec.VendorID)
	copy(t.id.ClassID[:], rec.ClassID)
	return nil
}

// Name implements tee.TEE.
func (t *TEE) Name() string { return t.name }

// Dir is the TEE's state directory.
func (t *TEE) Dir() string { return t.dir }

// opaqueSigner hides the concrete private key type, so callers cannot reach
// the key material through a type assertion.
type opaqueSigner struct{ s crypto.Signer }

func (o opaqueSigner) Public() crypto.PublicKey { return o.s.Public() }
func (o opaqueSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, digest, opts)
}

// AgentKey implements tee.TEE.
func (t *TEE) AgentKey() crypto.Signer { return opaqueSigner{t.agent.PrivateSigner()} }

// AgentPublicKey is the public Agent key, with its algorithm, for
// registering the device with a TAM.
func (t *TEE) AgentPublicKey() *cosekey.Key { return t.agent.PublicKey() }

// AttestationPublicKey is the public key Evidence is signed with, for a
// Verifier's endorsements.
func (t *TEE) AttestationPublicKey() *cosekey.Key { return t.attest.PublicKey() }

type decrypter struct{ k *ecdh.PrivateKey }

func (d decrypter) PublicKey() *ecdh.PublicKey { return d.k.PublicKey() }
func (d decrypter) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, errors.New("softtee: ECDH peer must be a P-256 key")
	}
	return d.k.ECDH(peer)
}

// Decrypters implements tee.TEE.
func (t *TEE) Decrypters() []tee.Decrypter {
	var out []tee.Decrypter
	for _, k := range t.dkeys {
		if p, err := k.ECDHPrivate(); err == nil {
			out = append(out, decrypter{p})
		}
	}
	return out
}

// DecryptionPublicKeys are the public key-agreement keys, for a TAM or TC
// Signer that encrypts personalization data to this TEE.
func (t *TEE) DecryptionPublicKeys() []*cosekey.Key {
	var out []*cosekey.Key
	for _, k := range t.dkeys {
		out = append(out, k.PublicKey())
	}
	return out
}

// Identity implements tee.TEE.
func (t *TEE) Identity() tee.Identity { return t.id }

// Storage implements tee.TEE. The TEE's own key objects are not part of it.
func (t *TEE) Storage() tee.Storage { return callerStorage{t.st, &t.run} }

// Verify re-authenticates every sealed object on disk.
func (t *TEE) Verify() error { return t.st.Verify() }

// Evidence implements tee.TEE: an EAT of the TEEP profile signed with the
// attestation key, naming the Agent key in cnf.
func (t *TEE) Evidence(ctx context.Context, req tee.EvidenceRequest) (*tee.Evidence, error) {
	s, err := cosekey.NewSigner(t.attest, t.attest.Alg())
	if err != nil {
		return nil, fmt.Errorf("softtee: attestation key: %w", err)
	}
	a := attester.Attester{
		Key: s,
		Identity: attester.Identity{
			UEID:      t.id.UEID,
			OEMID:     eat.OEMIDBytes(t.id.OEMID),
			HWModel:   t.id.HWModel,
			HWVersion: eat.Version{Version: t.id.HWVersion, Scheme: eat.SchemeMultipartNumeric},
			SWName:    "teep-go softtee",
			// The TEEP profile requires manifests of the TEE software,
			// Agent included: the software TEE measures its own code.
			Manifests: selfManifest(),
		},
	}
	// A software TEE cannot keep a debugger out: say so, so that a policy
	// requiring debug to be disabled refuses it rather than trusting it.
	debug := eat.DebugEnabled
	tok, err := a.Evidence(attester.Request{
		Nonce:     req.Nonce,
		Timestamp: req.Timestamp,
		AgentKey:  t.agent.PublicKey(),
		// The key itself, not just its kid, so a TAM that has never seen
		// this device can register it from the Evidence.
		IncludeAgentKey: true,
		Manifests:       req.Manifests,
		DebugStatus:     &debug,
	})
	if err != nil {
		return nil, fmt.Errorf("softtee: evidence: %w", err)
	}
	return &tee.Evidence{Payload: tok}, nil
}

// Close implements tee.TEE.
func (t *TEE) Close() error {
	if t.run.rt != nil {
		t.run.rt.Close(context.Background())
	}
	if t.unlock == nil {
		return nil
	}
	err := t.unlock()
	t.unlock = nil
	return err
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SelfManifestURI names the software TEE's own code in the manifests claim.
const SelfManifestURI = "urn:teep-go:softtee"

var (
	selfOnce   sync.Once
	selfDigest []byte
)

// selfManifest is a SUIT reference to the running executable, measured once
// per process: the software TEE has no boot ROM to measure it for us. When
// the executable cannot be read there is nothing honest to claim.
func selfManifest() []eat.Manifest {
	selfOnce.Do(func() {
		path, err := os.Executable()
		if err != nil {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sum := sha256.New()
		if _, err := io.Copy(sum, f); err == nil {
			selfDigest = sum.Sum(nil)
		}
	})
	if selfDigest == nil {
		return nil
	}
	return []eat.Manifest{eat.SUITReference{URI: SelfManifestURI, DigestAlg: eat.AlgSHA256, Digest: selfDigest}.Manifest(eat.ContentFormatCBOR)}
}
