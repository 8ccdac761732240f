package coapbind

import (
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
)

// Content-Formats of the binding.
const (
	// ContentFormat is application/teep+cbor. IANA has registered the media
	// type (draft-ietf-teep-protocol-26 §12.1) but no CoAP Content-Format
	// for it, so the binding uses a number from the experimental range
	// 65000-65535 (RFC 7252 §12.3) until one is assigned.
	ContentFormat message.MediaType = 65000
	// ProblemContentFormat is application/concise-problem-details+cbor
	// (RFC 9290 §6.3).
	ProblemContentFormat message.MediaType = 257
)

// Limits.
const (
	// MaxReasonBytes bounds the detail text of a problem report.
	MaxReasonBytes = 200
	// MaxProblemBytes bounds a problem report a client decodes.
	MaxProblemBytes = 1024
)

// Keys of RFC 9290 §3.1 standard problem detail entries.
const (
	problemTitle        = -1
	problemDetail       = -2
	problemResponseCode = -4
)

var problemEnc = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// Problem encodes RFC 9290 concise problem details: the code's name as
// title, the reason as detail, and the response code.
func Problem(code codes.Code, reason string) []byte {
	b, err := problemEnc.Marshal(map[int]any{
		problemTitle:        Title(code),
		problemDetail:       Clip(reason),
		problemResponseCode: uint8(code),
	})
	if err != nil {
		// Text and small integers always encode.
		panic(err)
	}
	return b
}

// ProblemDetails is a decoded RFC 9290 problem report.
type ProblemDetails struct {
	Title        string
	Detail       string
	ResponseCode codes.Code
}

var problemDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden,
		MaxNestedLevels: 4, MaxMapPairs: 32, MaxArrayElements: 32}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// ParseProblem decodes concise problem details: one map with integer keys,
// no duplicates; unknown entries are ignored (RFC 9290 §3.1 allows custom
// ones), the standard ones must have their types.
func ParseProblem(b []byte) (*ProblemDetails, error) {
	if len(b) > MaxProblemBytes {
		return nil, fmt.Errorf("problem details: %d bytes, more than %d", len(b), MaxProblemBytes)
	}
	var m map[int64]cbor.RawMessage
	if err := problemDec.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("problem details: %w", err)
	}
	var p ProblemDetails
	if raw, ok := m[problemTitle]; ok {
		if err := problemDec.Unmarshal(raw, &p.Title); err != nil {
			return nil, fmt.Errorf("problem details: title: %w", err)
		}
	}
	if raw, ok := m[problemDetail]; ok {
		if err := problemDec.Unmarshal(raw, &p.Detail); err != nil {
			return nil, fmt.Errorf("problem details: detail: %w", err)
		}
	}
	if raw, ok := m[problemResponseCode]; ok {
		var c uint8
		if err := problemDec.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("problem details: response-code: %w", err)
		}
		p.ResponseCode = codes.Code(c)
	}
	return &p, nil
}

// Title names a code for people (RFC 7252 §12.1.2 names, in the stack's
// spelling), or "c.dd" for a code without a name.
func Title(c codes.Code) string {
	s := c.String()
	if strings.HasPrefix(s, "Code(") {
		return Label(c)
	}
	return s
}

// Label renders a code as "c.dd" (RFC 7252 §5.9), for metrics and logs.
func Label(c codes.Code) string { return fmt.Sprintf("%d.%02d", c>>5, c&0x1f) }

// Clip makes a reason valid UTF-8 of at most MaxReasonBytes.
func Clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > MaxReasonBytes {
		s = strings.ToValidUTF8(s[:MaxReasonBytes], "")
	}
	return s
}

// Block is what Inspect learnt of a message's block options.
type Block struct {
	// Option is message.Block1 or message.Block2, 0 without block options.
	Option message.OptionID
	Num    int64
	Size   int64 // block size in bytes
	More   bool
}

// Rejection is a message Inspect refuses, with the code to answer.
type Rejection struct {
	Code   codes.Code
	Reason string
	// Size1 is the size limit to announce with 4.13 (RFC 7959 §4).
	Size1 uint32
}

