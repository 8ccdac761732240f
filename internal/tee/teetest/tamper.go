package teetest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/teep-go/teep/internal/tee"
)

// rejected checks that after Tamper the object is refused both by the open
// TEE and after reopening (where refusing to open at all is fine too), and
// that its plaintext, original or altered, is never handed out.
func rejected(t *testing.T, h *harness, name string, read func(tee.Storage) ([]byte, error)) {
	t.Helper()
	if got, err := read(h.st()); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("open TEE: read of tampered %q = %d bytes, %v; want tee.ErrTampered", name, len(got), err)
	}
	tt, err := h.reopen()
	if err != nil {
		if !errors.Is(err, tee.ErrTampered) {
			t.Fatalf("reopen after tampering: %v; want tee.ErrTampered", err)
		}
		return
	}
	if got, err := read(tt.Storage()); !errors.Is(err, tee.ErrTampered) {
		t.Fatalf("reopened TEE: read of tampered %q = %d bytes, %v; want tee.ErrTampered", name, len(got), err)
	}
}

func testTamperSmall(t *testing.T, h *harness) {
	Put(t, h.st(), "tamper/small", "sealed secret value", "tamper/other", "untouched")
	h.b.Tamper(t, "tamper/small")
	rejected(t, h, "tamper/small", func(st tee.Storage) ([]byte, error) { return st.Get("tamper/small") })
}

func testTamperStream(t *testing.T, h *harness) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, many chunks
	err := tee.Update(ctx, h.st(), func(tx tee.Tx) error {
		w, err := tx.Create("tamper/stream")
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	h.b.Tamper(t, "tamper/stream")
	rejected(t, h, "tamper/stream", func(st tee.Storage) ([]byte, error) {
		r, _, err := st.Open("tamper/stream")
		if err != nil {
			return nil, err
		}
		defer r.Close()
		// A streaming reader may hand out chunks that authenticated before
		// the altered one; it must fail before EOF.
		return io.ReadAll(r)
	})
}
