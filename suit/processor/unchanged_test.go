package processor_test

import (
	"context"
	"io"
	"testing"

	"github.com/teep-go/teep/suit"
)

// An Update carrying the installed manifest again costs one validate, not a
// reinstall; when validate finds the image changed, the full Update runs and
// repairs it.
// validatedManifest is payloadManifest with a suit-validate section that
// checks the installed image (condition-image-match).
func validatedManifest(seqNo uint64, comp string, payload []byte) []byte {
	shared := seq(20, m{3: digestOf(payload), 14: uint64(len(payload))})
	install := seq(20, m{21: "#p"}, 21, 2, 3, 15)
	return manifest(seqNo, ids(comp+".suit"), [][][]byte{ids(comp)}, shared, m{20: install, 7: seq(3, 15)})
}

func TestInstallOfTheInstalledManifest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	payload := []byte("app v1")
	v1 := signed(t, validatedManifest(1, "app", payload), suit.Integrated{Key: "#p", Data: payload})
	if res := mustInstall(t, e, v1); res.Unchanged || len(res.Installed) != 1 {
		t.Fatalf("first install: unchanged %v, installed %d", res.Unchanged, len(res.Installed))
	}

	res := mustInstall(t, e, v1)
	if !res.Unchanged || len(res.Installed) != 0 || !res.Success {
		t.Fatalf("same manifest again: unchanged %v, installed %d, success %v", res.Unchanged, len(res.Installed), res.Success)
	}
	rep, err := suit.ParseReport(res.ReportBytes)
	if err != nil || !rep.Success() || len(rep.Records) == 0 {
		t.Fatalf("the unchanged run's report: %v, %+v", err, rep)
	}

	// The image changed behind the processor's back: validate fails, the
	// Update runs in full and writes the image again.
	txn, err := e.store.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := txn.Create(ctx, suit.ComponentID{[]byte("app")})
	io.WriteString(w, "tampered")
	w.Close()
	if err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res = mustInstall(t, e, v1)
	if res.Unchanged || len(res.Installed) != 1 {
		t.Fatalf("after tampering: unchanged %v, installed %d", res.Unchanged, len(res.Installed))
	}
	want(t, e, "app", "app v1")

	// Without suit-validate nothing can show the image is intact: the
	// Update runs in full every time.
	noValidate := signed(t, payloadManifest(1, "lib", []byte("lib"), "#p"), suit.Integrated{Key: "#p", Data: []byte("lib")})
	mustInstall(t, e, noValidate)
	if res := mustInstall(t, e, noValidate); res.Unchanged || len(res.Installed) != 1 {
		t.Fatalf("manifest without validate, again: unchanged %v, installed %d", res.Unchanged, len(res.Installed))
	}

	// A different manifest with the same sequence number is still refused.
	other := signed(t, validatedManifest(1, "app", []byte("app v1b")), suit.Integrated{Key: "#p", Data: []byte("app v1b")})
	if _, err := install(t, e, other); err == nil {
		t.Fatal("another manifest at the installed sequence number was accepted")
	}
}
