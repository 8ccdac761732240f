package suitstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

const (
	indexName  = "index.json"
	objectsDir = "objects"
	lockName   = "lock"
	// MaxIndexSize bounds index.json when it is read back.
	MaxIndexSize = 64 << 20
	// MaxEnvelopeSize bounds a stored envelope when it is read back.
	MaxEnvelopeSize = suit.DefaultMaxEnvelopeSize
)

// Store is a directory-backed component store. Close releases the lock.
type Store struct {
	dir    string
	mu     sync.Mutex
	idx    *index
	txn    *txn
	unlock func() error
}

type index struct {
	Version    int             `json:"version"`
	Components []componentJSON `json:"components"`
	Manifests  []manifestJSON  `json:"manifests"`
	// Highest keeps the highest sequence number ever committed per
	// manifest-component-id, also after uninstall (rollback protection).
	Highest []highestJSON `json:"highest_sequence,omitempty"`
}

type highestJSON struct {
	ID       []string `json:"id"`
	Sequence uint64   `json:"sequence_number"`
}

type componentJSON struct {
	ID     []string `json:"id"` // segments in hex
	Object string   `json:"object"`
	Size   int64    `json:"size"`
}

type manifestJSON struct {
	ID             []string   `json:"id"`
	SequenceNumber uint64     `json:"sequence_number"`
	DigestAlg      int64      `json:"digest_alg"`
	Digest         string     `json:"digest"`
	Envelope       string     `json:"envelope_object"`
	Root           bool       `json:"root"`
	Dependents     [][]string `json:"dependents,omitempty"`
	Dependencies   [][]string `json:"dependencies,omitempty"`
	Components     [][]string `json:"components,omitempty"`
}

// Open opens (creating if needed) the store in dir and recovers from any
// interrupted commit.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, objectsDir), 0o700); err != nil {
		return nil, fmt.Errorf("suitstore: %w", err)
	}
	unlock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("suitstore: %s is in use: %w", dir, err)
	}
	s := &Store{dir: dir, unlock: unlock}
	if err := s.recover(); err != nil {
		unlock()
		return nil, err
	}
	return s, nil
}

// Close releases the directory lock. An open transaction is aborted.
func (s *Store) Close() error {
	s.mu.Lock()
	t := s.txn
	s.mu.Unlock()
	if t != nil {
		t.Abort()
	}
	if s.unlock != nil {
		err := s.unlock()
		s.unlock = nil
		return err
	}
	return nil
}

func (s *Store) recover() error {
	os.Remove(filepath.Join(s.dir, indexName+".tmp"))
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	s.idx = idx
	return s.collect(idx)
}

// collect deletes objects the index does not reference.
func (s *Store) collect(idx *index) error {
	keep := map[string]bool{}
	for _, c := range idx.Components {
		keep[c.Object] = true
	}
	for _, m := range idx.Manifests {
		keep[m.Envelope] = true
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, objectsDir))
	if err != nil {
		return fmt.Errorf("suitstore: %w", err)
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(s.dir, objectsDir, e.Name())); err != nil {
				return fmt.Errorf("suitstore: %w", err)
			}
		}
	}
	return nil
}

