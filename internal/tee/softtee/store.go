package softtee

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
	// MaxObjectSize is the default bound on one sealed object (a component
	// image, a key...); Options.MaxObjectSize changes it.
	MaxObjectSize = 16 << 30
	// MaxGetSize bounds an object read whole into memory by Get; larger
	// objects are read with Open.
	MaxGetSize = 64 << 20
	// MaxIndexSize bounds the sealed index.
	MaxIndexSize = 16 << 20
	// MaxObjects bounds the number of objects in one TEE.
	MaxObjects = 100000
	// MaxNameLen bounds an object or counter name.
	MaxNameLen = 2048
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

// index is the sealed root of the store: which file holds each object, its
// size and hash, and the named monotonic counters.
type index struct {
	Gen      uint64               `cbor:"1,keyasint"`
	Objects  map[string]objectRef `cbor:"2,keyasint"`
	Counters map[string]uint64    `cbor:"3,keyasint"`
}

type objectRef struct {
	File string `cbor:"1,keyasint"` // file name under objects/
	Size int64  `cbor:"2,keyasint"` // plaintext size
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

// store is a transactional sealed object store in one directory. Readers
// never block on a writer: they read the committed index; a writer stages
// new files and publishes them with one atomic index replacement.
type store struct {
	dir   string
	seal  *sealer
	fault func(point string, staged []string) error

	writer    chan struct{} // one transaction at a time (a lock that honours ctx)
	maxObject int64

	mu  sync.RWMutex // guards idx and counterLag
	idx *index
	// counterLag is set when a commit replaced the index but could not
	// advance the counter; the next commit retries before doing anything.
	counterLag bool
}

func objectPurpose(name, file string) string { return "object " + name + " in " + file }

func openStore(dir, teeName string, rootKey []byte, fault func(string, []string) error, maxObject int64) (*store, error) {
	s, err := newSealer(teeName, rootKey)
	if err != nil {
		return nil, err
	}
	if maxObject <= 0 {
		maxObject = MaxObjectSize
	}
	st := &store{dir: dir, seal: s, fault: fault, writer: make(chan struct{}, 1), maxObject: maxObject}
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
		if err := st.writeCounter(idx.Gen, true); err != nil {
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

// writeCounter advances the counter file. syncDir makes its new directory
// entry durable now; a commit skips that, because the next commit's sync of
// the same directory makes it durable, so at most the latest advance can be
// lost in a crash, which load accepts (index exactly one generation ahead).
func (st *store) writeCounter(gen uint64, sync bool) error {
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
	if !sync {
		return nil
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

func (st *store) ref(name string) (objectRef, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	r, ok := st.idx.Objects[name]
	return r, ok
}

// openObject opens one object for streaming, authenticated chunk by chunk.
func (st *store) openObject(name string, ref objectRef) (*objectReader, error) {
	path := filepath.Join(st.dir, objectsDir, ref.File)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: object %q: file %s is missing", tee.ErrTampered, name, path)
	}
	if err != nil {
		return nil, fmt.Errorf("object %q: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if want := sealedSize(ref.Size); fi.Size() != want {
		f.Close()
		return nil, fmt.Errorf("%w: object %q: %s is %d bytes, the index says %d", tee.ErrTampered, name, path, fi.Size(), want)
	}
	r := &objectReader{
		f: f, sum: sha256.New(),
		s: st.seal, purpose: objectPurpose(name, ref.File), want: ref.Sum, left: ref.Size, path: path,
	}
	r.header = make([]byte, streamHeaderSize)
	if _, err := io.ReadFull(r.f, r.header); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: object %q: %v", tee.ErrTampered, name, err)
	}
	r.sum.Write(r.header)
	if err := checkStreamHeader(r.header, r.purpose); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// objectReader decrypts an object chunk by chunk; at the end it also checks
// the sealed file's hash against the index.
type objectReader struct {
	f       *os.File
	sum     hash.Hash
	chunk   []byte // one sealed chunk, decrypted in place; reused
	s       *sealer
	purpose string
	path    string
	header  []byte
	want    []byte
	left    int64 // plaintext bytes not yet decrypted
	index   uint64
	buf     []byte // decrypted, not yet returned
	done    bool
	err     error
}

func (r *objectReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.err = r.next()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *objectReader) next() error {
	n := int64(ChunkSize)
	final := r.left < ChunkSize
	if final {
		n = r.left
	}
	if r.chunk == nil {
		r.chunk = make([]byte, min(int64(ChunkSize), r.left)+tagSize)
	}
	sealed := r.chunk[:n+tagSize]
	if _, err := io.ReadFull(r.f, sealed); err != nil {
		return fmt.Errorf("%w: %s: %v", tee.ErrTampered, r.path, err)
	}
	r.sum.Write(sealed)
	plain, err := r.s.openChunk(r.header, r.purpose, r.index, final, sealed)
	if err != nil {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	r.index++
	r.left -= n
	r.buf = plain
	if final {
		if !bytes.Equal(r.sum.Sum(nil), r.want) {
			return fmt.Errorf("%w: %s does not match the index (replaced or rolled back)", tee.ErrTampered, r.path)
		}
		r.done = true
	}
	return nil
}

func (r *objectReader) Close() error { return r.f.Close() }

// open opens a committed object, coping with a concurrent commit that
// replaced it (its old file is then gone, which is not tampering).
func (st *store) open(name string) (io.ReadCloser, int64, error) {
	for attempt := 0; ; attempt++ {
		ref, ok := st.ref(name)
		if !ok {
			return nil, 0, fmt.Errorf("%w: object %q", tee.ErrNotFound, name)
		}
		r, err := st.openObject(name, ref)
		if err != nil && attempt < 3 {
			if now, ok := st.ref(name); !ok || now.File != ref.File {
				continue // replaced or deleted meanwhile
			}
		}
		if err != nil {
			return nil, 0, err
		}
		return r, ref.Size, nil
	}
}

func readAll(r io.ReadCloser, size int64, name string) ([]byte, error) {
	defer r.Close()
	if size > MaxGetSize {
		return nil, fmt.Errorf("object %q is %d bytes, more than Get reads (%d); use Open", name, size, MaxGetSize)
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, err
	}
	// Read to the end, so the final chunk (empty for a size that is a
	// multiple of ChunkSize, or zero) is authenticated too.
	var one [1]byte
	if n, err := r.Read(one[:]); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("%w: object %q is longer than its size", tee.ErrTampered, name)
		}
		return nil, err
	}
	return out, nil
}

// Get implements tee.Storage.
func (st *store) Get(name string) ([]byte, error) {
	r, size, err := st.open(name)
	if err != nil {
		return nil, err
	}
	return readAll(r, size, name)
}

// Open implements tee.Storage.
func (st *store) Open(name string) (io.ReadCloser, int64, error) { return st.open(name) }

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
		r, err := st.openObject(n, refs[n])
		if err == nil {
			_, err = io.Copy(io.Discard, r)
			r.Close()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Begin implements tee.Storage: it waits for any other transaction to end.
func (st *store) Begin(ctx context.Context) (tee.Txn, error) {
	select {
	case st.writer <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	st.mu.Lock()
	lag := st.counterLag
	gen := st.idx.Gen
	st.mu.Unlock()
	if lag {
		if err := st.writeCounter(gen, true); err != nil {
			<-st.writer
			return nil, err
		}
		st.mu.Lock()
		st.counterLag = false
		st.mu.Unlock()
	}
	st.mu.RLock()
	t := &tx{
		st:       st,
		base:     st.idx,
		objects:  make(map[string]objectRef, len(st.idx.Objects)),
		counters: make(map[string]uint64, len(st.idx.Counters)),
		staged:   map[string]bool{},
	}
	for n, r := range st.idx.Objects {
		t.objects[n] = r
	}
	for n, c := range st.idx.Counters {
		t.counters[n] = c
	}
	st.mu.RUnlock()
	return t, nil
}

// tx is a transaction over the store. Writes go to new files at once
// (staged); the commit is the atomic replacement of the index.
type tx struct {
	st       *store
	base     *index
	objects  map[string]objectRef
	counters map[string]uint64
	staged   map[string]bool // names written in this tx (their files are new)
	newFiles []string
	writers  []*objectWriter // still open
	dirty    bool
	done     bool
}

func (t *tx) check() error {
	if t.done {
		return errors.New("softtee: transaction already finished")
	}
	return nil
}

// discardWriters drops every writer never closed. Each discard removes its
// writer from t.writers, so the loop takes the first until none is left
// (ranging over the slice would skip the writer shifted into each slot).
func (t *tx) discardWriters() {
	for len(t.writers) > 0 {
		t.writers[0].discard()
	}
}

// finish releases the writer lock and discards what was staged unless kept.
func (t *tx) finish(keep bool) {
	t.discardWriters()
	if !keep {
		for _, f := range t.newFiles {
			os.Remove(filepath.Join(t.st.dir, objectsDir, f))
		}
	}
	t.done = true
	<-t.st.writer
}

// Abort implements tee.Txn. Abort after Commit, or twice, does nothing.
func (t *tx) Abort() error {
	if t.done {
		return nil
	}
	t.finish(false)
	return nil
}

// Commit implements tee.Txn.
func (t *tx) Commit() error {
	if err := t.check(); err != nil {
		return err
	}
	t.discardWriters() // never closed: not part of the transaction
	if !t.dirty {
		t.finish(true)
		return nil
	}
	if err := t.st.commit(t); err != nil {
		t.finish(false)
		return err
	}
	t.finish(true)
	return nil
}

func (st *store) commit(t *tx) error {
	if len(t.newFiles) > 0 {
		if err := syncDir(filepath.Join(st.dir, objectsDir)); err != nil {
			return err
		}
	}
	var staged []string
	if st.fault != nil {
		for n := range t.staged {
			staged = append(staged, n)
		}
		sort.Strings(staged)
		if err := st.fault(FaultStaged, staged); err != nil {
			return err
		}
	}
	next := &index{Gen: t.base.Gen + 1, Objects: t.objects, Counters: t.counters}
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
	st.mu.Lock()
	old := st.idx
	st.idx = next
	st.mu.Unlock()
	lag := false
	if st.fault != nil && st.fault(FaultIndexWritten, staged) != nil {
		lag = true
	} else if err := st.writeCounter(next.Gen, false); err != nil {
		lag = true
	}
	if lag {
		st.mu.Lock()
		st.counterLag = true
		st.mu.Unlock()
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

func (t *tx) Get(name string) ([]byte, error) {
	r, size, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	return readAll(r, size, name)
}

func (t *tx) Open(name string) (io.ReadCloser, int64, error) {
	if err := t.check(); err != nil {
		return nil, 0, err
	}
	ref, ok := t.objects[name]
	if !ok {
		return nil, 0, fmt.Errorf("%w: object %q", tee.ErrNotFound, name)
	}
	r, err := t.st.openObject(name, ref)
	if err != nil {
		return nil, 0, err
	}
	return r, ref.Size, nil
}

func (t *tx) List(prefix string) []string { return listNames(t.objects, prefix) }

func (t *tx) Put(name string, data []byte) error {
	w, err := t.Create(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.(*objectWriter).discard()
		return err
	}
	return w.Close()
}

// Create implements tee.Tx: the object is staged when the writer's Close
// returns nil; a writer never closed is discarded at Commit or Abort.
func (t *tx) Create(name string) (io.WriteCloser, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if _, exists := t.objects[name]; !exists && len(t.objects) >= MaxObjects {
		return nil, fmt.Errorf("store holds %d objects, the limit", MaxObjects)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	file := hex.EncodeToString(id[:])
	header, err := t.st.seal.streamHeader(t.base.Gen + 1)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(t.st.dir, objectsDir, file)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("stage object %q: %w", name, err)
	}
	t.newFiles = append(t.newFiles, file)
	w := &objectWriter{t: t, name: name, file: file, path: path, f: f, header: header, sum: sha256.New(),
		purpose: objectPurpose(name, file), buf: make([]byte, 0, ChunkSize)}
	w.bw = bufio.NewWriterSize(f, ChunkSize+tagSize)
	if err := w.emit(header); err != nil {
		w.discard()
		return nil, err
	}
	t.writers = append(t.writers, w)
	return w, nil
}

// objectWriter seals an object chunk by chunk as it is written.
type objectWriter struct {
	t       *tx
	name    string
	file    string
	path    string
	f       *os.File
	bw      *bufio.Writer
	sum     hash.Hash
	header  []byte
	purpose string
	buf     []byte
	index   uint64
	size    int64
	out     []byte
	err     error
	closed  bool
}

func (w *objectWriter) emit(b []byte) error {
	w.sum.Write(b)
	_, err := w.bw.Write(b)
	return err
}

func (w *objectWriter) flush(final bool) error {
	w.out = w.t.st.seal.sealChunk(w.out[:0], w.header, w.purpose, w.index, final, w.buf)
	w.index++
	w.buf = w.buf[:0]
	return w.emit(w.out)
}

func (w *objectWriter) Write(p []byte) (int, error) {
	if w.closed || w.t.done {
		return 0, errors.New("softtee: write to a finished object")
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.size+int64(len(p)) > w.t.st.maxObject {
		w.err = fmt.Errorf("object %q exceeds the %d-byte limit", w.name, w.t.st.maxObject)
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		// A full buffer is flushed only when more data follows, so the
		// final chunk always holds 0..ChunkSize-1 bytes.
		if len(w.buf) == ChunkSize {
			if w.err = w.flush(false); w.err != nil {
				return n, w.err
			}
		}
		c := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+c]
		p = p[c:]
		n += c
		w.size += int64(c)
	}
	return n, nil
}

// Close seals the final chunk, syncs the file and stages the object.
func (w *objectWriter) Close() error {
	if w.closed {
		return errors.New("softtee: object already closed")
	}
	if w.t.done {
		return errors.New("softtee: transaction already finished")
	}
	w.closed = true
	w.removeFromTx()
	err := w.err
	if err == nil && len(w.buf) == ChunkSize {
		err = w.flush(false)
	}
	if err == nil {
		err = w.flush(true)
	}
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(w.path)
		return fmt.Errorf("stage object %q: %w", w.name, err)
	}
	t := w.t
	if t.staged[w.name] {
		// Replaced within this transaction: the earlier staged file goes.
		os.Remove(filepath.Join(t.st.dir, objectsDir, t.objects[w.name].File))
	}
	t.objects[w.name] = objectRef{File: w.file, Size: w.size, Sum: w.sum.Sum(nil)}
	t.staged[w.name] = true
	t.dirty = true
	return nil
}

func (w *objectWriter) removeFromTx() {
	for i, o := range w.t.writers {
		if o == w {
			w.t.writers = append(w.t.writers[:i], w.t.writers[i+1:]...)
			return
		}
	}
}

// discard drops an unfinished object.
func (w *objectWriter) discard() {
	if w.closed {
		return
	}
	w.closed = true
	w.removeFromTx()
	w.f.Close()
	os.Remove(w.path)
}

func (t *tx) Delete(name string) error {
	if err := t.check(); err != nil {
		return err
	}
	ref, ok := t.objects[name]
	if !ok {
		return fmt.Errorf("%w: object %q", tee.ErrNotFound, name)
	}
	if t.staged[name] {
		os.Remove(filepath.Join(t.st.dir, objectsDir, ref.File))
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
