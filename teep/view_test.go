package teep

import (
	"encoding/json"
	"testing"
)

// Extensions and untyped claims are spliced in after the known members;
// the result must stay valid, deterministic JSON, also when nothing else is
// present.
func TestViewUnknownLabels(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{MessageView{Extensions: map[uint64]CBORView{9999: {"f5"}, 100: {"00"}}}, `{"100":{"cbor":"00"},"9999":{"cbor":"f5"}}`},
		{MessageView{Msg: "hi", Extensions: map[uint64]CBORView{7777: {"f6"}}}, `{"msg":"hi","7777":{"cbor":"f6"}}`},
		{MessageView{}, `{}`},
		{ClaimsView{SystemComponentID: []string{"00"}, Other: map[int64]CBORView{-5: {"01"}, 20: {"02"}}},
			`{"system-component-id":["00"],"-5":{"cbor":"01"},"20":{"cbor":"02"}}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want || !json.Valid(b) {
			t.Errorf("got %s, want %s", b, c.want)
		}
	}
}

// A decoded Error renders its err-code as on the wire in each numbering, with
// our err_name beside it; absent options are absent.
func TestViewErrCodeNumbering(t *testing.T) {
	m := &Error{ErrCode: ErrManifestProcessingFailed, ErrMsg: "disk-full"}
	for n, want := range map[Numbering]string{Draft26: `{"err-code":11,"err_name":"ERR_MANIFEST_PROCESSING_FAILED","err-msg":"disk-full"}`,
		Legacy: `{"err-code":17,"err_name":"ERR_MANIFEST_PROCESSING_FAILED","err-msg":"disk-full"}`} {
		b, err := json.Marshal(NewMessageView(m, ViewOptions{Numbering: n}))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%v: got %s, want %s", n, b, want)
		}
	}
}
