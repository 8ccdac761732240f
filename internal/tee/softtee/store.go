package softtee

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/fxamacker/cbor/v2"

	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tee"
)

// Limits of the sealed store.
const (
	// MaxObjectSize bounds one sealed object (a component image, a key...).
	MaxObjectSize = 64 << 20
	// MaxIndexSize bounds the sealed index.
	MaxIndexSize = 8 << 20
	// MaxObjects bounds the number of objects in one TEE.
	MaxObjects = 100000
	// MaxNameLen bounds an object or counter name.
	MaxNameLen = 512
)

// Files of one TEE's state directory.
const (
	indexFile   = "index"
	counterFile = "counter"
	objectsDir  = "objects"
)

// Fault points passed to Options.FaultHook, in commit order.
const (
	FaultStaged       = "staged"        // new objects written, index not yet replaced
	FaultIndexWritten = "index-written" // index replaced, counter not yet advanced
)

// index is the sealed root of the store: which file holds each object, the
// sealed file's hash (so an older version of a file is caught even when
// copied in under the right name), and the named monotonic counters.
type index struct {
	Gen      uint64               `cbor:"1,keyasint"`
	Objects  map[string]objectRef `cbor:"2,keyasint"`
	Counters map[string]uint64    `cbor:"3,keyasint"`
}

type objectRef struct {
	File string `cbor:"1,keyasint"` // file name under objects/
	Size int64  `cbor:"2,keyasint"` // sealed file size
	Sum  []byte `cbor:"3,keyasint"` // SHA-256 of the sealed file
}

// counterState is the emulated hardware monotonic counter: the generation of
// the newest committed index. A real TEE keeps it in RPMB, NV or fuses; here
// it is a separate sealed file, so rolling back the index alone is caught
// (rolling back both files together is not; see docs/tee-backends.md).
type counterState struct {
	Gen uint64 `cbor:"1,keyasint"`
}

var (
	cborEnc cbor.EncMode
	cborDec cbor.DecMode
)

func init() {
	var err error
	cborEnc, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	cborDec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  MaxObjects,
		MaxMapPairs:       MaxObjects,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// store is a transactional sealed object store in one directory.
type store struct {
	dir   string
	seal  *sealer
	fault func(point string) error

	mu  sync.RWMutex
	idx *index
	// counterLag is set when a commit replaced the index but could not
	// advance the counter; the next commit retries before doing anything.
	counterLag bool
}

func objectPurpose(name, file string) string { return "object " + name + " in " + file }

func openStore(dir, teeName string, rootKey []byte, fault func(string) error) (*store, error) {
	s, err := newSealer(teeName, rootKey)
	if err != nil {
		return nil, err
	}
	st := &store{dir: dir, seal: s, fault: fault}
	if err := os.MkdirAll(filepath.Join(dir, objectsDir), 0o700); err != nil {
		return nil, err
	}
	if err := st.load(); err != nil {
		return nil, err
	}
	if err := st.removeOrphans(); err != nil {
		return nil, err
	}
	return st, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", tee.ErrTampered, path, limit)
	}
	return data, nil
}

// load reads and authenticates the counter and the index.
func (st *store) load() error {
	counterPath := filepath.Join(st.dir, counterFile)
	indexPath := filepath.Join(st.dir, indexFile)
	cblob, cerr := readLimited(counterPath, 1024)
	iblob, ierr := readLimited(indexPath, MaxIndexSize)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(ierr, fs.ErrNotExist):
		st.idx = &index{Objects: map[string]objectRef{}, Counters: map[string]uint64{}}
		return nil
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return fmt.Errorf("read monotonic counter: %w", cerr)
	case ierr != nil && !errors.Is(ierr, fs.ErrNotExist):
		return fmt.Errorf("read index: %w", ierr)
	case errors.Is(cerr, fs.ErrNotExist):
		return fmt.Errorf("%w: %s: monotonic counter missing while the index exists", tee.ErrTampered, counterPath)
	case errors.Is(ierr, fs.ErrNotExist):
		return fmt.Errorf("%w: %s: index missing while the monotonic counter exists", tee.ErrTampered, indexPath)
	}
	_, cplain, err := st.seal.open(kindCounter, "counter", cblob)
	if err != nil {
		return fmt.Errorf("%s: %w", counterPath, err)
	}
	var c counterState
	if err := cborDec.Unmarshal(cplain, &c); err != nil {
		return fmt.Errorf("%w: %s: %v", tee.ErrTampered, counterPath, err)
	}
	gen, iplain, err := st.seal.open(kindIndex, "index", iblob)
	if err != nil {
		return fmt.Errorf("%s: %w", indexPath, err)
	}
	var idx index
	if err := cborDec.Unmarshal(iplain, &idx); err != nil {
		return fmt.Errorf("%w: %s: %v", tee.ErrTampered, indexPath, err)
	}
	if idx.Gen != gen {
		return fmt.Errorf("%w: %s: header generation %d, content generation %d", tee.ErrTampered, indexPath, gen, idx.Gen)
	}
	switch {
	case idx.Gen < c.Gen:
		return fmt.Errorf("%w: %s: index generation %d is older than the monotonic counter %d",
			tee.ErrRollback, indexPath, idx.Gen, c.Gen)
	case idx.Gen > c.Gen+1:
		return fmt.Errorf("%w: %s: index generation %d is ahead of the monotonic counter %d",
			tee.ErrTampered, indexPath, idx.Gen, c.Gen)
	case idx.Gen == c.Gen+1:
		// A crash between replacing the index and advancing the counter:
		// the index is authentic and newer, so finish the commit.
		if err := st.writeCounter(idx.Gen); err != nil {
			return err
		}
	}
	if idx.Objects == nil {
		idx.Objects = map[string]objectRef{}
	}
	if idx.Counters == nil {
		idx.Counters = map[string]uint64{}
	}
	st.idx = &idx
	return nil
}