func (s *Store) readIndex() (*index, error) {
	f, err := os.Open(filepath.Join(s.dir, indexName))
	if errors.Is(err, os.ErrNotExist) {
		return &index{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("suitstore: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("suitstore: read index: %w", err)
	}
	if len(data) > MaxIndexSize {
		return nil, fmt.Errorf("suitstore: index exceeds %d bytes", MaxIndexSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	idx := &index{}
	if err := dec.Decode(idx); err != nil {
		return nil, fmt.Errorf("suitstore: corrupt index: %w", err)
	}
	if idx.Version != 1 {
		return nil, fmt.Errorf("suitstore: index version %d not supported", idx.Version)
	}
	for _, c := range idx.Components {
		if err := checkObjectName(c.Object); err != nil {
			return nil, err
		}
	}
	for _, m := range idx.Manifests {
		if err := checkObjectName(m.Envelope); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

func checkObjectName(n string) error {
	if len(n) != 32 {
		return fmt.Errorf("suitstore: corrupt index: bad object name %q", n)
	}
	if _, err := hex.DecodeString(n); err != nil {
		return fmt.Errorf("suitstore: corrupt index: bad object name %q", n)
	}
	return nil
}

func encodeID(id suit.ComponentID) []string { return id.Hex() }

func decodeID(h []string) (suit.ComponentID, error) {
	id := make(suit.ComponentID, len(h))
	for i, s := range h {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("suitstore: corrupt index: component id: %w", err)
		}
		id[i] = b
	}
	return id, nil
}

func encodeIDs(ids []suit.ComponentID) [][]string {
	var out [][]string
	for _, id := range ids {
		out = append(out, encodeID(id))
	}
	return out
}

func decodeIDs(h [][]string) ([]suit.ComponentID, error) {
	var out []suit.ComponentID
	for _, x := range h {
		id, err := decodeID(x)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func keyOf(h []string) string { return strings.Join(h, "/") }

func (s *Store) objectPath(name string) string { return filepath.Join(s.dir, objectsDir, name) }

func newObjectName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func notFound(what string, id suit.ComponentID) error {
	return fmt.Errorf("%w: %s %s", processor.ErrNotFound, what, id)
}

func (s *Store) openObject(name string) (io.ReadCloser, int64, error) {
	f, err := os.Open(s.objectPath(name))
	if err != nil {
		return nil, 0, fmt.Errorf("suitstore: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("suitstore: %w", err)
	}
	return f, st.Size(), nil
}

// Open implements processor.ComponentStore.
func (s *Store) Open(_ context.Context, id suit.ComponentID) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyOf(encodeID(id))
	for _, c := range s.idx.Components {
		if keyOf(c.ID) == k {
			return s.openObject(c.Object)
		}
	}
	return nil, 0, notFound("component", id)
}

// Components implements processor.ComponentStore.
func (s *Store) Components(context.Context) ([]processor.ComponentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]processor.ComponentInfo, 0, len(s.idx.Components))
	for _, c := range s.idx.Components {
		id, err := decodeID(c.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, processor.ComponentInfo{ID: id, Size: c.Size})
	}
	return out, nil
}

func (s *Store) loadManifest(m manifestJSON) (*processor.ManifestRecord, error) {
	rec := &processor.ManifestRecord{SequenceNumber: m.SequenceNumber, Root: m.Root}
	var err error
	if rec.ID, err = decodeID(m.ID); err != nil {
		return nil, err
	}
	d, err := hex.DecodeString(m.Digest)
	if err != nil {
		return nil, fmt.Errorf("suitstore: corrupt index: digest: %w", err)
	}
	rec.Digest = suit.Digest{Alg: m.DigestAlg, Bytes: d}
	if rec.Dependents, err = decodeIDs(m.Dependents); err != nil {
		return nil, err
	}
	if rec.Dependencies, err = decodeIDs(m.Dependencies); err != nil {
		return nil, err
	}
	if rec.Components, err = decodeIDs(m.Components); err != nil {
		return nil, err
	}
	rc, _, err := s.openObject(m.Envelope)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if rec.Envelope, err = io.ReadAll(io.LimitReader(rc, MaxEnvelopeSize+1)); err != nil {
		return nil, fmt.Errorf("suitstore: %w", err)
	}
	if len(rec.Envelope) > MaxEnvelopeSize {
		return nil, fmt.Errorf("suitstore: stored envelope exceeds %d bytes", MaxEnvelopeSize)
	}
	return rec, nil
}

// Manifest implements processor.ComponentStore.
func (s *Store) Manifest(_ context.Context, id suit.ComponentID) (*processor.ManifestRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyOf(encodeID(id))
	for _, m := range s.idx.Manifests {
		if keyOf(m.ID) == k {
			return s.loadManifest(m)
		}
	}
	return nil, notFound("manifest", id)
}

// Manifests implements processor.ComponentStore.
func (s *Store) Manifests(context.Context) ([]*processor.ManifestRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*processor.ManifestRecord, 0, len(s.idx.Manifests))
	for _, m := range s.idx.Manifests {
		rec, err := s.loadManifest(m)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// HighestSequence implements processor.SequenceKeeper.
func (s *Store) HighestSequence(id suit.ComponentID) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keyOf(encodeID(id))
	for _, h := range s.idx.Highest {
		if keyOf(h.ID) == k {
			return h.Sequence
		}
	}
	return 0
}

// Begin implements processor.ComponentStore. One transaction at a time.
func (s *Store) Begin(context.Context) (processor.Txn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unlock == nil {
		return nil, errors.New("suitstore: store is closed")
	}
	if s.txn != nil {
		return nil, processor.ErrTxnActive
	}
	t := &txn{s: s, comps: map[string]*componentJSON{}, manifests: map[string]*manifestJSON{}}
	s.txn = t
	return t, nil
}

// txn stages changes; a nil map value means "removed".
type txn struct {
	s         *Store
	comps     map[string]*componentJSON
	manifests map[string]*manifestJSON
	created   []string // objects written by this txn, deleted on abort
	writers   []*writer
	done      bool
}

func (t *txn) check() error {
	if t.done {
		return errors.New("suitstore: transaction finished")
	}
	return nil
}

func (t *txn) Open(ctx context.Context, id suit.ComponentID) (io.ReadCloser, int64, error) {
	if err := t.check(); err != nil {
		return nil, 0, err
	}
	k := keyOf(encodeID(id))
	if c, ok := t.comps[k]; ok {
		if c == nil {
			return nil, 0, notFound("component", id)
		}
		return t.s.openObject(c.Object)
	}
	return t.s.Open(ctx, id)
}

type writer struct {
	t      *txn
	id     []string
	name   string
	f      *os.File
	n      int64
	closed bool
	err    error
}

func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("suitstore: write after close")
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// Close fsyncs the object and stages it.
func (w *writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if err := w.f.Sync(); err != nil && w.err == nil {
		w.err = err
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = err
	}
	if w.err != nil {
		return fmt.Errorf("suitstore: %w", w.err)
	}
	if w.t.done {
		return errors.New("suitstore: transaction finished")
	}
	w.t.comps[keyOf(w.id)] = &componentJSON{ID: w.id, Object: w.name, Size: w.n}
	return nil
}

func (t *txn) newObject() (*os.File, string, error) {
	name, err := newObjectName()
	if err != nil {
		return nil, "", err
	}
	f, err := os.OpenFile(t.s.objectPath(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("suitstore: %w", err)
	}
	t.created = append(t.created, name)
	return f, name, nil
}

func (t *txn) Create(_ context.Context, id suit.ComponentID) (io.WriteCloser, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	f, name, err := t.newObject()
	if err != nil {
		return nil, err
	}
	w := &writer{t: t, id: encodeID(id), name: name, f: f}
	t.writers = append(t.writers, w)
	return w, nil
}

func (t *txn) Remove(ctx context.Context, id suit.ComponentID) error {
	rc, _, err := t.Open(ctx, id)
	if err != nil {
		return err
	}
	rc.Close()
	t.comps[keyOf(encodeID(id))] = nil
	return nil
}

func (t *txn) PutManifest(_ context.Context, rec *processor.ManifestRecord) error {
	if err := t.check(); err != nil {
		return err
	}
	f, name, err := t.newObject()
	if err != nil {
		return err
	}
	_, err = f.Write(rec.Envelope)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("suitstore: %w", err)
	}
	m := &manifestJSON{
		ID: encodeID(rec.ID), SequenceNumber: rec.SequenceNumber, DigestAlg: rec.Digest.Alg,
		Digest: hex.EncodeToString(rec.Digest.Bytes), Envelope: name, Root: rec.Root,
		Dependents: encodeIDs(rec.Dependents), Dependencies: encodeIDs(rec.Dependencies), Components: encodeIDs(rec.Components),
	}
	t.manifests[keyOf(m.ID)] = m
	return nil
}

func (t *txn) DeleteManifest(_ context.Context, id suit.ComponentID) error {
	if err := t.check(); err != nil {
		return err
	}
	t.manifests[keyOf(encodeID(id))] = nil
	return nil
}

// Commit writes the new index atomically, then collects unreferenced objects.
func (t *txn) Commit(context.Context) error {
	if err := t.check(); err != nil {
		return err
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	next := &index{Version: 1}
	seen := map[string]bool{}
	for _, c := range s.idx.Components {
		k := keyOf(c.ID)
		if n, ok := t.comps[k]; ok {
			seen[k] = true
			if n != nil {
				next.Components = append(next.Components, *n)
			}
			continue
		}
		next.Components = append(next.Components, c)
	}
	for k, n := range t.comps {
		if !seen[k] && n != nil {
			next.Components = append(next.Components, *n)
		}
	}
	seen = map[string]bool{}
	for _, m := range s.idx.Manifests {
		k := keyOf(m.ID)
		if n, ok := t.manifests[k]; ok {
			seen[k] = true
			if n != nil {
				next.Manifests = append(next.Manifests, *n)
			}
			continue
		}
		next.Manifests = append(next.Manifests, m)
	}
	for k, n := range t.manifests {
		if !seen[k] && n != nil {
			next.Manifests = append(next.Manifests, *n)
		}
	}
	highest := map[string]highestJSON{}
	for _, h := range s.idx.Highest {
		highest[keyOf(h.ID)] = h
	}
	for k, n := range t.manifests {
		if n != nil && n.SequenceNumber >= highest[k].Sequence {
			highest[k] = highestJSON{ID: n.ID, Sequence: n.SequenceNumber}
		}
	}
	for _, h := range highest {
		next.Highest = append(next.Highest, h)
	}
	sort.Slice(next.Highest, func(i, j int) bool { return keyOf(next.Highest[i].ID) < keyOf(next.Highest[j].ID) })
	sort.Slice(next.Components, func(i, j int) bool { return keyOf(next.Components[i].ID) < keyOf(next.Components[j].ID) })
	sort.Slice(next.Manifests, func(i, j int) bool { return keyOf(next.Manifests[i].ID) < keyOf(next.Manifests[j].ID) })
	if err := s.writeIndex(next); err != nil {
		t.abortLocked()
		return err
	}
	s.idx = next
	t.finishLocked()
	// Best effort: the next Open collects whatever is left.
	_ = s.collect(next)
	return nil
}

func (s *Store) writeIndex(idx *index) error {
	data, err := json.MarshalIndent(idx, "", " ")
	if err != nil {
		return fmt.Errorf("suitstore: %w", err)
	}
	tmp := filepath.Join(s.dir, indexName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("suitstore: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, indexName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("suitstore: commit: %w", err)
	}
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (t *txn) finishLocked() {
	t.done = true
	for _, w := range t.writers {
		if !w.closed {
			w.closed = true
			w.f.Close()
		}
	}
	if t.s.txn == t {
		t.s.txn = nil
	}
}

func (t *txn) abortLocked() {
	t.finishLocked()
	for _, name := range t.created {
		os.Remove(t.s.objectPath(name))
	}
}

// Abort discards everything staged.
func (t *txn) Abort() error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.done {
		return nil
	}
	t.abortLocked()
	return nil
}
