package processor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/teep-go/teep/suit"
)

// MemStore is an in-memory ComponentStore for tests and for callers that
// keep state elsewhere. It is safe for concurrent use.
type MemStore struct {
	mu        sync.Mutex
	comps     map[string][]byte
	manifests map[string]*ManifestRecord
	highest   map[string]uint64
	open      bool
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{comps: map[string][]byte{}, manifests: map[string]*ManifestRecord{}, highest: map[string]uint64{}}
}

// HighestSequence implements SequenceKeeper.
func (s *MemStore) HighestSequence(id suit.ComponentID) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.highest[id.Key()]
}

func notFound(what string, id suit.ComponentID) error {
	return fmt.Errorf("%w: %s %s", ErrNotFound, what, id)
}

// Open implements ComponentStore.
func (s *MemStore) Open(_ context.Context, id suit.ComponentID) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.comps[id.Key()]
	if !ok {
		return nil, 0, notFound("component", id)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

// Components implements ComponentStore.
func (s *MemStore) Components(context.Context) ([]ComponentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ComponentInfo, 0, len(s.comps))
	for k, b := range s.comps {
		id, err := suit.DecodeComponentID([]byte(k))
		if err != nil {
			return nil, err
		}
		out = append(out, ComponentInfo{ID: id, Size: int64(len(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.Key() < out[j].ID.Key() })
	return out, nil
}

// Manifest implements ComponentStore.
func (s *MemStore) Manifest(_ context.Context, id suit.ComponentID) (*ManifestRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.manifests[id.Key()]
	if !ok {
		return nil, notFound("manifest", id)
	}
	return r.Clone(), nil
}

// Manifests implements ComponentStore.
func (s *MemStore) Manifests(context.Context) ([]*ManifestRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ManifestRecord, 0, len(s.manifests))
	for _, r := range s.manifests {
		out = append(out, r.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.Key() < out[j].ID.Key() })
	return out, nil
}

// Begin implements ComponentStore.
func (s *MemStore) Begin(context.Context) (Txn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		return nil, ErrTxnActive
	}
	s.open = true
	return &memTxn{s: s, comps: map[string]*[]byte{}, manifests: map[string]*ManifestRecord{}}, nil
}

// memTxn stages changes; a nil pointer value means "removed".
type memTxn struct {
	s         *MemStore
	comps     map[string]*[]byte
	manifests map[string]*ManifestRecord
	done      bool
}

func (t *memTxn) Open(_ context.Context, id suit.ComponentID) (io.ReadCloser, int64, error) {
	if t.done {
		return nil, 0, fmt.Errorf("processor: transaction finished")
	}
	if p, ok := t.comps[id.Key()]; ok {
		if p == nil {
			return nil, 0, notFound("component", id)
		}
		return io.NopCloser(bytes.NewReader(*p)), int64(len(*p)), nil
	}
	return t.s.Open(context.Background(), id)
}

type memWriter struct {
	t   *memTxn
	key string
	buf bytes.Buffer
}

func (w *memWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *memWriter) Close() error {
	if w.t.done {
		return fmt.Errorf("processor: transaction finished")
	}
	b := w.buf.Bytes()
	w.t.comps[w.key] = &b
	return nil
}

func (t *memTxn) Create(_ context.Context, id suit.ComponentID) (io.WriteCloser, error) {
	if t.done {
		return nil, fmt.Errorf("processor: transaction finished")
	}
	return &memWriter{t: t, key: id.Key()}, nil
}

func (t *memTxn) Remove(ctx context.Context, id suit.ComponentID) error {
	r, _, err := t.Open(ctx, id)
	if err != nil {
		return err
	}
	r.Close()
	t.comps[id.Key()] = nil
	return nil
}

func (t *memTxn) PutManifest(_ context.Context, rec *ManifestRecord) error {
	if t.done {
		return fmt.Errorf("processor: transaction finished")
	}
	t.manifests[rec.ID.Key()] = rec.Clone()
	return nil
}

func (t *memTxn) DeleteManifest(_ context.Context, id suit.ComponentID) error {
	if t.done {
		return fmt.Errorf("processor: transaction finished")
	}
	t.manifests[id.Key()] = nil
	return nil
}

func (t *memTxn) Commit(context.Context) error {
	if t.done {
		return fmt.Errorf("processor: transaction finished")
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range t.comps {
		if p == nil {
			delete(s.comps, k)
		} else {
			s.comps[k] = *p
		}
	}
	for k, r := range t.manifests {
		if r == nil {
			delete(s.manifests, k)
		} else {
			s.manifests[k] = r
			if r.SequenceNumber > s.highest[k] {
				s.highest[k] = r.SequenceNumber
			}
		}
	}
	t.done, s.open = true, false
	return nil
}

func (t *memTxn) Abort() error {
	if t.done {
		return nil
	}
	t.s.mu.Lock()
	t.done, t.s.open = true, false
	t.s.mu.Unlock()
	return nil
}

// MemFetcher serves fixed byte slices by URI, for tests and offline use.
type MemFetcher struct {
	mu    sync.Mutex
	data  map[string][]byte
	Calls int // number of Fetch calls, for tests that check a fetch was skipped
}

// NewMemFetcher returns a fetcher serving the given URI → content map.
func NewMemFetcher(m map[string][]byte) *MemFetcher {
	f := &MemFetcher{data: map[string][]byte{}}
	for k, v := range m {
		f.data[k] = v
	}
	return f
}

// Set adds or replaces a URI.
func (f *MemFetcher) Set(uri string, data []byte) {
	f.mu.Lock()
	f.data[uri] = data
	f.mu.Unlock()
}

// Fetch implements Fetcher.
func (f *MemFetcher) Fetch(_ context.Context, uri string) (io.ReadCloser, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls++
	b, ok := f.data[uri]
	if !ok {
		return nil, 0, fmt.Errorf("%w: no content for %s", ErrNotFound, uri)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}
