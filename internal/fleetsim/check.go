package fleetsim

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

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
	var out []string
	for _, k := range devices {
		di, err := e.DeviceInfo(ctx, k.KID(), 0)
		if err != nil {
			return fmt.Errorf("fleetsim: device %x: %w", k.KID(), err)
		}
		ok := false
		for _, in := range di.Installed {
			if in.ComponentID.String() == component.String() && in.Sequence >= seq {
				ok = true
			}
		}
		if !ok {
			out = append(out, hex.EncodeToString(k.KID()))
		}
	}
	if len(out) > 0 {
		total := len(out)
		if len(out) > maxNamed {
			out = append(out[:maxNamed], "...")
		}
		return fmt.Errorf("fleetsim: %d of %d devices out of policy (lack %s version %d): %s",
			total, len(devices), component, seq, strings.Join(out, ", "))
	}
	return nil
}