func (r *Rejection) Error() string { return Label(r.Code) + " " + r.Reason }

// Inspect checks one received message against maxBody before the stack
// buffers it: a Block1 block (or a Block2 block of a response) whose end
// lies beyond maxBody, or a Size1/Size2 announcing more, is refused with
// 4.13 and Size1; malformed block options (RFC 7959 §2.2: values over 3
// bytes, the reserved SZX 7 outside BERT, block numbers past 2^20) with
// 4.00; a non-final block shorter than its size with 4.08. reliable says
// the transport is TCP or TLS, where SZX 7 is BERT (RFC 8323 §6). It never
// panics on any message the decoder accepted.
func Inspect(m *pool.Message, maxBody int64, reliable bool) (Block, *Rejection) {
	var blk Block
	opt := message.OptionID(0)
	switch {
	case m.HasOption(message.Block1) && m.HasOption(message.Block2) && m.Code() >= codes.Created:
		// A response may carry Block1 (the acknowledged request block)
		// next to Block2; only its Block2 describes this payload.
		opt = message.Block2
	case m.HasOption(message.Block1) && m.Code() < codes.Created:
		opt = message.Block1
	case m.HasOption(message.Block2) && m.Code() >= codes.Created:
		opt = message.Block2
	}
	if opt != 0 {
		v, err := m.GetOptionUint32(opt)
		if err != nil {
			return blk, &Rejection{Code: codes.BadOption, Reason: fmt.Sprintf("%v option: %v", opt, err)}
		}
		szx, num, more, err := blockwise.DecodeBlockOption(v)
		if err != nil {
			return blk, &Rejection{Code: codes.BadRequest, Reason: fmt.Sprintf("%v option: %v", opt, err)}
		}
		if szx == blockwise.SZXBERT && !reliable {
			return blk, &Rejection{Code: codes.BadRequest, Reason: fmt.Sprintf("%v option: SZX 7 is reserved over UDP", opt)}
		}
		blk = Block{Option: opt, Num: num, Size: szx.Size(), More: more}
		n, err := payloadSize(m)
		if err != nil {
			return blk, &Rejection{Code: codes.BadRequest, Reason: "unreadable payload"}
		}
		if blk.Num > maxBody/blk.Size || blk.Num*blk.Size+n > maxBody {
			return blk, tooLarge(maxBody)
		}
		// RFC 7959 §2.2: every block but the last carries exactly the
		// block size (BERT: a multiple of 1024).
		if more && ((szx != blockwise.SZXBERT && n != blk.Size) || (szx == blockwise.SZXBERT && (n == 0 || n%1024 != 0))) {
			return blk, &Rejection{Code: codes.RequestEntityIncomplete, Reason: fmt.Sprintf("non-final block %d carries %d bytes, not %d", num, n, blk.Size)}
		}
	} else if n, err := payloadSize(m); err == nil && n > maxBody {
		return blk, tooLarge(maxBody)
	}
	for _, so := range []message.OptionID{message.Size1, message.Size2} {
		if !m.HasOption(so) {
			continue
		}
		s, err := m.GetOptionUint32(so)
		if err != nil {
			return blk, &Rejection{Code: codes.BadOption, Reason: fmt.Sprintf("%v option: %v", so, err)}
		}
		// Size1 describes a request body, Size2 a response body.
		if (so == message.Size1 && m.Code() < codes.Created || so == message.Size2 && m.Code() >= codes.Created) && int64(s) > maxBody {
			return blk, tooLarge(maxBody)
		}
	}
	return blk, nil
}

func payloadSize(m *pool.Message) (int64, error) {
	if m.Body() == nil {
		return 0, nil
	}
	return m.BodySize()
}

func tooLarge(limit int64) *Rejection {
	return &Rejection{Code: codes.RequestEntityTooLarge, Reason: fmt.Sprintf("body larger than %d bytes", limit),
		Size1: uint32(min(limit, 1<<32-1))}
}