// removeOrphans deletes object files no committed index refers to: the
// staged files of a transaction that crashed before its commit.
func (st *store) removeOrphans() error {
	live := make(map[string]bool, len(st.idx.Objects))
	for _, ref := range st.idx.Objects {
		live[ref.File] = true
	}
	entries, err := os.ReadDir(filepath.Join(st.dir, objectsDir))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !live[e.Name()] {
			if err := os.Remove(filepath.Join(st.dir, objectsDir, e.Name())); err != nil {
				return fmt.Errorf("remove orphan: %w", err)
			}
		}
	}
	// Temporary files of an interrupted atomic write.
	tmps, _ := filepath.Glob(filepath.Join(st.dir, ".tmp-*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	return nil
}

func (st *store) writeCounter(gen uint64) error {
	plain, err := cborEnc.Marshal(counterState{Gen: gen})
	if err != nil {
		return err
	}
	blob, err := st.seal.seal(kindCounter, gen, "counter", plain)
	if err != nil {
		return err
	}
	if err := keyfile.WriteAtomic(filepath.Join(st.dir, counterFile), blob, 0o600); err != nil {
		return fmt.Errorf("advance monotonic counter: %w", err)
	}
	return syncDir(st.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty object name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("object name is %d bytes, longer than %d", len(name), MaxNameLen)
	case strings.ContainsAny(name, "\x00\n"):
		return fmt.Errorf("object name %q contains NUL or newline", name)
	}
	return nil
}

// readObject reads and authenticates one object.
func (st *store) readObject(name string, ref objectRef) ([]byte, error) {
	path := filepath.Join(st.dir, objectsDir, ref.File)
	blob, err := readLimited(path, MaxObjectSize+sealOverhead)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: object %q: file %s is missing", tee.ErrTampered, name, path)
	}
	if err != nil {
		return nil, fmt.Errorf("object %q: %w", name, err)
	}
	if int64(len(blob)) != ref.Size {
		return nil, fmt.Errorf("%w: object %q: %s is %d bytes, the index says %d", tee.ErrTampered, name, path, len(blob), ref.Size)
	}
	if sum := sha256.Sum256(blob); !bytes.Equal(sum[:], ref.Sum) {
		return nil, fmt.Errorf("%w: object %q: %s does not match the index (replaced or rolled back)", tee.ErrTampered, name, path)
	}
	_, plain, err := st.seal.open(kindObject, objectPurpose(name, ref.File), blob)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return plain, nil
}

// Get implements tee.Storage.
func (st *store) Get(name string) ([]byte, error) {
	st.mu.RLock()
	ref, ok := st.idx.Objects[name]
	st.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: object %q", tee.ErrNotFound, name)
	}
	return st.readObject(name, ref)
}

// List implements tee.Storage.
func (st *store) List(prefix string) []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return listNames(st.idx.Objects, prefix)
}

func listNames(m map[string]objectRef, prefix string) []string {
	var names []string
	for n := range m {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Counter implements tee.Storage.
func (st *store) Counter(name string) uint64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.idx.Counters[name]
}

// Generation is the number of committed transactions.
func (st *store) Generation() uint64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.idx.Gen
}

