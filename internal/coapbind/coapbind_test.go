package coapbind

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	tcpcoder "github.com/plgd-dev/go-coap/v3/tcp/coder"
	udpcoder "github.com/plgd-dev/go-coap/v3/udp/coder"
)

func TestProblemRoundTrip(t *testing.T) {
	b := Problem(codes.RequestEntityTooLarge, strings.Repeat("é", 300))
	p, err := ParseProblem(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.ResponseCode != codes.RequestEntityTooLarge || p.Title != "RequestEntityTooLarge" || len(p.Detail) > MaxReasonBytes {
		t.Fatalf("%+v", p)
	}
	// RFC 9290 §3.1: a map with negative keys, deterministic: title (-1)
	// first.
	if b[0]&0xe0 != 0xa0 || b[1] != 0x20 {
		t.Fatalf("encoding %x", b)
	}
	for _, bad := range [][]byte{
		{0xa1, 0x20, 0x01},             // title not text
		{0xa2, 0x20, 0x60, 0x20, 0x60}, // duplicate key
		{0xbf, 0xff},                   // indefinite length
		{0x80},                         // not a map
		{0xa1, 0x23, 0x19, 0x01, 0x00}, // response-code too big
		append(Problem(codes.BadRequest, "x"), 0), // trailing byte
		make([]byte, MaxProblemBytes+1),
	} {
		if _, err := ParseProblem(bad); err == nil {
			t.Errorf("ParseProblem(%x) accepted", bad)
		}
	}
}

func msg(t testing.TB, code codes.Code, opts func(*pool.Message), payload int) *pool.Message {
	m := pool.NewMessage(context.Background())
	m.SetCode(code)
	if opts != nil {
		opts(m)
	}
	if payload > 0 {
		m.SetBody(bytes.NewReader(make([]byte, payload)))
	}
	return m
}

func TestInspect(t *testing.T) {
	b1 := func(opt message.OptionID, szx blockwise.SZX, num int64, more bool) func(*pool.Message) {
		return func(m *pool.Message) {
			v, err := blockwise.EncodeBlockOption(szx, num, more)
			if err != nil {
				t.Fatal(err)
			}
			m.SetOptionUint32(opt, v)
		}
	}
	const limit = 10 << 10
	for _, c := range []struct {
		name     string
		m        *pool.Message
		reliable bool
		code     codes.Code // 0: accepted
	}{
		{"plain", msg(t, codes.POST, nil, 100), false, 0},
		{"whole body over the limit", msg(t, codes.POST, nil, limit+1), false, codes.RequestEntityTooLarge},
		{"first block", msg(t, codes.POST, b1(message.Block1, blockwise.SZX1024, 0, true), 1024), false, 0},
		{"last block at the limit", msg(t, codes.POST, b1(message.Block1, blockwise.SZX1024, 9, false), 1024), false, 0},
		{"block past the limit", msg(t, codes.POST, b1(message.Block1, blockwise.SZX1024, 10, false), 1), false, codes.RequestEntityTooLarge},
		{"huge block number", msg(t, codes.POST, b1(message.Block1, blockwise.SZX16, 0xffff0, true), 16), false, codes.RequestEntityTooLarge},
		{"short non-final", msg(t, codes.POST, b1(message.Block1, blockwise.SZX1024, 0, true), 10), false, codes.RequestEntityIncomplete},
		{"BERT over UDP", msg(t, codes.POST, b1(message.Block1, blockwise.SZXBERT, 0, true), 2048), false, codes.BadRequest},
		{"BERT over TCP", msg(t, codes.POST, b1(message.Block1, blockwise.SZXBERT, 0, true), 2048), true, 0},
		{"Size1", msg(t, codes.POST, func(m *pool.Message) { m.SetOptionUint32(message.Size1, limit+1) }, 0), false, codes.RequestEntityTooLarge},
		{"response Block2 past the limit", msg(t, codes.Changed, b1(message.Block2, blockwise.SZX1024, 10, true), 1024), false, codes.RequestEntityTooLarge},
		{"response Size2", msg(t, codes.Changed, func(m *pool.Message) { m.SetOptionUint32(message.Size2, 1<<30) }, 0), false, codes.RequestEntityTooLarge},
		{"response Block2 in range", msg(t, codes.Changed, b1(message.Block2, blockwise.SZX1024, 3, true), 1024), false, 0},
		{"request Size2 (a question)", msg(t, codes.POST, func(m *pool.Message) { m.SetOptionUint32(message.Size2, 0) }, 0), false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, rej := Inspect(c.m, limit, c.reliable)
			switch {
			case c.code == 0 && rej != nil:
				t.Fatalf("refused: %v", rej)
			case c.code != 0 && (rej == nil || rej.Code != c.code):
				t.Fatalf("got %v, want %v", rej, c.code)
			case c.code == codes.RequestEntityTooLarge && rej.Size1 != limit:
				t.Fatalf("Size1 %d", rej.Size1)
			}
		})
	}
}

// FuzzInspect decodes arbitrary datagrams and TCP frames with the CoAP
// stack and runs the binding's checks on what it accepts: never a panic,
// and a rejection always carries an error code.
func FuzzInspect(f *testing.F) {
	seed := func(code codes.Code, opts func(*pool.Message), payload int) {
		m := msg(f, code, opts, payload)
		m.SetMessageID(7)
		m.SetType(message.Confirmable)
		m.SetToken([]byte{1, 2})
		_ = m.SetPath("/tam")
		if b, err := m.MarshalWithEncoder(udpcoder.DefaultCoder); err == nil {
			f.Add(b, false)
		}
		if b, err := m.MarshalWithEncoder(tcpcoder.DefaultCoder); err == nil {
			f.Add(b, true)
		}
	}
	seed(codes.POST, nil, 0)
	seed(codes.POST, func(m *pool.Message) { m.SetContentFormat(ContentFormat); m.SetOptionUint32(message.Block1, 0x1e) }, 1024)
	seed(codes.POST, func(m *pool.Message) { m.SetOptionUint32(message.Size1, 1<<30) }, 10)
	seed(codes.Changed, func(m *pool.Message) { m.SetOptionUint32(message.Block2, 0xfffff6) }, 1024)
	f.Add([]byte{0x40, 0x02, 0x00, 0x01, 0xd1, 0x0e, 0xff}, false)
	f.Fuzz(func(t *testing.T, data []byte, reliable bool) {
		m := pool.NewMessage(context.Background())
		var err error
		if reliable {
			_, err = m.UnmarshalWithDecoder(tcpcoder.DefaultCoder, data)
		} else {
			_, err = m.UnmarshalWithDecoder(udpcoder.DefaultCoder, data)
		}
		if err != nil {
			return
		}
		if _, rej := Inspect(m, 64<<10, reliable); rej != nil && rej.Code < codes.BadRequest {
			t.Fatalf("rejection with code %v", rej.Code)
		}
	})
}

// FuzzParseProblem: concise problem details from a TAM never panic the
// client; what parses re-encodes to something that parses the same.
func FuzzParseProblem(f *testing.F) {
	f.Add(Problem(codes.BadRequest, "not a signed TEEP message"))
	f.Add(Problem(codes.ServiceUnavailable, ""))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProblem(b)
		if err != nil {
			return
		}
		q, err := ParseProblem(Problem(p.ResponseCode, p.Detail))
		if err != nil || Clip(p.Detail) != q.Detail {
			t.Fatalf("re-encoding: %+v → %+v, %v", p, q, err)
		}
	})
}
