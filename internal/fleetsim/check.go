package fleetsim

import (
	"context"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/tam"
	"github.com/teep-go/teep/suit"
)

// maxNamed bounds the devices an out-of-policy error names.
const maxNamed = 10

// CheckPolicy reads the TAM's store and returns an error naming every
// device that does not have component at version seq or later: after a
// run, every device must be in policy.
func CheckPolicy(ctx context.Context, e *tam.Engine, devices []*cosekey.Key, component suit.ComponentID, seq uint64) error {
	return checkPolicy(ctx, engineTarget{e}, devices, component, seq)
}
