package processor_test

import (
	"context"
	"testing"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// A peer that publishes each version under a new manifest id: the newer
// manifest of the same trust anchor takes the component over; another
// signer, an older or equal sequence number, or a replay of the old version
// is refused, and a refusal changes nothing.
func TestVersionsUnderNewManifestIDs(t *testing.T) {
	writes := func(mid string, seqNo uint64, content string) []byte {
		return manifest(seqNo, ids(mid), [][][]byte{ids("app")}, nil, m{20: seq(20, m{18: []byte(content)}, 18, 15)})
	}
	const us, them = "example-p256-private.pem", "tam-p256-private.pem"
	trustBoth := func(c *processor.Config) {
		c.Trust = append(c.Trust, loadKey(t, "example-p256-public.pem"), loadKey(t, "tam-p256-public.pem"))
	}
	cases := []struct {
		name      string
		key       string
		mid       string
		seq       uint64
		wantOwner string // manifest id that links app afterwards
	}{
		{"same signer, higher sequence", us, "app-v2.suit", 2, "app-v2.suit"},
		{"same signer, same sequence", us, "app-v2.suit", 1, "app-v1.suit"},
		{"same signer, lower sequence", us, "app-v0.suit", 0, "app-v1.suit"},
		{"other trust anchor", them, "app-v2.suit", 2, "app-v1.suit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, trustBoth)
			mustInstall(t, e, signedBy(t, us, writes("app-v1.suit", 1, "v1")))
			res, err := install(t, e, signedBy(t, c.key, writes(c.mid, c.seq, "v2")))
			if c.wantOwner == c.mid {
				if err != nil {
					t.Fatalf("takeover refused: %v", err)
				}
				if len(res.RemovedManifests) != 1 || !res.RemovedManifests[0].Equal(suit.NewComponentID("app-v1.suit")) {
					t.Fatalf("removed manifests %v, want the emptied app-v1.suit", res.RemovedManifests)
				}
			} else {
				wantFailure(t, res, err, suit.ReasonComponentUnauthorised, "linked by manifest")
			}
			want := "v1"
			if c.wantOwner == c.mid {
				want = "v2"
			}
			if got := string(e.content(t, suit.NewComponentID("app"))); got != want {
				t.Fatalf("app holds %q, want %q", got, want)
			}
			recs, _ := e.store.Manifests(context.Background())
			if len(recs) != 1 || !recs[0].ID.Equal(suit.NewComponentID(c.wantOwner)) || len(recs[0].Components) != 1 {
				t.Fatalf("records after: %d, first %v", len(recs), recs[0].ID)
			}
			if c.wantOwner == c.mid {
				// The old version, replayed, never takes the component back.
				res, err := install(t, e, signedBy(t, us, writes("app-v1.suit", 1, "v1")))
				wantFailure(t, res, err, suit.ReasonComponentUnauthorised, "not lower than")
				if got := string(e.content(t, suit.NewComponentID("app"))); got != "v2" {
					t.Fatalf("after the replay app holds %q", got)
				}
			}
		})
	}
}
