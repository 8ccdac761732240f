package agent

import (
	"context"
	"fmt"

	"github.com/teep-go/teep/internal/tee"
	"github.com/teep-go/teep/suit"
)

// Invoke runs the installed Trusted Application id once in the Agent's
// TEE with input and returns its output (docs/trusted-apps.md). A TEE that
// does not run TAs fails with tee.ErrNotRunnable; an unknown or removed
// component with tee.ErrNotFound.
func (a *Agent) Invoke(ctx context.Context, id suit.ComponentID, input []byte) ([]byte, error) {
	r, ok := a.tee.(tee.Runner)
	if !ok {
		return nil, fmt.Errorf("%w: TEE %s does not run Trusted Applications", tee.ErrNotRunnable, a.tee.Name())
	}
	out, err := r.Invoke(ctx, id, input)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return out, nil
}
