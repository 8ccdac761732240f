package conform

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/broker"
	"github.com/teep-go/teep/internal/device"
	"github.com/teep-go/teep/teep"
)

// Our device, run with --once until the suite is done, passes every
// scenario, in both numberings.
func TestOurAgentConforms(t *testing.T) {
	for _, n := range []teep.Numbering{teep.Draft26, teep.Legacy} {
		t.Run(n.String(), func(t *testing.T) {
			s, err := NewAgentSuite(AgentOptions{Numbering: n})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s)
			defer srv.Close()
			legacy := n == teep.Legacy
			o := device.Options{StateDir: filepath.Join(t.TempDir(), "state"), TAM: srv.URL + "/tam", TEEs: []string{"dut"},
				TAMKeys: []*cosekey.Key{s.TAMPublicKey()}, SignerKeys: []*cosekey.Key{s.SignerPublicKey()},
				LegacyNumbering: &legacy, Once: true, Retry: broker.Retry{MaxAttempts: 1}}
			d, err := device.Open(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for i := 0; i < 2*len(agentScenarios); i++ {
				select {
				case <-s.Done():
				default:
					d.Run(context.Background()) // a refused session fails the run: expected here
					continue
				}
				break
			}
			rep := s.Report(srv.URL)
			var b strings.Builder
			rep.WriteText(&b)
			if !rep.OK() || rep.Passed != len(agentScenarios) {
				t.Fatalf("\n%s", b.String())
			}
		})
	}
}

// brokenAgent answers the scripted TAM without checking anything the way
// accept says, driving sessions itself.
func runBrokenAgent(t *testing.T, url string, s *AgentSuite, accept bool) {
	t.Helper()
	k, _ := cosekey.Generate(cosekey.AlgESP256)
	signer, _ := cosekey.NewSigner(k, cosekey.AlgESP256)
	post := func(b []byte) []byte {
		resp, err := http.Post(url, MediaType, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return out
	}
	for i := 0; i < 4*len(agentScenarios); i++ {
		select {
		case <-s.Done():
			return
		default:
		}
		in := post(nil)
		for len(in) > 0 {
			tok := randomToken()
			var typ teep.Type
			if op, err := teep.Open(in, teep.OpenOptions{SkipVerifyUnsafe: true}); err == nil {
				typ = op.Message.Type()
				switch m := op.Message.(type) {
				case *teep.QueryRequest:
					tok = m.Token
				case *teep.Update:
					tok = m.Token
				}
			}
			var out teep.Message
			switch {
			case !accept:
				out = &teep.Error{Token: tok, ErrCode: teep.ErrPermanentError}
			case typ == teep.TypeQueryRequest:
				out = &teep.QueryResponse{Token: tok}
			default:
				out = &teep.Success{Token: tok}
			}
			b, err := teep.Sign(out, signer, teep.SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			in = post(b)
		}
	}
}

// Every scenario fails against an Agent that accepts everything or one that
// refuses everything.
func TestScenariosFailAgainstBrokenAgents(t *testing.T) {
	failed := map[string]bool{}
	for _, accept := range []bool{true, false} {
		s, err := NewAgentSuite(AgentOptions{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s)
		runBrokenAgent(t, srv.URL, s, accept)
		srv.Close()
		rep := s.Report("broken")
		if rep.OK() {
			t.Fatalf("a broken Agent (accept=%v) passed", accept)
		}
		for _, r := range rep.Results {
			if r.Status == Fail {
				failed[r.ID] = true
			}
		}
	}
	for _, sc := range agentScenarios {
		if !failed[sc.id] {
			t.Errorf("%s never failed against a broken Agent", sc.id)
		}
	}
}