// Verify authenticates every object, returning all problems found.
func (st *store) Verify() error {
	st.mu.RLock()
	refs := make(map[string]objectRef, len(st.idx.Objects))
	for n, r := range st.idx.Objects {
		refs[n] = r
	}
	st.mu.RUnlock()
	var errs []error
	for _, n := range listNames(refs, "") {
		if _, err := st.readObject(n, refs[n]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tx is a transaction over the store. Puts are written to new files at once
// (staged); the commit is the atomic replacement of the index.
type tx struct {
	st       *store
	objects  map[string]objectRef
	counters map[string]uint64
	staged   map[string][]byte // name → plaintext written in this tx
	newFiles []string
	dirty    bool
	done     bool
}

// Update implements tee.Storage.
func (st *store) Update(fn func(tee.Tx) error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.counterLag {
		if err := st.writeCounter(st.idx.Gen); err != nil {
			return err
		}
		st.counterLag = false
	}
	t := &tx{
		st:       st,
		objects:  make(map[string]objectRef, len(st.idx.Objects)),
		counters: make(map[string]uint64, len(st.idx.Counters)),
		staged:   map[string][]byte{},
	}
	for n, r := range st.idx.Objects {
		t.objects[n] = r
	}
	for n, c := range st.idx.Counters {
		t.counters[n] = c
	}
	err := fn(t)
	t.done = true
	if err == nil && t.dirty {
		err = st.commit(t)
	}
	if err != nil {
		for _, f := range t.newFiles {
			os.Remove(filepath.Join(st.dir, objectsDir, f))
		}
		return err
	}
	return nil
}

func (st *store) commit(t *tx) error {
	if len(t.newFiles) > 0 {
		if err := syncDir(filepath.Join(st.dir, objectsDir)); err != nil {
			return err
		}
	}
	if st.fault != nil {
		if err := st.fault(FaultStaged); err != nil {
			return err
		}
	}
	next := &index{Gen: st.idx.Gen + 1, Objects: t.objects, Counters: t.counters}
	plain, err := cborEnc.Marshal(next)
	if err != nil {
		return err
	}
	if len(plain) > MaxIndexSize-sealOverhead {
		return fmt.Errorf("index would be %d bytes, over the %d-byte limit", len(plain), MaxIndexSize)
	}
	blob, err := st.seal.seal(kindIndex, next.Gen, "index", plain)
	if err != nil {
		return err
	}
	if err := keyfile.WriteAtomic(filepath.Join(st.dir, indexFile), blob, 0o600); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := syncDir(st.dir); err != nil {
		return err
	}
	// From here the transaction is committed, whatever happens next.
	old := st.idx
	st.idx = next
	if st.fault != nil {
		if err := st.fault(FaultIndexWritten); err != nil {
			st.counterLag = true
			return nil
		}
	}
	if err := st.writeCounter(next.Gen); err != nil {
		st.counterLag = true
	}
	live := make(map[string]bool, len(next.Objects))
	for _, r := range next.Objects {
		live[r.File] = true
	}
	for _, r := range old.Objects {
		if !live[r.File] {
			os.Remove(filepath.Join(st.dir, objectsDir, r.File))
		}
	}
	return nil
}

func (t *tx) check() error {
	if t.done {
		return errors.New("transaction already finished")
	}
	return nil
}

func (t *tx) Get(name string) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if d, ok := t.staged[name]; ok {
		return bytes.Clone(d), nil
	}
	ref, ok := t.objects[name]
	if !ok {
		return nil, fmt.Errorf("%w: object %q", tee.ErrNotFound, name)
	}
	return t.st.readObject(name, ref)
}

func (t *tx) List(prefix string) []string { return listNames(t.objects, prefix) }

func (t *tx) Put(name string, data []byte) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	if len(data) > MaxObjectSize {
		return fmt.Errorf("object %q is %d bytes, over the %d-byte limit", name, len(data), MaxObjectSize)
	}
	if _, exists := t.objects[name]; !exists && len(t.objects) >= MaxObjects {
		return fmt.Errorf("store holds %d objects, the limit", MaxObjects)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	file := hex.EncodeToString(id[:])
	blob, err := t.st.seal.seal(kindObject, t.st.idx.Gen+1, objectPurpose(name, file), data)
	if err != nil {
		return err
	}
	path := filepath.Join(t.st.dir, objectsDir, file)
	t.newFiles = append(t.newFiles, file)
	if err := writeSynced(path, blob); err != nil {
		return fmt.Errorf("stage object %q: %w", name, err)
	}
	sum := sha256.Sum256(blob)
	if _, ok := t.staged[name]; ok {
		// Replaced within this transaction: drop the earlier staged file.
		prev := t.objects[name].File
		os.Remove(filepath.Join(t.st.dir, objectsDir, prev))
	}
	t.objects[name] = objectRef{File: file, Size: int64(len(blob)), Sum: sum[:]}
	t.dirty = true
	t.staged[name] = bytes.Clone(data)
	return nil
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

func (t *tx) Delete(name string) error {
	if err := t.check(); err != nil {
		return err
	}
	if _, ok := t.objects[name]; !ok {
		return fmt.Errorf("%w: object %q", tee.ErrNotFound, name)
	}
	if _, ok := t.staged[name]; ok {
		os.Remove(filepath.Join(t.st.dir, objectsDir, t.objects[name].File))
		delete(t.staged, name)
	}
	delete(t.objects, name)
	t.dirty = true
	return nil
}

func (t *tx) Counter(name string) uint64 { return t.counters[name] }

func (t *tx) SetCounter(name string, v uint64) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	if cur := t.counters[name]; v < cur {
		return fmt.Errorf("%w: counter %q is %d, refusing %d", tee.ErrCounterBackwards, name, cur, v)
	}
	if v != t.counters[name] {
		t.counters[name] = v
		t.dirty = true
	}
	return nil
}
