package processor_test

import (
	"context"
	"testing"

	"github.com/teep-go/teep/internal/suitstore"
	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// TestDirectoryStore runs the TEEP examples against the directory store,
// reopening it between runs as a device restart would.
func TestDirectoryStore(t *testing.T) {
	dir := t.TempDir()
	ta := readVector(t, "teep-protocol/8d82573a-926d-4754-9353-32dc29997f74.ta")
	suitURI := readVector(t, "teep-protocol/suit_uri.hex")
	open := func() (*processor.Processor, *suitstore.Store) {
		s, err := suitstore.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, func(c *processor.Config) {
			c.Store = s
			c.DeviceKey = loadKey(t, "device-p256-private.pem")
			c.Fetcher = processor.NewMemFetcher(map[string][]byte{taURI: ta, taSuitURI: suitURI})
		})
		return e.p, s
	}
	ctx := context.Background()
	p, s := open()
	if _, err := p.Install(ctx, readVector(t, "teep-protocol/suit_personalization.hex"), processor.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	p, s = open()
	recs, err := p.Installed(ctx)
	if err != nil || len(recs) != 2 {
		t.Fatalf("after restart: %d records, %v", len(recs), err)
	}
	inv, err := p.Inventory(ctx)
	if err != nil || len(inv) != 2 {
		t.Fatalf("inventory: %v", err)
	}
	// The TA manifest is installed at sequence 3: an older one is refused
	// after the restart too.
	if rec, _ := s.Manifest(ctx, taManifest); rec.SequenceNumber != 3 || s.HighestSequence(taManifest) != 3 {
		t.Fatalf("TA record %+v", rec)
	}
	if _, err := p.Uninstall(ctx, configSuit, processor.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	p, s = open()
	defer s.Close()
	if comps, _ := s.Components(ctx); len(comps) != 0 {
		t.Fatalf("components left: %+v", comps)
	}
	if s.HighestSequence(taManifest) != 3 || s.HighestSequence(suit.NewComponentID("TEEP-Device", "SecureFS", "config.suit")) != 3 {
		t.Fatal("highest sequence numbers lost")
	}
	if _, err := p.Install(ctx, suitURI, processor.RunOptions{}); err != nil {
		t.Fatalf("re-install at the same sequence number: %v", err)
	}
}
