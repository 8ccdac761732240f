package broker

import (
	"context"

	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/suit"
)

// InProcess adapts an Agent running in this process to the Broker's Agent
// interface: the default, where Broker and Agent share a process.
func InProcess(a *agent.Agent) Agent { return inProcess{a} }

type inProcess struct{ a *agent.Agent }

func result(r agent.Result, err error) (Result, error) {
	return Result{TAMURI: r.TAMURI, Message: r.Message, Problems: r.Problems, Refused: r.Refused}, err
}

func (p inProcess) RequestTA(ctx context.Context, id suit.ComponentID, tam string) (Result, error) {
	return result(p.a.RequestTA(ctx, id, tam))
}

func (p inProcess) UnrequestTA(ctx context.Context, id suit.ComponentID, tam string) (Result, error) {
	return result(p.a.UnrequestTA(ctx, id, tam))
}

func (p inProcess) RequestPolicyCheck(ctx context.Context) (Result, error) {
	return result(p.a.RequestPolicyCheck(ctx))
}

func (p inProcess) ProcessTeepMessage(ctx context.Context, tam string, msg []byte) (Result, error) {
	return result(p.a.ProcessTeepMessage(ctx, tam, msg))
}

func (p inProcess) ProcessError(ctx context.Context, tam string, err error) {
	p.a.ProcessError(ctx, tam, err)
}

func (p inProcess) Status(ctx context.Context) (*TEEStatus, error) {
	st, err := p.a.Status(ctx)
	if err != nil {
		return nil, err
	}
	return StatusOf(p.a.Name(), st), nil
}

// StatusOf converts an Agent's status to the local API's form.
func StatusOf(name string, st *agent.Status) *TEEStatus {
	out := &TEEStatus{Name: name, AgentKID: st.AgentKID, Components: []Component{}, LastSync: st.LastSync}
	for _, c := range st.Installed {
		out.Components = append(out.Components, Component{
			ID: c.ComponentID, ManifestID: c.ManifestID,
			SequenceNumber: c.Sequence, SHA256: c.SHA256, Size: c.Size, TAM: c.Owner,
		})
	}
	out.Requested = append(out.Requested, st.Requested...)
	out.Unneeded = append(out.Unneeded, st.Unneeded...)
	return out
}
