package bench

import (
	"errors"
	"testing"
	"time"
)

// TestPerOp: the batch grows until it takes the time asked for; a failing
// call ends the measurement with its error.
func TestPerOp(t *testing.T) {
	calls := 0
	ns, err := perOp(func() error { calls++; time.Sleep(time.Millisecond); return nil }, 20*time.Millisecond)
	if err != nil || ns < float64(time.Millisecond) || calls < 2 {
		t.Fatalf("perOp = %v, %v after %d calls", ns, err, calls)
	}
	boom := errors.New("boom")
	calls = 0
	if _, err := perOp(func() error {
		calls++
		if calls == 3 {
			return boom
		}
		return nil
	}, time.Hour); !errors.Is(err, boom) {
		t.Fatalf("perOp error: %v", err)
	}
}

func TestSized(t *testing.T) {
	if o := (Options{Quick: true, Devices: 99}).sized(); o.Devices != quickDevices || o.PayloadMiB != quickPayloadMiB {
		t.Fatalf("quick: %+v", o)
	}
	if o := (Options{Sessions: 3}).sized(); o.Devices != DefaultDevices || o.Sessions != 3 || o.PayloadMiB != DefaultPayloadMiB {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestGen(t *testing.T) {
	g := newGen(100<<10 + 3)
	buf := make([]byte, 7000)
	total := 0
	for {
		n, err := g.Read(buf)
		total += n
		if err != nil {
			break
		}
	}
	if total != 100<<10+3 {
		t.Fatalf("read %d bytes", total)
	}
}
