package fleetsim

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// scripted answers each POST with the next of its answers.
type scripted struct {
	answers [][]byte
	fail    int // the POST (1-based) that fails; 0: none
	n       int
}

func (s *scripted) post(_ context.Context, body []byte) ([]byte, error) {
	s.n++
	if s.n == s.fail {
		return nil, errors.New("connection reset")
	}
	return s.answers[(s.n-1)%len(s.answers)], nil
}

func (s *scripted) close() {}

func TestRecorderKeepsTheLastCompleteRound(t *testing.T) {
	ctx := context.Background()
	qr, upd := []byte("query-request"), []byte("update")
	ex := &scripted{answers: [][]byte{qr, upd, nil}, fail: 5}
	r := &recorder{exchanger: ex}
	if r.round() != nil {
		t.Fatal("a round before any POST")
	}
	for _, body := range [][]byte{nil, []byte("query-response"), []byte("success")} {
		if _, err := r.post(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	want := []exchange{{nil, qr}, {[]byte("query-response"), upd}, {[]byte("success"), nil}}
	if got := r.round(); !reflect.DeepEqual(got, want) {
		t.Fatalf("round %q, want %q", got, want)
	}
	// A round that fails part way is not kept; the last complete one stays.
	_, _ = r.post(ctx, nil)
	if _, err := r.post(ctx, []byte("query-response 2")); err == nil {
		t.Fatal("the scripted failure did not happen")
	}
	if got := r.round(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a failed round: %q, want %q", got, want)
	}
	var none *recorder
	if none.round() != nil {
		t.Fatal("a nil recorder has a round")
	}
}

func TestTransportFloor(t *testing.T) {
	ctx := context.Background()
	if _, err := transportFloor(ctx, nil, 10, 2); err == nil {
		t.Fatal("a transport floor without a round")
	}
	round := []exchange{{nil, make([]byte, 300)}, {make([]byte, 200), nil}}
	ns, err := transportFloor(ctx, round, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if cpuTime() > 0 && ns <= 0 {
		t.Fatalf("transport floor %v ns per round", ns)
	}
}
