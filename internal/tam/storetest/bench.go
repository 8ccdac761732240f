package storetest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

// benchDevices is how many devices BenchmarkSteadyRound spreads its rounds
// over, so that each round reads a device other rounds did not just read.
const benchDevices = 1000

// benchParallelism × GOMAXPROCS sessions run at once, as 16 devices do
// on the 2 cores `teep bench fleet` is measured on.
const benchParallelism = 8

// BenchmarkSteadyRound measures the store's share of a steady round, as the
// engine runs it on a store with tam.DeviceStateStore and
// tam.SteadyRoundStore: read the device and its state, then consume the
// QueryRequest token and record last_seen. Each round takes another of
// benchDevices devices (one installed component each) and a fresh token.
// It runs the rounds from b.RunParallel, as concurrent sessions do.
func BenchmarkSteadyRound(b *testing.B, s tam.Store) {
	ds, okRead := s.(tam.DeviceStateStore)
	sr, okWrite := s.(tam.SteadyRoundStore)
	if !okRead || !okWrite {
		b.Fatalf("%T lacks tam.DeviceStateStore or tam.SteadyRoundStore", s)
	}
	id := suit.ComponentID{[]byte("bench"), []byte("app")}
	kids := make([][]byte, benchDevices)
	err := s.Update(ctx, func(tx tam.Tx) error {
		for i := range kids {
			d := device(1)
			d.KID = fmt.Appendf(nil, "bench-device-%027d", i)
			kids[i] = d.KID
			if err := tx.PutDevice(ctx, d); err != nil {
				return err
			}
			if err := tx.PutInstalled(ctx, d.KID, tam.Installed{ComponentID: id, Sequence: 1, Managed: true, UpdatedAt: at(0)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var epoch uint64
	if ns, ok := s.(tam.NoSyncStore); ok {
		epoch = ns.Epoch()
	}
	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Shaped as the engine's QueryRequest tokens are (a version and
		// flags byte, the expiry in Unix seconds, then random bytes), so
		// that consecutive tokens land where the engine's do in the index.
		tok := make([]byte, 42)
		tok[0] = 1
		for pb.Next() {
			n := int(next.Add(1) % benchDevices)
			st, err := ds.DeviceState(ctx, kids[n])
			if err != nil {
				b.Error(err)
				return
			}
			d := st.Device
			d.LastSeen = time.Now().Truncate(time.Microsecond)
			expires := d.LastSeen.Add(time.Minute)
			binary.BigEndian.PutUint64(tok[2:10], uint64(expires.Unix()))
			_, _ = rand.Read(tok[10:])
			done, err := sr.SteadyRound(ctx, tok, expires, epoch, d)
			if err != nil || !done {
				b.Errorf("steady round: done %v, %v", done, err)
				return
			}
		}
	})
}
